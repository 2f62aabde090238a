#include "autodiff/trainer.hpp"

#include <stdexcept>

namespace rematch::autodiff {
namespace {

Solution planned(const Graph& graph, const TrainerOptions& options) {
  if (options.activation_budget == 0) {
    throw InputError("trainer: the activation budget must be positive");
  }
  return solve(graph, double(options.activation_budget), options.solve);
}

}  // namespace

std::vector<std::vector<const Tensor*>> sum_shared_gradients(const JoinModel& model,
                                                             std::vector<Gradients>& grads) {
  std::vector<std::vector<const Tensor*>> out;
  for (int e = 0; e < model.encoders(); ++e) {
    int first = -1;
    for (int j = 0; j < model.branches(); ++j) {
      if (model.encoder_index(j) != e) continue;
      if (first < 0) {
        first = j;
        continue;
      }
      for (std::size_t l = 0; l < grads[first].size(); ++l) {
        for (std::size_t p = 0; p < grads[first][l].size(); ++p) {
          float* total = grads[first][l][p].data.data();
          const float* add = grads[j][l][p].data.data();
          const auto n = static_cast<std::int64_t>(grads[first][l][p].data.size());
#pragma omp parallel for schedule(static)
          for (std::int64_t i = 0; i < n; ++i) total[i] += add[i];
        }
      }
    }
    std::vector<const Tensor*> flat;
    for (const auto& layer : grads[first]) {
      for (const Tensor& g : layer) flat.push_back(&g);
    }
    out.push_back(std::move(flat));
  }
  return out;
}

Trainer::Trainer(JoinModel& model, Arena& parameters, const TrainerOptions& options)
    : model_(model),
      parameters_(parameters),
      activations_("activations", options.activation_budget),
      plan_(),
      executor_(model, profile(model, options.profile), activations_) {
  plan_ = planned(executor_.graph(), options);
  executor_.check(plan_.ops);
  for (int j = 0; j < model_.branches(); ++j) {
    grads_.push_back(model_.encoder_of(j).make_gradients(parameters_));
  }
  for (int e = 0; e < model_.encoders(); ++e) {
    optimizers_.emplace_back(options.optimizer, model_.encoder(e).parameters(), parameters_);
  }
  if (options.calibrate) calibrate_plan(options);
}

void Trainer::calibrate_plan(const TrainerOptions& options) {
  std::vector<Tensor> inputs;  // zeros: kernel times do not depend on the values
  for (int j = 0; j < model_.branches(); ++j) {
    inputs.emplace_back(model_.encoder_of(j).input_shape(0), false, activations_);
  }
  const StepResult timed = executor_.run(plan_.ops, std::move(inputs), grads_);
  executor_.set_graph(calibrate(executor_.graph(), model_, plan_.ops, {timed.op_seconds}));
  plan_ = planned(executor_.graph(), options);
  executor_.check(plan_.ops);
}

std::vector<Tensor> Trainer::load_inputs(Batch& batch) {
  if (static_cast<int>(batch.inputs.size()) != model_.branches()) {
    throw std::invalid_argument("batch: " + std::to_string(batch.inputs.size()) +
                                " inputs for a model of " + std::to_string(model_.branches()) +
                                " branches");
  }
  std::vector<Tensor> inputs;
  for (int j = 0; j < model_.branches(); ++j) {
    const BlockShape& shape = model_.encoder_of(j).input_shape(0);
    if (static_cast<std::int64_t>(batch.inputs[j].size()) != shape.rows * shape.cols) {
      throw std::invalid_argument("batch: branch " + std::to_string(j) + " input has " +
                                  std::to_string(batch.inputs[j].size()) + " values, expected " +
                                  std::to_string(shape.rows * shape.cols));
    }
    inputs.emplace_back(shape, false, activations_);
    kernels::pack_into(batch.inputs[j], inputs.back());
    batch.inputs[j] = {};
  }
  return inputs;
}

StepResult Trainer::step(Batch batch) {
  model_.loss().set_targets(std::move(batch.targets));
  model_.set_step(steps_++);
  StepResult result = executor_.run(plan_.ops, load_inputs(batch), grads_);
  const auto flat = sum_shared_gradients(model_, grads_);
  for (int e = 0; e < model_.encoders(); ++e) optimizers_[e].step(flat[std::size_t(e)]);
  return result;
}

std::vector<float> Trainer::embed(int branch, std::span<const float> inputs) {
  Encoder& encoder = model_.encoder_of(branch);
  const BlockShape& in = encoder.input_shape(0);
  if (static_cast<std::int64_t>(inputs.size()) != in.rows * in.cols) {
    throw std::invalid_argument("embed: expected " + std::to_string(in.rows * in.cols) + " values");
  }
  model_.set_scratch_allocator(&activations_);
  model_.set_step(Layer::kInference);
  Tensor x(in, false, activations_);
  kernels::pack_into(inputs, x);
  for (int i = 0; i < encoder.stages(); ++i) x = encoder.forward(i, x, activations_);
  model_.set_scratch_allocator(nullptr);
  const BlockShape& out = x.shape;
  std::vector<float> plain(std::size_t(out.rows * out.cols));
  kernels::unpack(x, plain);
  return plain;
}

}  // namespace rematch::autodiff
