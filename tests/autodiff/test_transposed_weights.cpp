// An FC layer whose kernel takes its weights transposed ahead (kernels::Fc::takes_transposed_weights)
// keeps w^T only while the parameters are fixed (Layer::set_parameters_fixed, FixedParameters):
// whatever writes the weights in between (the optimizer, the initialisation, a write through
// parameters()), the next backward's input gradient is that of the new weights, the executed
// gradients are bitwise those of a model built afresh with the same weights, and w^T is weight
// memory, counted where the parameters are.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "autodiff/executor.hpp"
#include "autodiff/layers.hpp"
#include "autodiff/optimizer.hpp"
#include "autodiff/profiler.hpp"
#include "autodiff/trainer.hpp"
#include "scheduler/solver.hpp"
#include "tests/autodiff/gradient_equality.hpp"

namespace rematch::autodiff {
namespace {

constexpr std::int64_t kBatch = 40;

kernels::FcDesc fc_desc(std::int64_t c, std::int64_t k, bool relu) {
  kernels::FcDesc d;
  d.n = kBatch;
  d.c = c;
  d.k = k;
  d.activation = relu ? kernels::Activation::relu : kernels::Activation::none;
  return d;
}

// 300 -> 260 pads to 320 x 320 blocks of 64: 400 KiB of weights, transposed ahead.
const kernels::FcDesc kLarge = fc_desc(300, 260, true);

class ThreadsTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    saved_ = omp_get_max_threads();
    omp_set_num_threads(GetParam());
  }
  void TearDown() override { omp_set_num_threads(saved_); }

 private:
  int saved_ = 1;
};

std::string thread_name(const ::testing::TestParamInfo<int>& info) {
  return std::to_string(info.param) + "thread" + (info.param == 1 ? "" : "s");
}

std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

std::vector<float> plain(const Tensor& t) {
  std::vector<float> out(std::size_t(t.shape.rows * t.shape.cols));
  kernels::unpack(t, out);
  return out;
}

// dx = dy w^T of the layer's current weights, as a naive double loop, against the layer's backward.
void expect_input_gradient_of_current_weights(FcLayer& layer, const Tensor& x, const Tensor& dy_in) {
  const std::int64_t n = kLarge.n, c = kLarge.c, k = kLarge.k;
  Tensor y(layer.output_shape()), dy(dy_in.shape), dx(layer.input_shape());
  layer.forward(x, y);
  std::copy(dy_in.data.span().begin(), dy_in.data.span().end(), dy.data.span().begin());
  std::vector<Tensor> grads;
  for (const Tensor* p : layer.parameters()) grads.emplace_back(p->shape);
  layer.backward(x, y, dy, &dx, grads);
  // The ReLU's mask from y, as the layer applies it.
  const std::vector<float> w = plain(*layer.parameters()[0]), g = plain(dy_in), out = plain(y), got = plain(dx);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < c; ++j) {
      double want = 0, scale = 0;
      for (std::int64_t o = 0; o < k; ++o) {
        const double t = out[std::size_t(i * k + o)] > 0 ? double(g[std::size_t(i * k + o)]) * w[std::size_t(j * k + o)] : 0.0;
        want += t;
        scale += std::abs(t);
      }
      ASSERT_NEAR(got[std::size_t(i * c + j)], want, 1e-5 * (scale + 1e-3)) << "dx(" << i << ", " << j << ")";
    }
  }
}

class TransposedWeights : public ThreadsTest {};

TEST_P(TransposedWeights, BackwardAfterEveryWeightWriteUsesTheNewWeights) {
  ASSERT_TRUE(kernels::Fc(kLarge).takes_transposed_weights());
  FcLayer layer(kLarge, kernels::heap_allocator());
  std::uint64_t stream = 1;
  layer.initialize(stream);
  const Tensor x = kernels::pack(random_values(std::size_t(kBatch * kLarge.c), 2), layer.input_shape());
  const Tensor dy = kernels::pack(random_values(std::size_t(kBatch * kLarge.k), 3), layer.output_shape());
  Optimizer optimizer({.kind = OptimizerConfig::Kind::sgd, .lr = 0.1f}, layer.parameters(), kernels::heap_allocator());
  std::vector<Tensor> steps;
  for (const Tensor* p : layer.parameters()) {
    steps.emplace_back(p->shape);
    kernels::pack_into(random_values(std::size_t(p->shape.rows * p->shape.cols), 4), steps.back());
  }
  const std::vector<const Tensor*> step_grads = {&steps[0], &steps[1]};
  // Each route writes the weights between two fixed spans, as between two training steps; within
  // a span w^T is made once and read by every backward (twice here, as by two branches).
  const std::function<void()> writes[] = {
      [&] { optimizer.step(step_grads); },
      [&] { layer.initialize(stream); },
      [&] { kernels::pack_into(random_values(std::size_t(kLarge.c * kLarge.k), 5), *layer.parameters()[0]); },
  };
  int route = 0;
  for (const auto& write : writes) {
    SCOPED_TRACE("route " + std::to_string(route++));
    layer.set_parameters_fixed(true);
    expect_input_gradient_of_current_weights(layer, x, dy);
    expect_input_gradient_of_current_weights(layer, x, dy);
    layer.set_parameters_fixed(false);
    write();
    expect_input_gradient_of_current_weights(layer, x, dy);  // unfixed: w transposed per pass
    layer.set_parameters_fixed(true);
    expect_input_gradient_of_current_weights(layer, x, dy);
    layer.set_parameters_fixed(false);
  }
}

