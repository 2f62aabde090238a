// The runtime executes every valid schedule to the same gradients, within its budget, and
// refuses what it cannot run before running anything.
#include "autodiff/executor.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <random>
#include <tuple>

#include "autodiff/layers.hpp"
#include "autodiff/optimizer.hpp"
#include "autodiff/profiler.hpp"
#include "autodiff/stage_updates.hpp"
#include "autodiff/trainer.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#include "tests/autodiff/gradient_equality.hpp"

namespace rematch::autodiff {
namespace {

constexpr std::int64_t kBatch = 6;

std::unique_ptr<Layer> fc(std::int64_t c, std::int64_t k, bool relu, kernels::Allocator& params) {
  kernels::FcDesc d;
  d.n = kBatch;
  d.c = c;
  d.k = k;
  d.bn = d.bc = d.bk = 8;  // several blocks, some partial, on these odd sizes
  d.activation = relu ? kernels::Activation::relu : kernels::Activation::none;
  return std::make_unique<FcLayer>(d, params);
}

// Five stages over odd widths; stage 2 holds two layers, so F_all keeps a tape.
std::unique_ptr<Encoder> mlp(kernels::Allocator& params, std::int64_t out, std::uint64_t seed) {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(fc(11, 13, true, params));
  layers.push_back(fc(13, 17, true, params));
  layers.push_back(fc(17, 9, true, params));
  layers.push_back(fc(9, 13, true, params));
  layers.push_back(fc(13, 13, true, params));
  layers.push_back(fc(13, out, false, params));
  auto e = std::make_unique<Encoder>("mlp", std::move(layers), std::vector<int>{1, 2, 4, 5, 6});
  e->initialize(seed);
  return e;
}

// conv1d (same) + ReLU layer, max pool, conv1d (valid, dilated) with a fused ReLU, then in the
// next stage a conv1d with a fused ReLU (which applies the previous one's mask as it writes its
// input gradient), then an FC head.
std::unique_ptr<Encoder> conv(kernels::Allocator& params, std::int64_t out, std::uint64_t seed) {
  std::vector<std::unique_ptr<Layer>> layers;
  kernels::Conv1dDesc c1{.n = kBatch, .c = 3, .k = 5, .width = 11, .taps = 3, .dilation = 1};
  layers.push_back(std::make_unique<Conv1dLayer>(c1, params));
  layers.push_back(std::make_unique<ReluLayer>(layers.back()->output_shape()));
  kernels::Pool1dDesc p{.n = kBatch, .channels = 5, .width = 11, .window = 2, .stride = 2};
  layers.push_back(std::make_unique<Pool1dLayer>(p));
  kernels::Conv1dDesc c2{.n = kBatch, .c = 5, .k = 4, .width = 5, .taps = 2, .dilation = 2,
                         .padding = kernels::Padding::valid, .activation = kernels::Activation::relu};
  layers.push_back(std::make_unique<Conv1dLayer>(c2, params));
  kernels::Conv1dDesc c3{.n = kBatch, .c = 4, .k = 4, .width = 3, .taps = 3, .dilation = 1,
                         .activation = kernels::Activation::relu};
  layers.push_back(std::make_unique<Conv1dLayer>(c3, params));
  auto head = fc(4 * 3, out, false, params);
  layers.push_back(std::make_unique<ToBlockedLayer>(head->input_shape()));
  layers.push_back(std::move(head));
  auto e = std::make_unique<Encoder>("conv", std::move(layers), std::vector<int>{2, 3, 4, 5, 7});
  e->initialize(seed);
  return e;
}

enum class Family { chain, siamese, cross_modal };

struct Setup {
  Arena params{"parameters"};
  std::unique_ptr<JoinModel> model;
  Graph graph;
  Batch batch;
};

std::unique_ptr<Setup> make(Family family, Precision activations = Precision::fp32) {
  auto s = std::make_unique<Setup>();
  std::vector<std::unique_ptr<Encoder>> encoders;
  std::vector<int> branch_encoder;
  LossHead loss(LossKind::contrastive, 1.0f);
  switch (family) {
    case Family::chain:
      encoders.push_back(mlp(s->params, 7, 1));
      branch_encoder = {0};
      loss = LossHead(LossKind::cross_entropy, 0);
      break;
    case Family::siamese:
      encoders.push_back(mlp(s->params, 7, 2));
      branch_encoder = {0, 0};
      break;
    case Family::cross_modal:
      encoders.push_back(conv(s->params, 7, 3));
      encoders.push_back(mlp(s->params, 7, 4));
      branch_encoder = {0, 1};
      loss = LossHead(LossKind::cosine, 0.1f);
      break;
  }
  s->model = std::make_unique<JoinModel>("test", std::move(encoders), branch_encoder, loss);
  s->model->set_activation_precision(activations);
  s->graph = profile(*s->model, {.repeats = 1});
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (int j = 0; j < s->model->branches(); ++j) {
    const BlockShape& in = s->model->encoder_of(j).input_shape(0);
    std::vector<float> x(std::size_t(in.rows * in.cols));
    for (float& v : x) v = normal(rng);
    s->batch.inputs.push_back(input_rows(x));
  }
  for (std::int64_t r = 0; r < kBatch; ++r) {
    s->batch.targets.push_back(family == Family::chain        ? float(r % 7)
                               : family == Family::siamese ? float(r % 2)
                                                           : (r % 2 ? 1.f : -1.f));
  }
  s->model->loss().set_targets(s->batch.targets);
  return s;
}

struct Executed {
  StepResult step;
  std::vector<Gradients> grads;
  double predicted_peak = 0;
};

Executed execute(Setup& s, const Schedule& schedule, std::size_t budget) {
  Arena arena("activations", budget);
  Executor executor(*s.model, s.graph, arena);
  Executed run;
  run.predicted_peak = simulate(s.graph, schedule, double(budget)).peak;
  for (int j = 0; j < s.model->branches(); ++j) {
    run.grads.push_back(s.model->encoder_of(j).make_gradients(s.params));
  }
  std::vector<Tensor> inputs;
  for (int j = 0; j < s.model->branches(); ++j) {
    inputs.emplace_back(s.model->encoder_of(j).input_shape(0), false, arena);
    kernels::pack_into(s.batch.inputs[j].span(), inputs.back());
  }
  run.step = executor.run(schedule, std::move(inputs), run.grads);
  EXPECT_EQ(arena.in_use(), 0u) << "a complete schedule leaves nothing in the arena";
  return run;
}

// How far below the simulator's peak the arena's may stay (autodiff/profiler.hpp): a taped
// forward is charged its stage's inner activations twice at most, the first backward y_0.
double peak_slack(const Graph& graph) {
  double slack = 0;
  for (const Branch& b : graph.branches) {
    slack = std::max(slack, b.cw[0]);
    for (std::size_t i = 1; i < b.cw.size(); ++i) slack = std::max(slack, b.cbw[i] - b.cw[i]);
  }
  return slack;
}

// In either activation precision: a bf16 run against the bf16 store-all run.
class ScheduleIndependence : public ::testing::TestWithParam<std::tuple<Family, Precision>> {};

TEST_P(ScheduleIndependence, EverySolverAndBudgetGivesBitwiseTheStoreAllGradients) {
  auto s = make(std::get<0>(GetParam()), std::get<1>(GetParam()));
  const double store_all_peak = solve(s->graph, 1e18, {.solver = "store-all"}).peak;
  const auto reference = execute(*s, solve(s->graph, store_all_peak, {.solver = "store-all"}).ops,
                                 std::size_t(store_all_peak));
  const double least = min_feasible_memory(s->graph);
  std::vector<std::pair<std::string, double>> runs = {
      {"recompute-all", store_all_peak}, {"segments:2", store_all_peak}, {"sqrt", store_all_peak}};
  for (double f : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    runs.push_back({"optimal", std::floor(least + f * (store_all_peak - least))});
  }
  for (const auto& [solver, budget] : runs) {
    SCOPED_TRACE(solver + " at " + std::to_string(budget));
    const Solution plan = solve(s->graph, budget, {.solver = solver});
    const Executed run = execute(*s, plan.ops, std::size_t(budget));
    EXPECT_EQ(run.step.loss, reference.step.loss);
    EXPECT_TRUE(bitwise_equal(run.grads, reference.grads));
    EXPECT_LE(double(run.step.arena_peak), budget);
    EXPECT_LE(double(run.step.arena_peak), run.predicted_peak);
    EXPECT_GE(double(run.step.arena_peak), run.predicted_peak - peak_slack(s->graph));
  }
}

// Central differences of the loss against the executed gradients, on entries of the first and
// the last layer's weights and biases. fp32 losses near 1: eps 1e-3 keeps the rounding error of
// the difference near 1e-4, and rarely moves a ReLU, max-pool or margin kink across the step
// (eps 1e-2 did, on the convolution encoder).
TEST(FiniteDifferences, ExecutedGradientsMatchCentralDifferencesOfTheLoss) {
  for (Family f : {Family::chain, Family::siamese, Family::cross_modal}) {
    SCOPED_TRACE("family " + std::to_string(int(f)));
    auto s = make(f);
    const Solution plan = solve(s->graph, min_feasible_memory(s->graph));
    const auto budget = std::size_t(min_feasible_memory(s->graph));
    const Executed base = execute(*s, plan.ops, budget);
    for (int e = 0; e < s->model->encoders(); ++e) {
      std::vector<Tensor*> params = s->model->encoder(e).parameters();
      // Branches running this encoder, whose gradients add up to the encoder's.
      std::vector<int> users;
      for (int j = 0; j < s->model->branches(); ++j) {
        if (s->model->encoder_index(j) == e) users.push_back(j);
      }
      // The layer index of each parameter, to find its gradient.
      std::vector<std::pair<std::size_t, std::size_t>> where;
      const Gradients& g0 = base.grads[users[0]];
      for (std::size_t l = 0; l < g0.size(); ++l) {
        for (std::size_t p = 0; p < g0[l].size(); ++p) where.push_back({l, p});
      }
      for (std::size_t q : {std::size_t(0), std::size_t(1), params.size() - 2, params.size() - 1}) {
        Tensor& param = *params[q];
        std::vector<float> plain(std::size_t(param.shape.rows * param.shape.cols));
        kernels::unpack(param, plain);
        for (std::size_t idx : {std::size_t(0), plain.size() / 2, plain.size() - 1}) {
          std::vector<float> grad_plain(plain.size());
          double analytic = 0;
          for (int j : users) {
            kernels::unpack(base.grads[j][where[q].first][where[q].second], grad_plain);
            analytic += grad_plain[idx];
          }
          const float saved = plain[idx];
          const float eps = 1e-3f;
          plain[idx] = saved + eps;
          kernels::pack_into(plain, param);
          const double up = execute(*s, plan.ops, budget).step.loss;
          plain[idx] = saved - eps;
          kernels::pack_into(plain, param);
          const double down = execute(*s, plan.ops, budget).step.loss;
          plain[idx] = saved;
          kernels::pack_into(plain, param);
          const double numeric = (up - down) / (2.0 * eps);
          EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::abs(numeric))
              << "parameter " << q << " entry " << idx;
        }
      }
    }
  }
}

Schedule store_all_ops(const Graph& graph) {
  return solve(graph, 1e18, {.solver = "store-all"}).ops;
}

double store_all_peak(const Graph& graph) { return solve(graph, 1e18, {.solver = "store-all"}).peak; }

TEST(ExecutedFlops, StoreAllRunsTheUsefulFlopsAndEachRecomputedForwardAddsItsStage) {
  auto s = make(Family::siamese);
  double useful = 0;
  for (int j = 0; j < s->model->branches(); ++j) {
    const Encoder& e = s->model->encoder_of(j);
    for (int i = 0; i < e.stages(); ++i) useful += e.forward_flops(i) + e.backward_flops(i);
  }
  EXPECT_DOUBLE_EQ(executed_flops(*s->model, solve(s->graph, 1e18, {.solver = "store-all"}).ops), useful);
  const Schedule recompute = solve(s->graph, 1e18, {.solver = "recompute-all"}).ops;
  std::map<std::pair<int, int>, int> forwards;  // (branch, stage) -> forward ops run
  for (const Op& op : recompute) {
    if (op.kind == OpKind::F_all || op.kind == OpKind::F_ck || op.kind == OpKind::F_none) ++forwards[{op.branch, op.stage}];
  }
  double recomputed = 0;
  for (const auto& [at, count] : forwards) recomputed += (count - 1) * s->model->encoder_of(at.first).forward_flops(at.second);
  ASSERT_GT(recomputed, 0);
  EXPECT_DOUBLE_EQ(executed_flops(*s->model, recompute), useful + recomputed);
}

TEST(Refusal, AnInvalidScheduleIsRefusedWithItsOpIndexBeforeAnythingRuns) {
  auto s = make(Family::siamese);
  Schedule ops = store_all_ops(s->graph);
  const auto loss_at = std::find(ops.begin(), ops.end(), Op::loss_op()) - ops.begin();
  std::swap(ops[loss_at], ops[loss_at + 1]);  // a backward before the loss made its gradient
  Arena arena("activations", 1 << 24);
  Executor executor(*s->model, s->graph, arena);
  std::vector<Gradients> grads;
  std::vector<Tensor> inputs;
  for (int j = 0; j < 2; ++j) {
    grads.push_back(s->model->encoder_of(j).make_gradients(s->params));
    inputs.emplace_back(s->model->encoder_of(j).input_shape(0), false, arena);
  }
  const std::size_t input_bytes = arena.in_use();
  try {
    executor.run(ops, std::move(inputs), grads);
    FAIL() << "invalid schedule ran";
  } catch (const InvalidSchedule& e) {
    EXPECT_EQ(e.op_index, std::size_t(loss_at));
    EXPECT_NE(std::string(e.what()).find("op " + std::to_string(loss_at)), std::string::npos) << e.what();
  }
  EXPECT_EQ(arena.high_water(), input_bytes) << "nothing was allocated beyond the inputs";
  for (const auto& branch : grads) {
    for (const auto& layer : branch) {
      for (const Tensor& g : layer) {
        for (float v : g.data.span()) ASSERT_EQ(v, 0.0f) << "a gradient was written";
      }
    }
  }
}

TEST(Refusal, AScheduleWhosePeakExceedsTheArenaBudgetIsRefused) {
  auto s = make(Family::chain);
  const Solution plan = solve(s->graph, 1e18, {.solver = "store-all"});
  Arena arena("activations", std::size_t(plan.peak) - 64);
  Executor executor(*s->model, s->graph, arena);
  EXPECT_THROW(executor.check(plan.ops), InvalidSchedule);
}

TEST(Refusal, ATrainerBudgetBelowTheLeastFeasibleOneIsRefusedWithThatNumber) {
  auto s = make(Family::siamese);
  const double least = min_feasible_memory(s->graph);
  TrainerOptions options;
  options.activation_budget = std::size_t(least) - 1;
  try {
    Trainer trainer(*s->model, s->params, options);
    FAIL() << "trainer accepted an infeasible budget";
  } catch (const InfeasibleBudget& e) {
    EXPECT_EQ(e.min_memory, least);
  }
  options.activation_budget = std::size_t(least);
  Trainer trainer(*s->model, s->params, options);
  const StepResult step = trainer.step(copy_of(s->batch));
  EXPECT_LE(step.arena_peak, std::size_t(least));
  EXPECT_TRUE(std::isfinite(step.loss));
}

// Synthetic op times (not measured) so that the medians are known: op k of step r takes
// 1 + k + 100 r ms. Every stage of the shared encoder is run once per branch and step, so its
// calibrated time is the median over 2 branches x 3 steps.
TEST(Calibration, StageTimesAreMediansOverEveryStepAndBranchAndSizesAreKept) {
  auto s = make(Family::siamese);
  const Solution plan = solve(s->graph, 1e18, {.solver = "store-all"});
  std::vector<std::vector<double>> steps(3);
  for (int r = 0; r < 3; ++r) {
    for (std::size_t k = 0; k < plan.ops.size(); ++k) steps[r].push_back(1e-3 * double(1 + k + 100 * r));
  }
  const Graph g = calibrate(s->graph, *s->model, plan.ops, steps);
  for (int i = 0; i < g.branches[0].stages(); ++i) {
    std::vector<double> fw, bw;
    for (int r = 0; r < 3; ++r) {
      for (std::size_t k = 0; k < plan.ops.size(); ++k) {
        const Op& op = plan.ops[k];
        if (op.stage != i) continue;
        if (op.kind == OpKind::F_all || op.kind == OpKind::F_ck || op.kind == OpKind::F_none) fw.push_back(steps[r][k]);
        if (op.kind == OpKind::B) bw.push_back(steps[r][k]);
      }
    }
    ASSERT_EQ(fw.size(), 6u);
    ASSERT_EQ(bw.size(), 6u);
    std::sort(fw.begin(), fw.end());
    std::sort(bw.begin(), bw.end());
    for (int j = 0; j < 2; ++j) {
      EXPECT_DOUBLE_EQ(g.branches[j].fw[i], 0.5 * (fw[2] + fw[3])) << "stage " << i;
      EXPECT_DOUBLE_EQ(g.branches[j].bw[i], 0.5 * (bw[2] + bw[3])) << "stage " << i;
      EXPECT_EQ(g.branches[j].cw[i], s->graph.branches[j].cw[i]);
      EXPECT_EQ(g.branches[j].btmp[i], s->graph.branches[j].btmp[i]);
    }
  }
  EXPECT_THROW(calibrate(s->graph, *s->model, plan.ops, {}), std::invalid_argument);
  steps[1].pop_back();
  EXPECT_THROW(calibrate(s->graph, *s->model, plan.ops, steps), std::invalid_argument);
}

// An exchange that records what the trainer hands over and exchanges nothing.
class RecordingExchange final : public GradientExchange {
 public:
  int processes() const override { return 2; }
  std::size_t buffer_floats(std::size_t gradient_floats) const override { return gradient_floats; }
  void attach(std::span<float> buffer) override { attached = buffer.size(); }
  void stage_final(std::span<const std::span<float>> tensors) override {
    for (const auto& t : tensors) handed.emplace_back(t.begin(), t.end());
  }
  void progress() override {}
  double finish() override { return 0; }
  float mean(float local) override { return local; }

