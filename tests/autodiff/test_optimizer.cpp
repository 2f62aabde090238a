// The optimizers apply PyTorch's update rules, element by element, padding untouched.
#include "autodiff/optimizer.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace rematch::autodiff {
namespace {

// A 2 x 3 blocked tensor with 2 x 2 blocks: two padded columns.
constexpr BlockShape kShape{2, 3, 2, 2, false};

Tensor tensor(std::vector<float> plain) {
  Tensor t(kShape);
  kernels::pack_into(plain, t);
  return t;
}

std::vector<float> plain(const Tensor& t) {
  std::vector<float> out(6);
  kernels::unpack(t, out);
  return out;
}

// A tensor of `shape` holding values in [-0.5, 0.5) from a linear congruential sequence.
Tensor random_tensor(const BlockShape& shape, std::uint32_t& state) {
  Tensor t(shape);
  for (float& x : t.data.span()) {
    state = state * 1664525u + 1013904223u;
    x = float(state >> 8) * 0x1.0p-24f - 0.5f;
  }
  return t;
}

TEST(Sgd, MomentumUpdateMatchesTheReferenceRecurrence) {
  Tensor w = tensor({1, 2, 3, 4, 5, 6});
  const Tensor g = tensor({0.5f, -1, 0, 2, 0.25f, -0.5f});
  Optimizer opt({.kind = OptimizerConfig::Kind::sgd, .lr = 0.1f, .momentum = 0.9f}, {&w},
                kernels::heap_allocator());
  const Tensor* grads[] = {&g};
  std::vector<double> ref = {1, 2, 3, 4, 5, 6}, v(6, 0.0);
  const std::vector<double> gv = {0.5, -1, 0, 2, 0.25, -0.5};
  for (int step = 0; step < 3; ++step) {
    opt.step(grads);
    for (int i = 0; i < 6; ++i) {
      v[i] = 0.9 * v[i] + gv[i];
      ref[i] -= 0.1 * v[i];
    }
  }
  const auto got = plain(w);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], ref[i], 1e-5) << i;
  EXPECT_EQ(opt.steps(), 3);
}

TEST(Adam, BiasCorrectedUpdateMatchesTheReferenceAndKeepsPaddingZero) {
  Tensor w = tensor({1, 2, 3, 4, 5, 6});
  const Tensor g = tensor({0.5f, -1, 0, 2, 0.25f, -0.5f});
  Optimizer opt({.kind = OptimizerConfig::Kind::adam, .lr = 0.01f}, {&w}, kernels::heap_allocator());
  const Tensor* grads[] = {&g};
  std::vector<double> ref = {1, 2, 3, 4, 5, 6}, m(6, 0.0), v(6, 0.0);
  const std::vector<double> gv = {0.5, -1, 0, 2, 0.25, -0.5};
  for (int t = 1; t <= 4; ++t) {
    opt.step(grads);
    for (int i = 0; i < 6; ++i) {
      m[i] = 0.9 * m[i] + 0.1 * gv[i];
      v[i] = 0.999 * v[i] + 0.001 * gv[i] * gv[i];
      const double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.999, t));
      ref[i] -= 0.01 * mh / (std::sqrt(vh) + 1e-8);
    }
  }
  const auto got = plain(w);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], ref[i], 1e-5) << i;
  // The padded entries (column 3 of each block row) stay zero.
  EXPECT_EQ(w.block(0, 1)[1], 0.0f);
  EXPECT_EQ(w.block(0, 1)[3], 0.0f);
}