// A siamese model whose second layer takes its weights transposed ahead (the first makes no dx).
std::unique_ptr<JoinModel> siamese(kernels::Allocator& params, std::uint64_t seed) {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<FcLayer>(fc_desc(24, 300, true), params));
  layers.push_back(std::make_unique<FcLayer>(kLarge, params));
  layers.push_back(std::make_unique<FcLayer>(fc_desc(260, 16, false), params));
  std::vector<std::unique_ptr<Encoder>> encoders;
  encoders.push_back(std::make_unique<Encoder>("mlp", std::move(layers), std::vector<int>{1, 2, 3}));
  encoders.back()->initialize(seed);
  return std::make_unique<JoinModel>("siamese", std::move(encoders), std::vector<int>{0, 0},
                                     LossHead(LossKind::contrastive, 1.0f));
}

struct Stepped {
  float loss = 0;
  std::vector<Gradients> grads;
};

// One store-all step of `model` on fixed inputs (the gradients of both branches).
Stepped step(JoinModel& model, Arena& params) {
  const Graph graph = profile(model, {.repeats = 1});
  const Solution plan = solve(graph, 1e18, {.solver = "store-all"});
  Arena activations("activations", std::size_t(plan.peak) + (1 << 20));
  Executor executor(model, graph, activations);
  Stepped run;
  std::vector<Tensor> inputs;
  for (int j = 0; j < model.branches(); ++j) {
    run.grads.push_back(model.encoder_of(j).make_gradients(params));
    const BlockShape& in = model.encoder_of(j).input_shape(0);
    inputs.emplace_back(in, false, activations);
    kernels::pack_into(random_values(std::size_t(in.rows * in.cols), 10 + j), inputs.back());
  }
  std::vector<float> targets;
  for (std::int64_t r = 0; r < kBatch; ++r) targets.push_back(float(r % 2));
  model.loss().set_targets(targets);
  run.loss = executor.run(plan.ops, std::move(inputs), run.grads).loss;
  return run;
}

// The model's weights copied into a model built afresh (which has never transposed any).
void expect_step_equals_fresh_models(JoinModel& model, Arena& params) {
  const Stepped got = step(model, params);
  Arena fresh_params("parameters");
  auto fresh = siamese(fresh_params, 99);
  const std::vector<Tensor*> from = model.encoder(0).parameters(), to = fresh->encoder(0).parameters();
  for (std::size_t p = 0; p < from.size(); ++p) kernels::pack_into(plain(*from[p]), *to[p]);
  const Stepped want = step(*fresh, fresh_params);
  EXPECT_EQ(got.loss, want.loss);
  EXPECT_TRUE(bitwise_equal(got.grads, want.grads));
}

TEST_P(TransposedWeights, ExecutedGradientsAfterEveryWeightWriteAreAFreshModelsBitwise) {
  Arena params("parameters");
  auto model = siamese(params, 1);
  Optimizer optimizer({.kind = OptimizerConfig::Kind::adam, .lr = 0.01f}, model->encoder(0).parameters(), params);
  Stepped last = step(*model, params);
  const std::function<void()> writes[] = {
      [&] { optimizer.step(sum_shared_gradients(*model, last.grads)[0]); },
      [&] { model->encoder(0).initialize(7); },
      [&] {
        Tensor& w = *model->encoder(0).parameters()[2];  // the large layer's weight
        kernels::pack_into(random_values(std::size_t(w.shape.rows * w.shape.cols), 8), w);
      },
  };
  int route = 0;
  for (const auto& write : writes) {
    SCOPED_TRACE("route " + std::to_string(route++));
    write();
    expect_step_equals_fresh_models(*model, params);
    last = step(*model, params);
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, TransposedWeights, ::testing::Values(1, 2), thread_name);

TEST(TransposedWeightsMemory, IsCountedWithTheParametersOnlyForLayersThatTakeItAndMakeAnInputGradient) {
  Arena params("parameters");
  const FcLayer large(kLarge, params);
  const std::size_t w = 320 * 320 * sizeof(float), bias = kernels::aligned_bytes(260, sizeof(float));
  EXPECT_EQ(params.in_use(), 2 * w + bias) << "the weight, its bias and w^T";
  Arena small_params("parameters");
  const FcLayer small(fc_desc(256, 256, true), small_params);  // 256 KiB: transposed whole per pass
  EXPECT_EQ(small_params.in_use(), 256 * 256 * sizeof(float) + 256 * sizeof(float));
  Arena input_params("parameters");
  const FcLayer input(kLarge, input_params, false);  // an encoder's first layer: no input gradient
  EXPECT_EQ(input_params.in_use(), w + bias);
}

}  // namespace
}  // namespace rematch::autodiff