  std::size_t attached = 0;
  std::vector<std::vector<float>> handed;
};

TEST(GradientExchangeHook, EachStageIsHandedOverOnceInTheFixedOrderWithItsBranchSummedFinalValues) {
  for (Family f : {Family::chain, Family::siamese, Family::cross_modal}) {
    auto s = make(f);
    // The reference: store-all's per-branch gradients, summed over the branches of an encoder
    // in branch order.
    const Executed ref = execute(*s, solve(s->graph, 1e300, {.solver = "store-all"}).ops,
                                 Arena::kUnlimited);
    std::vector<std::vector<float>> expected;
    std::size_t floats = 0;
    for (int e = 0; e < s->model->encoders(); ++e) {
      int first = -1;
      for (int j = 0; j < s->model->branches() && first < 0; ++j) {
        if (s->model->encoder_index(j) == e) first = j;
      }
      std::vector<int> stage_first_layer{0};
      for (int i = 0; i < s->model->encoder(e).stages(); ++i) {
        stage_first_layer.push_back(stage_first_layer.back() +
                                    int(s->model->encoder(e).stage_layers(i).size()));
      }
      for (int i = s->model->encoder(e).stages() - 1; i >= 0; --i) {
        for (int l = stage_first_layer[i]; l < stage_first_layer[i + 1]; ++l) {
          for (std::size_t p = 0; p < ref.grads[first][l].size(); ++p) {
            const auto g = ref.grads[first][l][p].data.span();
            std::vector<float> sum(g.begin(), g.end());
            for (int j = first + 1; j < s->model->branches(); ++j) {
              if (s->model->encoder_index(j) != e) continue;
              const auto add = ref.grads[j][l][p].data.span();
              for (std::size_t k = 0; k < sum.size(); ++k) sum[k] += add[k];
            }
            floats += sum.size();
            expected.push_back(std::move(sum));
          }
        }
      }
    }
    const double least = min_feasible_memory(s->graph);
    const std::size_t reserved = kernels::aligned_bytes(floats, sizeof(float));
    RecordingExchange exchange;
    TrainerOptions options;
    options.calibrate = false;
    options.profile.repeats = 1;
    options.exchange = &exchange;
    // Below the least budget plus the buffers: refused with that sum.
    options.activation_budget = std::size_t(least) + reserved - 1;
    try {
      Trainer trainer(*s->model, s->params, options);
      FAIL() << "trainer accepted a budget without room for the exchange's buffers";
    } catch (const InfeasibleBudget& e) {
      EXPECT_EQ(e.min_memory, least + double(reserved));
    }
    // At that least budget the plan recomputes, so the order of final stages is not store-all's.
    options.activation_budget = std::size_t(least) + reserved;
    Trainer trainer(*s->model, s->params, options);
    EXPECT_EQ(exchange.attached, floats);
    EXPECT_EQ(trainer.exchange_bytes(), reserved);
    const StepResult step = trainer.step(copy_of(s->batch));
    EXPECT_LE(step.arena_peak, options.activation_budget);
    EXPECT_EQ(exchange.handed, expected);
  }
}

// An exchange as two processes with this process's gradients would make it: finish() writes each
// handed-over tensor's sum over the processes (twice its value, exact in floating point).
class DoublingExchange final : public GradientExchange {
 public:
  int processes() const override { return 2; }
  std::size_t buffer_floats(std::size_t gradient_floats) const override { return gradient_floats; }
  void attach(std::span<float>) override {}
  void stage_final(std::span<const std::span<float>> tensors) override {
    handed.insert(handed.end(), tensors.begin(), tensors.end());
  }
  void progress() override {}
  float mean(float local) override { return local; }
  double finish() override {
    for (const auto& t : handed) {
      for (float& v : t) v *= 2;
    }
    handed.clear();
    return 0;
  }

