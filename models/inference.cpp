#include "models/inference.hpp"

#include <algorithm>

#include "autodiff/layer.hpp"
#include "models/checkpoint.hpp"
#include "scheduler/solver.hpp"

namespace rematch::models {

Inference::Inference(ModelDescription description, const std::string& weights, std::size_t memory,
                     std::int64_t max_batch)
    : description_(std::move(description)), activations_("activations", memory) {
  if (max_batch <= 0) throw std::invalid_argument("the batch bound must be positive");
  const std::size_t one = trial(1, autodiff::Arena::kUnlimited);
  if (one > memory) {
    throw InfeasibleBudget("a forward pass of one sample needs " + std::to_string(one) + " bytes of activations", double(one));
  }
  std::int64_t batch = std::min<std::int64_t>(max_batch, std::max<std::size_t>(1, memory / one));
  while (batch > 1 && trial(batch, memory) == 0) batch /= 2;
  build_at(batch);
  load_weights(weights, parameter_names(description_), *model_);
}

void Inference::build_at(std::int64_t batch) {
  model_.reset();
  model_ = build(description_, batch, 1, parameters_);
  batch_ = batch;
}

std::size_t Inference::trial(std::int64_t batch, std::size_t budget) {
  build_at(batch);
  autodiff::Arena arena("activations", budget);
  try {
    for (int j = 0; j < model_->branches(); ++j) {
      const autodiff::BlockShape& in = model_->encoder_of(j).input_shape(0);
      run(j, std::vector<float>(std::size_t(in.rows * in.cols)), arena);
    }
  } catch (const autodiff::ArenaExhausted&) {
    return 0;
  }
  return arena.high_water();
}

std::vector<float> Inference::embed(int branch, std::span<const float> inputs) {
  return run(branch, inputs, activations_);
}

std::vector<float> Inference::run(int branch, std::span<const float> inputs, autodiff::Arena& arena) {
  autodiff::Encoder& encoder = model_->encoder_of(branch);
  const autodiff::BlockShape& in = encoder.input_shape(0);
  if (std::int64_t(inputs.size()) != in.rows * in.cols) {
    throw std::invalid_argument("embed: expected " + std::to_string(in.rows * in.cols) + " values");
  }
  model_->set_step(autodiff::Layer::kInference);
  model_->set_scratch_allocator(&arena.transient());
  struct Detach {
    autodiff::JoinModel& m;
    ~Detach() { m.set_scratch_allocator(nullptr); }
  } detach{*model_};
  autodiff::Tensor x(in, false, arena, kernels::Uninitialised{});
  kernels::pack_into(inputs, x);
  x = encoder.forward_all(std::move(x), arena);
  std::vector<float> plain(std::size_t(x.shape.rows * x.shape.cols));
  kernels::unpack(x, plain);
  return plain;
}

}  // namespace rematch::models
