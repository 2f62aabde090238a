// A step's buffers skip their zero-fill wherever the producer writes every element (the blocked
// layout's padding included). Checked by poisoning: with every block the activation arena hands
// out filled with NaN bytes, each model trains to bitwise the losses and weights (and, for the
// sequence models, the gradients) of the run whose arena zero-fills every block, under store-all
// and under an optimal schedule that recomputes. A buffer read before it is written would carry a
// NaN into them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "autodiff/trainer.hpp"
#include "models/model_file.hpp"
#include "models/sequences.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"

namespace rematch::models {
namespace {

using nlohmann::json;

// Sizes beyond one block and not a multiple of it: every blocked tensor has padding rows and
// columns (smaller ones would be one block of exactly their size).
constexpr std::int64_t kBatch = 150;
constexpr std::uint8_t kZero = 0x00, kPoison = 0xff;

struct Case {
  std::string name;
  json document;
  autodiff::Precision activations = autodiff::Precision::fp32;
};

json zoo(const std::string& model, int layers_per_stage = 1) {
  ModelConfig c;
  c.model = model;
  c.depth = 4;
  c.width = 77;
  c.embedding = 11;
  c.layers_per_stage = layers_per_stage;
  return zoo_document(c);
}

// Linear, GELU, layer norm, dropout and a residual block.
json mlp_file() {
  return {{"name", "mlp-file"},
          {"branches", json::array({{{"name", "x"}, {"input", {{"features", 93}}}, {"encoder", "mlp"}}})},
          {"encoders",
           {{"mlp",
             {{"stages", json::array({4, 1, 3})},
              {"layers", json::array({{{"type", "linear"}, {"out", 77}},
                                      {{"type", "gelu"}},
                                      {{"type", "layer_norm"}},
                                      {{"type", "dropout"}, {"p", 0.25}},
                                      {{"type", "residual"},
                                       {"layers", json::array({{{"type", "linear"}, {"out", 77}},
                                                               {{"type", "layer_norm"}},
                                                               {{"type", "relu"}}})}},
                                      {{"type", "linear"}, {"out", 70}},
                                      {{"type", "gelu"}},
                                      {{"type", "linear"}, {"out", 5}}})}}}}},
          {"loss", {{"type", "softmax_cross_entropy"}, {"classes", 5}}}};
}

// Convolutions (a residual one), pooling and a flatten (78 features) into a linear head, siamese.
json conv_file() {
  const json branch = {{"input", {{"channels", 5}, {"length", 13}}}, {"encoder", "rows"}};
  json left = branch, right = branch;
  left["name"] = "left";
  right["name"] = "right";
  return {{"name", "conv-file"},
          {"branches", json::array({left, right})},
          {"encoders",
           {{"rows",
             {{"layers_per_stage", 1},
              {"layers", json::array({{{"type", "conv1d"}, {"out", 13}, {"taps", 3}},
                                      {{"type", "relu"}},
                                      {{"type", "residual"},
                                       {"layers", json::array({{{"type", "conv1d"}, {"out", 13}, {"taps", 3}, {"dilation", 2}},
                                                               {{"type", "gelu"}}})}},
                                      {{"type", "max_pool1d"}, {"window", 2}},
                                      {{"type", "flatten"}},
                                      {{"type", "linear"}, {"out", 9}}})}}}}},
          {"loss", {{"type", "contrastive"}, {"margin", 1.0}}}};
}

std::vector<Case> cases() {
  return {{"siamese_mlp", zoo("siamese-mlp")},
          {"triplet_mlp", zoo("triplet-mlp")},
          {"cross_modal", zoo("cross-modal")},
          {"siamese_conv", zoo("siamese-conv", 2)},
          {"mlp_file", mlp_file()},
          {"conv_file", conv_file()},
          {"siamese_mlp_bf16", zoo("siamese-mlp", 2), autodiff::Precision::bf16},
          {"cross_modal_bf16", zoo("cross-modal"), autodiff::Precision::bf16}};
}

autodiff::Batch batch_for(const autodiff::JoinModel& model, const std::string& loss, std::uint64_t seed) {
  std::mt19937 rng{static_cast<std::uint32_t>(seed)};
  std::normal_distribution<float> normal;
  autodiff::Batch b;
  for (int j = 0; j < model.branches(); ++j) {
    const autodiff::BlockShape& in = model.encoder_of(j).input_shape(0);
    std::vector<float> x(std::size_t(in.rows * in.cols));
    for (float& v : x) v = normal(rng);
    b.inputs.push_back(autodiff::input_rows(x));
  }
  for (std::int64_t r = 0; r < kBatch; ++r) {
    b.targets.push_back(loss == "softmax-cross-entropy" ? float(r % 5)
                        : loss == "cosine-embedding"    ? (r % 2 ? 1.f : -1.f)
                                                        : float(r % 2));
  }
  return b;
}

struct Trained {
  std::vector<float> losses;
  std::vector<std::vector<float>> weights;  // every parameter tensor after the steps
  bool recomputes = false;
};

// Two steps (the second one reuses the arena's cached blocks) with fresh blocks filled by `fill`.
Trained train(const Case& c, const std::string& solver, std::size_t budget, std::uint8_t fill) {
  autodiff::Arena parameters("parameters");
  const ModelDescription description = parse_model_document(c.document, c.name);
  auto model = build(description, kBatch, 3, parameters);
  autodiff::TrainerOptions options;
  options.activation_budget = budget;
  options.solve.solver = solver;
  options.profile.repeats = 1;
  options.calibrate = false;
  options.activations = c.activations;
  autodiff::Trainer trainer(*model, parameters, options);
  trainer.activations().set_fresh_fill(fill);
  Trained out;
  out.recomputes = trainer.plan().makespan > trainer.graph().store_all_time() * (1 + 1e-12);
  for (std::uint64_t s = 0; s < 2; ++s) {
    out.losses.push_back(trainer.step(batch_for(*model, model->loss().name(), s + 11)).loss);
  }
  for (int e = 0; e < model->encoders(); ++e) {
    for (const autodiff::Tensor* p : model->encoder(e).parameters()) {
      out.weights.emplace_back(p->data.data(), p->data.data() + p->data.size());
    }
  }
  return out;
}

void expect_bitwise(const Trained& a, const Trained& b) {
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (std::size_t s = 0; s < a.losses.size(); ++s) {
    EXPECT_TRUE(std::isfinite(a.losses[s]));
    EXPECT_EQ(0, std::memcmp(&a.losses[s], &b.losses[s], sizeof(float))) << "loss of step " << s;
  }
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (std::size_t p = 0; p < a.weights.size(); ++p) {
    ASSERT_EQ(a.weights[p].size(), b.weights[p].size());
    EXPECT_EQ(0, std::memcmp(a.weights[p].data(), b.weights[p].data(), a.weights[p].size() * sizeof(float)))
        << "parameter tensor " << p;
  }
}

class PoisonedBuffers : public ::testing::TestWithParam<Case> {};

TEST_P(PoisonedBuffers, TrainBitwiseAsZeroFilledOnesUnderStoreAllAndARecomputingSchedule) {
  const Case& c = GetParam();
  constexpr std::size_t kRoomy = std::size_t(1) << 32;
  const Trained reference = train(c, "store-all", kRoomy, kZero);
  expect_bitwise(train(c, "store-all", kRoomy, kPoison), reference);

  // A budget halfway between the least feasible one and store-all's peak: the plan recomputes.
  autodiff::Arena parameters("parameters");
  auto model = build(parse_model_document(c.document, c.name), kBatch, 3, parameters);
  model->set_activation_precision(c.activations);
  const Graph graph = autodiff::profile(*model, {.repeats = 1});
  const double least = min_feasible_memory(graph);
  const double store_all = solve(graph, 1e18, {.solver = "store-all"}).peak;
  ASSERT_LT(least, store_all);
  const auto budget = std::size_t(std::ceil(least + 0.5 * (store_all - least)));
  const Trained poisoned = train(c, "optimal", budget, kPoison);
  EXPECT_TRUE(poisoned.recomputes);
  expect_bitwise(poisoned, reference);
}

INSTANTIATE_TEST_SUITE_P(Models, PoisonedBuffers, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// Sequences of varying length in one batch: masked padding after every layer, a global pool.
json sequence_siamese() {
  const json encoder = {
      {"layers", json::array({{{"type", "conv1d"}, {"out", 70}, {"taps", 3}},
                              {{"type", "relu"}},
                              {{"type", "residual"},
                               {"layers", json::array({{{"type", "conv1d"}, {"out", 70}, {"taps", 3}, {"dilation", 2}},
                                                       {{"type", "gelu"}}})}},
                              {{"type", "global_max_pool"}},
                              {{"type", "linear"}, {"out", 6}}})},
      {"layers_per_stage", 1}};
  return {{"name", "seq-siamese"},
          {"branches", json::array({{{"name", "left"}, {"input", {{"channels", 3}, {"length", 16}}}, {"encoder", "enc"}},
                                    {{"name", "right"}, {"input", {{"channels", 3}, {"length", 16}}}, {"encoder", "enc"}}})},
          {"encoders", {{"enc", encoder}}},
          {"loss", {{"type", "contrastive"}, {"margin", 1.0}}}};
}

SequenceBatch sequence_batch(std::int64_t rows, std::int64_t width) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  SequenceBatch b;
  for (int j = 0; j < 2; ++j) {
    std::vector<std::int64_t> lengths;
    std::vector<float> values(std::size_t(rows * 3 * width), 0.0f);
    for (std::int64_t r = 0; r < rows; ++r) {
      lengths.push_back(1 + (r * 5 + j * 3) % width);
      for (std::int64_t ch = 0; ch < 3; ++ch) {
        for (std::int64_t q = 0; q < lengths.back(); ++q) values[std::size_t((r * 3 + ch) * width + q)] = normal(rng);
      }
    }
    b.inputs.push_back(std::move(values));
    b.lengths.push_back(std::move(lengths));
  }
  for (std::int64_t r = 0; r < rows; ++r) b.targets.push_back(float(r % 2));
  return b;
}

std::vector<std::vector<float>> flat(const std::vector<autodiff::Gradients>& grads) {
  std::vector<std::vector<float>> out;
  for (const auto& branch : grads) {
    for (const auto& layer : branch) {
      for (const auto& t : layer) out.emplace_back(t.data.data(), t.data.data() + t.data.size());
    }
  }
  return out;
}

TEST(PoisonedSequenceBuffers, MaskedBatchesGiveBitwiseTheZeroFilledGradientsUnderEverySchedule) {
  const std::vector<std::int64_t> buckets = {16, 40};
  SequenceTrainerOptions o;
  o.activation_budget = std::size_t(1) << 30;
  o.profile.repeats = 1;
  SequenceTrainer trainer(sequence_siamese(), "test", buckets, kBatch, 5, o);
  for (int b = 0; b < trainer.buckets(); ++b) {
    const Graph& graph = trainer.bucket(b).graph;
    const double least = min_feasible_memory(graph);
    const double store_all = solve(graph, 1e18, {.solver = "store-all"}).peak;
    const Schedule reference_ops = solve(graph, 1e18, {.solver = "store-all"}).ops;
    const Schedule recomputing = solve(graph, std::floor(least + 0.5 * (store_all - least)), {.solver = "optimal"}).ops;
    SCOPED_TRACE("bucket " + std::to_string(buckets[std::size_t(b)]));
    trainer.activations().set_fresh_fill(kZero);
    const float reference_loss = trainer.compute(b, sequence_batch(kBatch, buckets[std::size_t(b)]), &reference_ops).loss;
    const auto reference = flat(trainer.gradients());
    for (const Schedule* ops : {&reference_ops, &recomputing}) {
      trainer.activations().set_fresh_fill(kPoison);
      const float loss = trainer.compute(b, sequence_batch(kBatch, buckets[std::size_t(b)]), ops).loss;
      EXPECT_TRUE(std::isfinite(loss));
      EXPECT_EQ(0, std::memcmp(&loss, &reference_loss, sizeof loss));
      const auto grads = flat(trainer.gradients());
      ASSERT_EQ(grads.size(), reference.size());
      for (std::size_t p = 0; p < grads.size(); ++p) {
        EXPECT_EQ(0, std::memcmp(grads[p].data(), reference[p].data(), grads[p].size() * sizeof(float)))
            << "gradient tensor " << p;
      }
    }
  }
}

}  // namespace
}  // namespace rematch::models
