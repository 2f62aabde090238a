// Parameter updates after a step's gradients are complete. PyTorch's update rules, so the two
// frameworks train the same model the same way:
//   SGD with momentum:  v = momentum * v + g;  w -= lr * v
//   Adam:  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= lr * m^ / (sqrt(v^) + eps)
// Element-wise and thread-count independent (each element is updated by one thread).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "autodiff/layer.hpp"

namespace rematch::autodiff {

struct OptimizerConfig {
  enum class Kind { sgd, adam };
  Kind kind = Kind::sgd;
  float lr = 0.01f;
  float momentum = 0.9f;  // SGD
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // Adam
};

// "sgd" or "adam"; throws std::invalid_argument otherwise.
OptimizerConfig::Kind optimizer_kind(const std::string& name);

class Optimizer {
 public:
  // State buffers (one or two per parameter) come from `state`.
  Optimizer(const OptimizerConfig& config, std::vector<Tensor*> parameters,
            kernels::Allocator& state);
  // grads[p] is the gradient of parameters[p].
  void step(std::span<const Tensor* const> grads);
  // grads[p] lists the gradients of parameters[p] (the branches sharing an encoder, in branch
  // order), added in that order as the update reads them: bitwise the update of their sum, without
  // a pass that writes the sum first.
  void step(std::span<const std::vector<const Tensor*>> grads);
  std::int64_t steps() const { return steps_; }

  // A step in parts, for a caller that updates each group of parameters as soon as its gradients
  // are final: begin_step() starts the step (Adam's bias correction counts it), then
  // update(first, grads) updates parameters [first, first + grads.size()) as step() would. Every
  // parameter is to be updated once per step; the parts give bitwise step()'s result.
  void begin_step() { ++steps_; }
  void update(std::size_t first, std::span<const std::vector<const Tensor*>> grads);

 private:
  void check(std::size_t first, std::span<const std::vector<const Tensor*>> grads) const;
  void apply(std::size_t first, std::span<const std::vector<const Tensor*>> grads);

  OptimizerConfig config_;
  std::vector<Tensor*> parameters_;
  std::vector<Tensor> first_, second_;  // momentum / Adam moments
  std::int64_t steps_ = 0;
};

}  // namespace rematch::autodiff