 private:
  std::vector<std::span<float>> handed;
};

// Every parameter's bits, encoder by encoder.
std::vector<std::vector<std::uint32_t>> weights(JoinModel& model) {
  std::vector<std::vector<std::uint32_t>> out;
  for (int e = 0; e < model.encoders(); ++e) {
    for (const Tensor* p : model.encoder(e).parameters()) {
      out.emplace_back();
      for (const float v : p->data.span()) out.back().push_back(std::bit_cast<std::uint32_t>(v));
    }
  }
  return out;
}

// The unfused update: store-all gradients of every branch (scaled by `exchanged`, a power of two,
// as the exchange's sum), summed over the branches of each encoder in branch order, then one
// optimizer step over all parameters; the weights after `steps` steps.
std::vector<std::vector<std::uint32_t>> updated_after_whole_backward(Family family, OptimizerConfig config, int steps,
                                                             float exchanged) {
  auto s = make(family);
  std::vector<Optimizer> optimizers;
  for (int e = 0; e < s->model->encoders(); ++e) {
    optimizers.emplace_back(config, s->model->encoder(e).parameters(), s->params);
  }
  const Schedule store_all = solve(s->graph, 1e300, {.solver = "store-all"}).ops;
  for (int r = 0; r < steps; ++r) {
    s->model->set_step(r);
    Executed run = execute(*s, store_all, Arena::kUnlimited);
    for (Gradients& branch : run.grads) {
      for (auto& layer : branch) {
        for (Tensor& g : layer) {
          for (float& v : g.data.span()) v *= exchanged;
        }
      }
    }
    const auto summed = sum_shared_gradients(*s->model, run.grads);
    for (int e = 0; e < s->model->encoders(); ++e) optimizers[e].step(summed[e]);
  }
  return weights(*s->model);
}

// Without an exchange the trainer updates each stage right after the backward that completes its
// gradients; with one, after the exchange's finish(). Either way, under store-all and under a
// plan that recomputes, at 1 and 2 threads, the weights after several steps are bitwise those of
// the update after the whole backward.
TEST(StageUpdates, WeightsAfterSeveralStepsAreBitwiseThoseOfOneUpdateAfterTheWholeBackward) {
  constexpr int kSteps = 3;
  const int threads = omp_get_max_threads();
  for (Family f : {Family::chain, Family::siamese, Family::cross_modal}) {
    for (const auto kind : {OptimizerConfig::Kind::sgd, OptimizerConfig::Kind::adam}) {
      const OptimizerConfig config{.kind = kind, .lr = 0.05f};
      omp_set_num_threads(1);
      const auto reference = updated_after_whole_backward(f, config, kSteps, 1.0f);
      const auto reference_exchanged = updated_after_whole_backward(f, config, kSteps, 2.0f);
      for (const bool least : {false, true}) {
        for (const bool exchange : {false, true}) {
          for (const int t : {1, 2}) {
            SCOPED_TRACE(std::string(kind == OptimizerConfig::Kind::sgd ? "sgd" : "adam") +
                         (least ? " at the least budget" : " store-all") + (exchange ? " with an exchange" : "") +
                         ", threads " + std::to_string(t) + ", family " + std::to_string(int(f)));
            omp_set_num_threads(t);
            auto s = make(f);
            DoublingExchange doubling;
            TrainerOptions options;
            options.calibrate = false;
            options.profile.repeats = 1;
            options.optimizer = config;
            options.exchange = exchange ? &doubling : nullptr;
            std::size_t floats = 0;
            for (int e = 0; e < s->model->encoders(); ++e) {
              for (const Tensor* p : s->model->encoder(e).parameters()) floats += p->data.size();
            }
            const std::size_t reserved = exchange ? kernels::aligned_bytes(floats, sizeof(float)) : 0;
            const double store_all_peak = solve(s->graph, 1e300, {.solver = "store-all"}).peak;
            options.activation_budget =
                std::size_t(least ? min_feasible_memory(s->graph) : store_all_peak) + reserved;
            if (!least) options.solve.solver = "store-all";
            Trainer trainer(*s->model, s->params, options);
            const Schedule store_all = solve(s->graph, 1e300, {.solver = "store-all"}).ops;
            if (least) {
              EXPECT_GT(executed_flops(*s->model, trainer.plan().ops), executed_flops(*s->model, store_all));
            }
            for (int r = 0; r < kSteps; ++r) trainer.step(copy_of(s->batch));
            EXPECT_EQ(weights(*s->model), exchange ? reference_exchanged : reference);
          }
        }
      }
    }
  }
  omp_set_num_threads(threads);
}

// Every tensor kept between ops is half the size in bf16 (up to the whole cache line each
// rounds to), so keeping everything takes less. (The least feasible budget need not drop: it
// is set by one backward, whose fp32 copies of the values it reads are extra scratch.)
TEST(Bf16Activations, ProfiledSizesAreHalvedAndStoringEverythingTakesLess) {
  for (Family f : {Family::chain, Family::siamese, Family::cross_modal}) {
    SCOPED_TRACE("family " + std::to_string(int(f)));
    auto fp32 = make(f, Precision::fp32);
    auto bf16 = make(f, Precision::bf16);
    for (int j = 0; j < fp32->model->branches(); ++j) {
      const Encoder& encoder = fp32->model->encoder_of(j);
      const Branch &a = fp32->graph.branches[j], &h = bf16->graph.branches[j];
      for (int i = 0; i <= encoder.stages(); ++i) {
        const BlockShape& shape = i < encoder.stages() ? encoder.input_shape(i)
                                                       : encoder.output_shape(i - 1);
        const double elems = double(shape.elems());
        EXPECT_EQ(a.cw[i], double(kernels::aligned_bytes(std::size_t(elems), 4))) << "stage " << i;
        EXPECT_EQ(h.cw[i], double(kernels::aligned_bytes(std::size_t(elems), 2))) << "stage " << i;
        if (i == 0) continue;
        const double tensors = double(encoder.stage_layers(i - 1).size());
        EXPECT_GE(2 * h.cbw[i], a.cbw[i]) << "stage " << i;
        EXPECT_LE(2 * h.cbw[i], a.cbw[i] + 2 * double(kernels::kAlignment) * tensors) << "stage " << i;
        EXPECT_LT(h.cbw[i], a.cbw[i]) << "stage " << i;
      }
    }
    EXPECT_LT(store_all_peak(bf16->graph), store_all_peak(fp32->graph));
  }
}

// The rounding takes effect (the gradients differ from fp32's) and stays a rounding: the loss
// moves by about bf16's precision (2^-8 relative) and the gradients keep their direction. A
// rounded pre-activation near zero may flip a ReLU, which changes that sample's whole gradient
// below it, so gradients are compared by direction rather than element by element.
TEST(Bf16Activations, GradientsDifferFromFp32ByRoundingOnly) {
  for (Family f : {Family::chain, Family::siamese, Family::cross_modal}) {
    SCOPED_TRACE("family " + std::to_string(int(f)));
    auto fp32 = make(f, Precision::fp32);
    auto bf16 = make(f, Precision::bf16);
    const Executed a = execute(*fp32, store_all_ops(fp32->graph), std::size_t(1) << 30);
    const Executed h = execute(*bf16, store_all_ops(bf16->graph), std::size_t(1) << 30);
    EXPECT_FALSE(bitwise_equal(a.grads, h.grads));
    EXPECT_NEAR(h.step.loss, a.step.loss, 1e-2 * std::abs(a.step.loss));
    double dot = 0, norm_a = 0, norm_h = 0;
    for (std::size_t j = 0; j < a.grads.size(); ++j) {
      for (std::size_t l = 0; l < a.grads[j].size(); ++l) {
        for (std::size_t p = 0; p < a.grads[j][l].size(); ++p) {
          const auto x = a.grads[j][l][p].data.span(), y = h.grads[j][l][p].data.span();
          for (std::size_t e = 0; e < x.size(); ++e) {
            dot += double(x[e]) * double(y[e]);
            norm_a += double(x[e]) * double(x[e]);
            norm_h += double(y[e]) * double(y[e]);
          }
        }
      }
    }
    ASSERT_GT(norm_a, 0);
    EXPECT_GT(dot / std::sqrt(norm_a * norm_h), 0.99);
  }
}

// The trainer keeps bf16 activations when asked and plans with their sizes: at the bf16
// store-all peak, below fp32's, its plan recomputes nothing and its steps stay in the budget.
TEST(Bf16Activations, TrainerPlansWithBf16SizesAndStaysWithinTheBudget) {
  auto s = make(Family::siamese);
  const Graph bf16 = make(Family::siamese, Precision::bf16)->graph;
  TrainerOptions options;
  options.activations = Precision::bf16;
  options.activation_budget = std::size_t(store_all_peak(bf16));
  ASSERT_LT(double(options.activation_budget), store_all_peak(s->graph));
  Trainer trainer(*s->model, s->params, options);
  EXPECT_EQ(trainer.graph().branches[0].cw, bf16.branches[0].cw);
  EXPECT_EQ(trainer.graph().branches[0].cbw, bf16.branches[0].cbw);
  std::size_t forwards = 0;
  for (const Op& op : trainer.plan().ops) forwards += op.kind == OpKind::F_all || op.kind == OpKind::F_ck || op.kind == OpKind::F_none;
  EXPECT_EQ(forwards, std::size_t(2 * s->model->encoder_of(0).stages())) << "no forward recomputed";
  for (int step = 0; step < 3; ++step) {
    const StepResult result = trainer.step(copy_of(s->batch));
    EXPECT_LE(result.arena_peak, options.activation_budget);
    EXPECT_TRUE(std::isfinite(result.loss));
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ScheduleIndependence,
                         ::testing::Combine(::testing::Values(Family::chain, Family::siamese,
                                                              Family::cross_modal),
                                            ::testing::Values(Precision::fp32, Precision::bf16)),
                         [](const auto& info) {
                           const Family f = std::get<0>(info.param);
                           return std::string(f == Family::chain     ? "chain_"
                                              : f == Family::siamese ? "siamese_"
                                                                     : "cross_modal_") +
                                  to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace rematch::autodiff
