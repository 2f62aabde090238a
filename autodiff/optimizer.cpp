#include "autodiff/optimizer.hpp"

#include <algorithm>
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
  std::vector<std::vector<const Tensor*>> lists;
  lists.reserve(grads.size());
  for (const Tensor* g : grads) lists.push_back({g});
  step(lists);
}

void Optimizer::step(std::span<const std::vector<const Tensor*>> grads) {
  if (grads.size() != parameters_.size()) {
    throw std::invalid_argument("optimizer: one gradient per parameter");
  }
  check(0, grads);
  begin_step();
  apply(0, grads);
}

void Optimizer::update(std::size_t first, std::span<const std::vector<const Tensor*>> grads) {
  if (steps_ == 0) throw std::logic_error("optimizer: update before begin_step");
  check(first, grads);
  apply(first, grads);
}

void Optimizer::check(std::size_t first, std::span<const std::vector<const Tensor*>> grads) const {
  if (first > parameters_.size() || grads.size() > parameters_.size() - first) {
    throw std::invalid_argument("optimizer: gradients beyond the last parameter");
  }
  for (std::size_t p = 0; p < grads.size(); ++p) {
    if (grads[p].empty()) throw std::invalid_argument("optimizer: a parameter without a gradient");
    for (const Tensor* g : grads[p]) {
      if (g->data.size() != parameters_[first + p]->data.size()) {
        throw std::invalid_argument("optimizer: a gradient's size differs from its parameter's");
      }
    }
  }
}

void Optimizer::apply(std::size_t first, std::span<const std::vector<const Tensor*>> grads) {
  const kernels::OpScope scope(kernels::OpKind::optimizer);
  const OptimizerConfig c = config_;
  const float c1 = 1.0f - std::pow(c.beta1, float(steps_)), c2 = 1.0f - std::pow(c.beta2, float(steps_));
  // One parallel region for every parameter of the call (a small model's update is mostly region
  // start-ups otherwise), in chunks whose summed gradient stays in L1; each element is updated by one
  // thread, so the result is thread-count independent.
  constexpr std::int64_t kChunk = 1024;
#pragma omp parallel
  {
    alignas(64) float g[kChunk];
    for (std::size_t p = 0; p < grads.size(); ++p) {
      const std::vector<const Tensor*>& parts = grads[p];
      const auto n = static_cast<std::int64_t>(parameters_[first + p]->data.size());
#pragma omp for schedule(static) nowait
      for (std::int64_t c0 = 0; c0 < n; c0 += kChunk) {
        const std::int64_t len = std::min(kChunk, n - c0);
        const float* head = parts[0]->data.data() + c0;
        std::copy(head, head + len, g);
        for (std::size_t b = 1; b < parts.size(); ++b) {
          const float* add = parts[b]->data.data() + c0;
          for (std::int64_t i = 0; i < len; ++i) g[i] += add[i];
        }
        float* w = parameters_[first + p]->data.data() + c0;
        float* m = first_[first + p].data.data() + c0;
        if (c.kind == OptimizerConfig::Kind::sgd) {
          for (std::int64_t i = 0; i < len; ++i) {
            m[i] = c.momentum * m[i] + g[i];
            w[i] -= c.lr * m[i];
          }
        } else {
          float* v = second_[first + p].data.data() + c0;
          for (std::int64_t i = 0; i < len; ++i) {
            m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i];
            v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i];
            w[i] -= c.lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + c.eps);
          }
        }
      }
    }
  }
}

}  // namespace rematch::autodiff
