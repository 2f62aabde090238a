#include "cli/apply.hpp"

#include <iostream>
#include <new>
#include <sstream>

#include "autodiff/arena.hpp"
#include "autodiff/profiler.hpp"
#include "cli/memory_size.hpp"
#include "cli/train.hpp"
#include "models/checkpoint.hpp"
#include "models/data/npy.hpp"
#include "models/inference.hpp"
#include "scheduler/solver.hpp"

namespace rematch::cli {
namespace {

constexpr int exit_infeasible = 2;
constexpr int exit_bad_input = 3;
constexpr int exit_out_of_memory = 4;

void add_common(CLI::App* cmd, ApplyArgs& a) {
  add_model_options(cmd, a.model);
  cmd->add_option("--weights", a.weights, "weights W.npz (train --checkpoint)")->required();
  cmd->add_option("--memory,-m", a.memory, "activation budget of the forward passes; the batch is the largest that fits")
      ->capture_default_str();
}

models::Inference loaded(const ApplyArgs& a) {
  const std::size_t memory = std::size_t(parse_memory_size(a.memory, "--memory"));
  if (a.model.batch <= 0) throw InputError("--batch must be positive");
  return models::Inference(models::load_model(a.model.model, a.model), a.weights, memory, a.model.batch);
}

template <typename F>
int guarded(const char* command, F&& f) {
  auto error = [&](int status, const std::string& m) {
    std::cerr << "rematch " << command << ": " << m << "\n";
    return status;
  };
  try {
    return f();
  } catch (const InfeasibleBudget& e) {
    return error(exit_infeasible, std::string(e.what()) + " (least feasible budget " +
                                      autodiff::format_bytes(e.min_memory) + " = " +
                                      std::to_string(std::size_t(e.min_memory)) + " bytes)");
  } catch (const autodiff::ArenaExhausted& e) {
    return error(exit_out_of_memory, e.what());
  } catch (const std::bad_alloc&) {
    return error(exit_out_of_memory, "out of memory (is the process memory limit below what --memory needs?)");
  } catch (const std::exception& e) {
    return error(exit_bad_input, e.what());
  }
}

}  // namespace

void add_embed_options(CLI::App* cmd, ApplyArgs& a) {
  add_common(cmd, a);
  cmd->add_option("--data", a.data.data, "samples X.npy, each of the branch's input shape")->required();
  cmd->add_option("--output,-o", a.output, "embeddings E.npy to write (float32, n x the encoder's output)")->required();
  cmd->add_option("--branch", a.branch, "the branch whose encoder embeds")->capture_default_str();
}

void add_evaluate_options(CLI::App* cmd, ApplyArgs& a) {
  add_common(cmd, a);
  add_data_options(cmd, a.data);
}

std::string evaluation_line(const models::ModelDescription& model, const models::Evaluation& e) {
  std::ostringstream out;
  if (model.task == models::Task::classifier) {
    out << e.pairs << " samples: top-1 accuracy " << e.accuracy;
  } else {
    out << e.pairs << " pairs: ROC AUC " << e.auc << ", verification accuracy " << e.accuracy << " at distance "
        << e.threshold;
  }
  return out.str();
}

int run_embed(const ApplyArgs& a) {
  return guarded("embed", [&] {
    models::Inference inference = loaded(a);
    const models::ModelDescription& d = inference.description();
    if (a.branch < 0 || a.branch >= int(d.branches.size())) {
      throw InputError("--branch " + std::to_string(a.branch) + ": the model has " + std::to_string(d.branches.size()) + " branches");
    }
    const data::NpyFile file(a.data.data);
    data::require_samples(file, models::input_shape(d.input(a.branch)));
    const models::TensorDims out_dims = d.encoder_of(a.branch).output();
    std::vector<std::int64_t> shape = models::input_shape(out_dims);
    const std::int64_t n = file.rows(), batch = inference.batch(), row = out_dims.values();
    shape.insert(shape.begin(), n);
    data::NpyWriter writer(a.output, shape);
    std::vector<float> inputs(std::size_t(batch * file.row_elements()));
    for (std::int64_t begin = 0; begin < n; begin += batch) {
      const std::int64_t rows = std::min(batch, n - begin);
      file.read_rows(begin, rows, inputs.data());  // a short last batch: the rest is not output

      const std::vector<float> e = inference.embed(a.branch, inputs);
      writer.append(std::span<const float>(e).first(std::size_t(rows * row)));
    }
    writer.commit();
    std::cout << "wrote " << a.output << ": " << n << " x " << models::to_string(out_dims) << " (batches of " << batch
              << ", activation peak " << autodiff::format_bytes(double(inference.peak())) << ")\n";
    return 0;
  });
}

int run_evaluate(const ApplyArgs& a) {
  return guarded("evaluate", [&] {
    models::Inference inference = loaded(a);
    const models::ModelDescription& d = inference.description();
    const data::DataFiles files = data_files(a.data);
    if (files.arrays.empty()) throw InputError("give --data and --labels, --pairs and --labels, or --triplets");
    const data::Source source = data::Source::open(files, d.task == models::Task::classifier ? d.classes : 0);
    const auto feeds = models::input_feeds(d, source, false);
    const models::Evaluation e = models::evaluate(
        // Seed 8: the pairs `rematch train` scores with its default --data-seed, so the figures compare.
        d, inference.model(), feeds, source, inference.batch(), 0, 8,
        [&](int branch, std::span<const float> inputs) { return inference.embed(branch, inputs); });
    std::cout << evaluation_line(d, e) << "\n";
    return 0;
  });
}

}  // namespace rematch::cli