// The branches of a shared encoder: the optimizer adds their gradients in order as it reads them,
// which must update bitwise as summing them into one buffer first (the order the trainer used).
TEST(BranchGradients, AddedAsTheUpdateReadsThemGiveBitwiseTheUpdateOfTheirSum) {
  const BlockShape shape{37, 111, 8, 16, false};  // over a few update chunks, padded
  for (const auto kind : {OptimizerConfig::Kind::sgd, OptimizerConfig::Kind::adam}) {
    std::vector<Tensor> parts;
    std::uint32_t state = 12345;
    for (int b = 0; b < 3; ++b) parts.push_back(random_tensor(shape, state));
    Tensor summed(shape);
    for (std::size_t i = 0; i < summed.data.size(); ++i) {
      summed.data.data()[i] = parts[0].data.data()[i];
      for (int b = 1; b < 3; ++b) summed.data.data()[i] += parts[b].data.data()[i];
    }
    Tensor w1(shape), w2(shape);
    Optimizer a({.kind = kind, .lr = 0.05f}, {&w1}, kernels::heap_allocator());
    Optimizer b({.kind = kind, .lr = 0.05f}, {&w2}, kernels::heap_allocator());
    const std::vector<std::vector<const Tensor*>> lists = {{&parts[0], &parts[1], &parts[2]}};
    const Tensor* sum[] = {&summed};
    for (int step = 0; step < 3; ++step) {
      a.step(lists);
      b.step(sum);
    }
    EXPECT_EQ(0, std::memcmp(w1.data.data(), w2.data.data(), w1.data.size() * sizeof(float)));
    EXPECT_NE(w1.data.data()[0], 0.0f);
  }
}

// A step in parts (each group of parameters updated once its gradients are final) updates
// bitwise as one step over all parameters, whichever order the groups come in.
TEST(StepInParts, UpdatingGroupsOfParametersInAnyOrderGivesBitwiseOneStep) {
  const BlockShape shape{19, 70, 8, 16, false};
  for (const auto kind : {OptimizerConfig::Kind::sgd, OptimizerConfig::Kind::adam}) {
    std::vector<Tensor> grads, whole, parts;
    std::uint32_t state = 777;
    for (int p = 0; p < 3; ++p) {
      grads.push_back(random_tensor(shape, state));
      whole.emplace_back(shape);
      parts.emplace_back(shape);
    }
    Optimizer a({.kind = kind, .lr = 0.05f}, {&whole[0], &whole[1], &whole[2]}, kernels::heap_allocator());
    Optimizer b({.kind = kind, .lr = 0.05f}, {&parts[0], &parts[1], &parts[2]}, kernels::heap_allocator());
    const std::vector<std::vector<const Tensor*>> all = {{&grads[0]}, {&grads[1]}, {&grads[2]}};
    for (int step = 0; step < 3; ++step) {
      a.step(all);
      b.begin_step();
      b.update(2, std::span(all).subspan(2));
      b.update(0, std::span(all).first(2));
    }
    EXPECT_EQ(b.steps(), 3);
    for (int p = 0; p < 3; ++p) {
      EXPECT_EQ(0, std::memcmp(whole[p].data.data(), parts[p].data.data(), whole[p].data.size() * sizeof(float)));
    }
  }
}

TEST(OptimizerErrors, RejectsABadLearningRateAnUnknownNameAMismatchedGradientListAndAnUpdateOutsideAStep) {
  Tensor w = tensor({1, 2, 3, 4, 5, 6});
  EXPECT_THROW(Optimizer({.lr = 0}, {&w}, kernels::heap_allocator()), std::invalid_argument);
  EXPECT_THROW(Optimizer({.lr = NAN}, {&w}, kernels::heap_allocator()), std::invalid_argument);
  EXPECT_THROW(optimizer_kind("rmsprop"), std::invalid_argument);
  Optimizer opt({}, {&w}, kernels::heap_allocator());
  EXPECT_THROW(opt.step(std::span<const Tensor* const>{}), std::invalid_argument);
  const Tensor short_gradient(BlockShape{1, 2, 1, 2, false});
  EXPECT_THROW(opt.step(std::vector<std::vector<const Tensor*>>{{&short_gradient}}), std::invalid_argument);
  EXPECT_EQ(opt.steps(), 0) << "a refused step does not count";
  const Tensor g = tensor({1, 1, 1, 1, 1, 1});
  const std::vector<std::vector<const Tensor*>> one = {{&g}};
  EXPECT_THROW(opt.update(0, one), std::logic_error) << "an update before begin_step";
  opt.begin_step();
  EXPECT_THROW(opt.update(1, one), std::invalid_argument);
  opt.update(0, one);
}

}  // namespace
}  // namespace rematch::autodiff
