#include "cli/train.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>

#include "autodiff/profiler.hpp"
#include "cli/apply.hpp"
#include "cli/memory_size.hpp"
#include "models/checkpoint.hpp"
#include "models/data/atomic_file.hpp"
#include "models/model_file.hpp"
#include "scheduler/io/graph_io.hpp"

namespace rematch::cli {
namespace {

using autodiff::format_bytes;
using nlohmann::json;

constexpr int exit_infeasible = 2;
constexpr int exit_bad_input = 3;
constexpr int exit_out_of_memory = 4;

std::size_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return std::size_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

int error(int status, const std::string& message) {
  std::cerr << "rematch train: " << message << "\n";
  return status;
}

void write_report(const std::string& path, const json& report) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << report.dump(2) << "\n";
    if (!out) throw InputError("cannot write report '" + path + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw InputError("cannot write report '" + path + "'");
}

int train(const TrainArgs& args) {
  models::TrainConfig config = args.config;
  config.memory = std::size_t(parse_memory_size(args.memory, "--memory"));
  config.optimizer.kind = autodiff::optimizer_kind(args.optimizer);
  if (args.lr < 0) throw InputError("--lr must be positive");
  config.optimizer.lr = args.lr > 0 ? args.lr
                        : config.optimizer.kind == autodiff::OptimizerConfig::Kind::adam ? 1e-3f
                                                                                          : 0.05f;
  if (args.steps < 0) throw InputError("--steps must be non-negative");
  if (!args.sequences.offsets.empty()) return train_sequences(args, config);
  // An unwritable --checkpoint is found now, not after the training it would save.
  if (!args.checkpoint.empty()) data::AtomicFile probe(args.checkpoint);
  config.data = data_files(args.data);
  config.test = data_files(args.test, "test-");

  std::cout << "model      " << config.model.model;
  if (models::is_zoo_name(config.model.model)) {
    std::cout << ": depth " << config.model.depth << ", width " << config.model.width << ", embedding "
              << config.model.embedding;
  }
  std::cout << ", batch " << config.model.batch << " per branch\n"
            << "profiling and planning for " << format_bytes(double(config.memory)) << " ...\n"
            << std::flush;
  models::TrainingSession session(config);
  const Solution& plan = session.plan();
  const double overhead = 100.0 * (plan.makespan / session.store_all_makespan() - 1);
  std::cout << "plan       " << plan.solver << (plan.exact ? " (exact)" : "") << ", " << plan.ops.size()
            << " ops: predicted step " << plan.makespan << " s (store-all " << session.store_all_makespan()
            << " s, recompute overhead " << overhead << " %)\n"
            << "memory     predicted peak " << format_bytes(plan.peak) << " of budget "
            << format_bytes(double(config.memory)) << " (store-all needs "
            << format_bytes(session.store_all_peak()) << "); weights, gradients and optimizer state "
            << format_bytes(double(session.parameter_bytes())) << "\n";

  const bool tty = isatty(STDOUT_FILENO);
  std::vector<double> times;
  double first_loss = 0, last_loss = 0;
  std::size_t arena_peak = 0;
  for (int s = 1; s <= args.steps; ++s) {
    const autodiff::StepResult r = session.step();
    if (s == 1) first_loss = r.loss;
    last_loss = r.loss;
    times.push_back(r.seconds);
    arena_peak = std::max(arena_peak, r.arena_peak);
    const double rate = double(config.model.batch) / r.seconds;
    char line[256];
    std::snprintf(line, sizeof line,
                  "step %d/%d  loss %.5f  %.3f s/step  %.0f samples/s  %.1f GFLOP/s  arena peak %s",
                  s, args.steps, r.loss, r.seconds, rate, session.step_flops() / r.seconds * 1e-9,
                  format_bytes(double(r.arena_peak)).c_str());
    std::cout << (tty ? "\r" : "") << line << (tty && s < args.steps ? "" : "\n") << std::flush;
    if (!args.checkpoint.empty() && args.checkpoint_every > 0 && s % args.checkpoint_every == 0) {
      session.save(args.checkpoint);
    }
  }
  if (!args.checkpoint.empty()) {
    session.save(args.checkpoint);
    std::cout << "weights    saved to " << args.checkpoint << "\n";
  }
  models::Evaluation eval;
  const bool evaluated = !args.no_eval && session.has_test_set();
  if (!args.no_eval && !session.has_test_set()) {
    std::cout << "test       no held-out set (--test-data, --test-pairs, --test-triplets or --split)\n";
  } else if (evaluated) {
    eval = session.evaluate();
    std::cout << "test       " << evaluation_line(session.description(), eval) << "\n";
  }
  double total = 0;
  for (double t : times) total += t;
  const std::size_t rss = peak_rss_bytes();
  std::cout << "peak RSS   " << format_bytes(double(rss)) << "\n";
  if (!args.report.empty()) {
    const bool classifier = session.description().task == models::Task::classifier;
    const double steps = double(times.size());
    write_report(args.report,
                 json{{"model", config.model.model},
                      {"depth", config.model.depth},
                      {"width", config.model.width},
                      {"batch", config.model.batch},
                      {"solver", plan.solver},
                      {"exact", plan.exact},
                      {"budget", config.memory},
                      {"predicted_makespan", plan.makespan},
                      {"predicted_peak", plan.peak},
                      {"store_all_makespan", session.store_all_makespan()},
                      {"store_all_peak", session.store_all_peak()},
                      {"predicted_overhead_pct", overhead},
                      {"arena_peak", arena_peak},
                      {"parameter_bytes", session.parameter_bytes()},
                      {"peak_rss", rss},
                      {"steps", times.size()},
                      {"step_seconds", times},
                      {"samples_per_s", total > 0 ? steps * config.model.batch / total : 0.0},
                      {"gflops", total > 0 ? steps * session.step_flops() / total * 1e-9 : 0.0},
                      {"first_loss", first_loss},
                      {"last_loss", last_loss},
                      {"test_metric", !evaluated ? json(nullptr) : json(classifier ? eval.accuracy : eval.auc)},
                      {"test_metric_name", classifier ? "top1_accuracy" : "roc_auc"},
                      {"test_accuracy", !evaluated ? json(nullptr) : json(eval.accuracy)}});
  }
  return 0;
}

}  // namespace

void add_model_options(CLI::App* cmd, models::ModelConfig& m) {
  std::string names;
  for (const auto& n : models::model_names()) names += (names.empty() ? "" : " | ") + n;
  cmd->add_option("--model", m.model, names + " | a model file (FILE.json, docs/model-files.md)")
      ->capture_default_str();
  cmd->add_option("--depth", m.depth, "layers per encoder")->capture_default_str();
  cmd->add_option("--width", m.width, "hidden features (MLP) or channels (conv)")->capture_default_str();
  cmd->add_option("--batch", m.batch, "samples per branch and step")->capture_default_str();
  cmd->add_option("--embedding", m.embedding, "output features")->capture_default_str();
  cmd->add_option("--layers-per-stage", m.layers_per_stage, "layers the scheduler treats as one stage")
      ->capture_default_str();
  cmd->add_option("--margin", m.margin, "margin of the loss")->capture_default_str();
  cmd->add_option("--seed", m.seed, "weight initialisation seed")->capture_default_str();
}

void add_train_options(CLI::App* cmd, TrainArgs& a) {
  add_model_options(cmd, a.config.model);
  cmd->add_option("--memory,-m", a.memory, "activation budget (e.g. 2GiB)")->required();
  cmd->add_option("--steps", a.steps, "training steps")->capture_default_str();
  cmd->add_option("--solver", a.config.solver, "optimal | persistent | store-all | segments:N | sqrt | recompute-all")
      ->capture_default_str();
  cmd->add_option("--optimizer", a.optimizer, "sgd (with momentum) | adam")->capture_default_str();
  cmd->add_option("--lr", a.lr, "learning rate (default: Adam 1e-3, SGD 0.05)");
  cmd->add_option("--momentum", a.config.optimizer.momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--checkpoint", a.checkpoint, "write the weights here (atomically)");
  cmd->add_option("--checkpoint-every", a.checkpoint_every, "also every N steps");
  cmd->add_option("--resume", a.config.resume, "start from these weights");
  cmd->add_option("--report", a.report, "write a JSON summary");
  cmd->add_option("--fashion-mnist", a.config.data_dir, "Fashion-MNIST directory (without --data, --pairs, --triplets)")
      ->capture_default_str();
  add_data_options(cmd, a.data);
  add_data_options(cmd, a.test, "test-");
  add_sequence_options(cmd, a.sequences);
  cmd->add_option("--split", a.config.split, "hold out this fraction of the data for the metrics")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--data-seed", a.config.data_seed, "pair sampling seed")->capture_default_str();
  cmd->add_option("--eval-batches", a.config.eval_batches, "held-out batches for the metrics")
      ->capture_default_str();
  cmd->add_flag("--no-eval", a.no_eval, "skip the test-set evaluation");
  cmd->add_option("--profile-repeats", a.config.profile.repeats, "timed profiling sweeps (after one warm-up)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
}

int run_train(TrainArgs args) {
  try {
    return train(args);
  } catch (const InfeasibleBudget& e) {
    return error(exit_infeasible, std::string(e.what()) + " (least feasible budget " +
                                      format_bytes(e.min_memory) + " = " +
                                      std::to_string(std::size_t(e.min_memory)) + " bytes)");
  } catch (const autodiff::ArenaExhausted& e) {
    return error(exit_out_of_memory, e.what());
  } catch (const std::bad_alloc&) {
    return error(exit_out_of_memory, "out of memory (is the process memory limit below what the plan needs?)");
  } catch (const std::exception& e) {
    return error(exit_bad_input, e.what());
  }
}

int run_profile(const models::ModelConfig& model, const std::string& out_path) {
  try {
    autodiff::Arena parameters("parameters");
    auto m = models::build(models::load_model(model.model, model), model.batch, model.seed, parameters);
    const Graph graph = autodiff::profile(*m);
    std::ofstream out(out_path);
    out << graph_to_json(graph, false) << "\n";
    if (!out) throw InputError("cannot write '" + out_path + "'");
    std::cout << "wrote " << out_path << " (" << graph.num_branches() << " branches of "
              << graph.branches[0].stages() << " stages; sizes in bytes, times in seconds)\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "rematch profile: " << e.what() << "\n";
    return exit_bad_input;
  }
}

}  // namespace rematch::cli
