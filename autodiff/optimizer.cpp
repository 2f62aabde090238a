#include "autodiff/optimizer.hpp"

#include <cmath>
#include <stdexcept>

#include "kernels/op_timing.hpp"

namespace rematch::autodiff {

OptimizerConfig::Kind optimizer_kind(const std::string& name) {
  if (name == "sgd") return OptimizerConfig::Kind::sgd;
  if (name == "adam") return OptimizerConfig::Kind::adam;
  throw std::invalid_argument("unknown optimizer '" + name + "' (expected sgd or adam)");
}

Optimizer::Optimizer(const OptimizerConfig& config, std::vector<Tensor*> parameters,
                     kernels::Allocator& state)
    : config_(config), parameters_(std::move(parameters)) {
  if (!(config.lr > 0) || !std::isfinite(config.lr)) {
    throw std::invalid_argument("optimizer: learning rate must be positive and finite");
  }
  for (const Tensor* p : parameters_) {
    first_.emplace_back(p->shape, false, state);
    if (config.kind == OptimizerConfig::Kind::adam) second_.emplace_back(p->shape, false, state);
  }
}

void Optimizer::step(std::span<const Tensor* const> grads) {
  const kernels::OpScope scope(kernels::OpKind::optimizer);
  if (grads.size() != parameters_.size()) {
    throw std::invalid_argument("optimizer: one gradient per parameter");
  }
  ++steps_;
  const float lr = config_.lr;
  for (std::size_t p = 0; p < parameters_.size(); ++p) {
    float* w = parameters_[p]->data.data();
    const float* g = grads[p]->data.data();
    float* m = first_[p].data.data();
    const auto n = static_cast<std::int64_t>(parameters_[p]->data.size());
    if (config_.kind == OptimizerConfig::Kind::sgd) {
      const float mu = config_.momentum;
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) {
        m[i] = mu * m[i] + g[i];
        w[i] -= lr * m[i];
      }
    } else {
      float* v = second_[p].data.data();
      const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
      const float c1 = 1.0f - std::pow(b1, float(steps_)), c2 = 1.0f - std::pow(b2, float(steps_));
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        w[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
      }
    }
  }
}

}  // namespace rematch::autodiff
