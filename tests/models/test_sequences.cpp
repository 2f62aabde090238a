// Sequences of varying length: ragged .npy data, length buckets with masked padding, per-bucket
// schedules under one budget, representative iterations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "autodiff/stage_updates.hpp"
#include "models/data/ragged.hpp"
#include "models/data/synthetic_sequences.hpp"
#include "models/sequence_data.hpp"
#include "models/sequences.hpp"
#include "scheduler/simulator.hpp"

namespace rematch::models {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json conv_encoder(const std::string& pool, std::int64_t out) {
  return {{"layers", json::array({
              {{"type", "conv1d"}, {"out", 8}, {"taps", 3}},
              {{"type", "relu"}},
              {{"type", "residual"}, {"layers", json::array({{{"type", "conv1d"}, {"out", 8}, {"taps", 3}, {"dilation", 2}},
                                                             {{"type", "gelu"}}})}},
              {{"type", "conv1d"}, {"out", 8}, {"taps", 4}, {"dilation", 3}},
              {{"type", pool}},
              {{"type", "linear"}, {"out", out}}})},
          {"layers_per_stage", 1}};
}

json classifier(const std::string& pool) {
  return {{"name", "seq-classifier"},
          {"branches", json::array({{{"name", "x"}, {"input", {{"channels", 3}, {"length", 16}}}, {"encoder", "enc"}}})},
          {"encoders", {{"enc", conv_encoder(pool, 4)}}},
          {"loss", {{"type", "softmax_cross_entropy"}, {"classes", 4}}}};
}

json siamese() {
  return {{"name", "seq-siamese"},
          {"branches", json::array({{{"name", "left"}, {"input", {{"channels", 3}, {"length", 16}}}, {"encoder", "enc"}},
                                    {{"name", "right"}, {"input", {{"channels", 3}, {"length", 16}}}, {"encoder", "enc"}}})},
          {"encoders", {{"enc", conv_encoder("global_avg_pool", 6)}}},
          {"loss", {{"type", "contrastive"}, {"margin", 1.0}}}};
}

SequenceTrainerOptions options(std::size_t budget) {
  SequenceTrainerOptions o;
  o.activation_budget = budget;
  o.profile.repeats = 1;
  return o;
}

std::vector<float> random_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(double(g() >> 11) * 0x1.0p-53 * 2 - 1);
  return v;
}

// A batch of `lengths.size()` rows of 3 channels, padded with zeros to `width`.
SequenceBatch padded(const std::vector<std::vector<std::int64_t>>& lengths, std::int64_t width, std::uint64_t seed) {
  SequenceBatch b;
  for (std::size_t j = 0; j < lengths.size(); ++j) {
    std::vector<float> values(lengths[j].size() * 3 * std::size_t(width), 0.0f);
    for (std::size_t r = 0; r < lengths[j].size(); ++r) {
      const auto v = random_values(std::size_t(3 * lengths[j][r]), seed * 100 + j * 10 + r);
      for (int c = 0; c < 3; ++c) {
        std::copy_n(v.begin() + c * lengths[j][r], lengths[j][r], values.begin() + std::ptrdiff_t((r * 3 + c) * width));
      }
    }
    b.inputs.push_back(std::move(values));
    b.lengths.push_back(lengths[j]);
  }
  return b;
}

std::vector<float> flat(const autodiff::Gradients& g) {
  std::vector<float> out;
  for (const auto& layer : g) {
    for (const auto& t : layer) {
      std::vector<float> plain(std::size_t(t.shape.rows * t.shape.cols));
      kernels::unpack(t, plain);
      out.insert(out.end(), plain.begin(), plain.end());
    }
  }
  return out;
}

class PaddedBucketGradients : public ::testing::TestWithParam<std::string> {};

TEST_P(PaddedBucketGradients, EqualTheUnpaddedSequencesRunOneByOne) {
  const json doc = classifier(GetParam());
  const std::vector<std::int64_t> lengths = {5, 24, 11, 17};
  const std::int64_t width = 24;
  SequenceBatch batch = padded({lengths}, width, 3);
  batch.targets = {0, 1, 2, 3};
  SequenceTrainer bucket(doc, "test", {width}, 4, 11, options(std::size_t(1) << 30));
  bucket.compute(0, batch);
  const std::vector<float> together = flat(bucket.gradients()[0]);

  // The batch loss is the mean over rows: its gradient is the mean of the rows' gradients.
  std::vector<double> mean(together.size(), 0.0);
  for (std::size_t r = 0; r < lengths.size(); ++r) {
    SequenceTrainer alone(doc, "test", {lengths[r]}, 1, 11, options(std::size_t(1) << 30));
    SequenceBatch one = padded({{lengths[r]}}, lengths[r], 3);
    // The same values as row r of the padded batch.
    for (int c = 0; c < 3; ++c) {
      std::copy_n(batch.inputs[0].begin() + std::ptrdiff_t((r * 3 + std::size_t(c)) * std::size_t(width)), lengths[r],
                  one.inputs[0].begin() + c * lengths[r]);
    }
    one.targets = {float(r)};
    alone.compute(0, one);
    const std::vector<float> g = flat(alone.gradients()[0]);
    ASSERT_EQ(g.size(), together.size());
    for (std::size_t k = 0; k < g.size(); ++k) mean[k] += g[k] / double(lengths.size());
  }
  double scale = 0;
  for (double m : mean) scale = std::max(scale, std::abs(m));
  ASSERT_GT(scale, 0);
  for (std::size_t k = 0; k < together.size(); ++k) {
    EXPECT_NEAR(together[k], mean[k], 1e-4 * scale + 1e-6) << "gradient value " << k;
  }
}

TEST_P(PaddedBucketGradients, EmbeddingsOfPaddedRowsEqualTheUnpaddedSequences) {
  const json doc = classifier(GetParam());
  const std::vector<std::int64_t> lengths = {9, 30, 2, 17};
  const std::int64_t width = 32;
  const SequenceBatch batch = padded({lengths}, width, 5);
  SequenceTrainer bucket(doc, "test", {width}, 4, 3, options(std::size_t(1) << 30));
  const std::vector<float> together = bucket.embed(0, 0, batch.inputs[0], lengths);
  ASSERT_EQ(together.size(), 16u);
  for (std::size_t r = 0; r < lengths.size(); ++r) {
    SequenceTrainer alone(doc, "test", {lengths[r]}, 1, 3, options(std::size_t(1) << 30));
    std::vector<float> one(std::size_t(3 * lengths[r]));
    for (int c = 0; c < 3; ++c) {
      std::copy_n(batch.inputs[0].begin() + std::ptrdiff_t((r * 3 + std::size_t(c)) * std::size_t(width)), lengths[r],
                  one.begin() + c * lengths[r]);
    }
    const std::vector<float> e = alone.embed(0, 0, one, {lengths[r]});
    for (std::size_t k = 0; k < e.size(); ++k) EXPECT_NEAR(together[r * 4 + k], e[k], 1e-5f * (1 + std::abs(e[k])));
  }
}

TEST_P(PaddedBucketGradients, EmbeddingsOfALargeBatchInTheBlockedLayoutEqualTheRowsAlone) {
  const json doc = classifier(GetParam());
  const std::int64_t n = 256, width = 20;
  std::vector<std::int64_t> lengths;
  for (std::int64_t r = 0; r < n; ++r) lengths.push_back(1 + (r * 7) % width);
  const SequenceBatch batch = padded({lengths}, width, 9);
  SequenceTrainer bucket(doc, "test", {width}, n, 3, options(std::size_t(1) << 30));
  // The pool writes the blocked layout its linear layer reads: more than one row block here.
  const autodiff::Encoder& e = bucket.model(0).encoder(0);
  const autodiff::BlockShape& pooled = e.output_shape(e.stages() - 2);
  ASSERT_EQ(pooled.cols, 8);
  ASSERT_LT(pooled.brow, n);
  const std::vector<float> together = bucket.embed(0, 0, batch.inputs[0], lengths);
  for (std::int64_t r : {0, 77, 255}) {
    SequenceTrainer alone(doc, "test", {lengths[std::size_t(r)]}, 1, 3, options(std::size_t(1) << 30));
    const std::int64_t l = lengths[std::size_t(r)];
    std::vector<float> one(std::size_t(3 * l));
    for (int c = 0; c < 3; ++c) {
      std::copy_n(batch.inputs[0].begin() + std::ptrdiff_t((std::size_t(r) * 3 + std::size_t(c)) * std::size_t(width)), l,
                  one.begin() + c * l);
    }
    const std::vector<float> e1 = alone.embed(0, 0, one, {l});
    for (std::size_t k = 0; k < e1.size(); ++k) {
      EXPECT_NEAR(together[std::size_t(r) * 4 + k], e1[k], 1e-5f * (1 + std::abs(e1[k]))) << "row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Pools, PaddedBucketGradients, ::testing::Values("global_avg_pool", "global_max_pool"));

TEST(BucketSchedules, GradientsBitwiseEqualStoreAllUnderEveryBucketsSchedule) {
  const std::vector<std::int64_t> buckets = {16, 48, 96};
  SequenceTrainer roomy(siamese(), "test", buckets, 4, 5, options(std::size_t(1) << 30));
  // A budget below store-all of the longest bucket: its plan recomputes.
  const double longest_store_all = simulate(roomy.bucket(2).graph, solve(roomy.bucket(2).graph, 1e18, {.solver = "store-all"}).ops).peak;
  double least = 0;
  try {
    solve(roomy.bucket(2).graph, 1);
  } catch (const InfeasibleBudget& e) {
    least = e.min_memory;
  }
  const auto budget = std::size_t(0.5 * (least + longest_store_all));
  std::size_t feasible = budget;
  try {
    SequenceTrainer probe(siamese(), "test", buckets, 4, 5, options(budget));
  } catch (const InfeasibleBudget& e) {
    feasible = std::size_t(std::ceil(e.min_memory));
  }
  SequenceTrainer tight(siamese(), "test", buckets, 4, 5, options(feasible));
  EXPECT_GT(tight.bucket(2).plan.makespan, tight.bucket(2).graph.store_all_time() * (1 + 1e-12));
  for (int b = 0; b < 3; ++b) {
    const std::int64_t L = buckets[std::size_t(b)];
    const std::vector<std::vector<std::int64_t>> lengths = {{L, L / 2, 3, L - 1}, {L / 3 + 1, L, L, 2}};
    SequenceBatch batch = padded(lengths, L, std::uint64_t(b) + 7);
    batch.targets = {1, 0, 1, 0};
    const Schedule store_all = solve(roomy.bucket(b).graph, 1e18, {.solver = "store-all"}).ops;
    roomy.compute(b, batch, &store_all);
    const auto reference = flat(roomy.gradients()[0]);
    const autodiff::StepResult r = tight.compute(b, batch);
    EXPECT_LE(r.arena_peak, feasible);
    const auto planned = flat(tight.gradients()[0]);
    ASSERT_EQ(planned.size(), reference.size());
    EXPECT_EQ(0, std::memcmp(planned.data(), reference.data(), planned.size() * sizeof(float))) << "bucket " << L;
  }
}

// step() updates each stage during the backward (autodiff/stage_updates.hpp); the reference runs
// compute(), sums the shared encoder's gradients over the branches and takes one optimizer step
// after the whole backward. Under a budget whose longest bucket recomputes, over steps on every
// bucket, the weights stay bitwise equal.
class SequenceSteps : public ::testing::TestWithParam<autodiff::OptimizerConfig::Kind> {};

TEST_P(SequenceSteps, UpdateStagesBitwiseAsOneUpdateAfterTheBackward) {
  const std::vector<std::int64_t> buckets = {16, 48};
  SequenceTrainerOptions o = options(std::size_t(1) << 30);
  o.optimizer.kind = GetParam();
  o.optimizer.lr = 0.05f;
  std::size_t least = 0;
  try {
    SequenceTrainerOptions tiny = o;
    tiny.activation_budget = 1;
    SequenceTrainer probe(siamese(), "test", buckets, 4, 5, tiny);
  } catch (const InfeasibleBudget& e) {
    least = std::size_t(std::ceil(e.min_memory));
  }
  o.activation_budget = least;
  SequenceTrainer staged(siamese(), "test", buckets, 4, 5, o);
  SequenceTrainer reference(siamese(), "test", buckets, 4, 5, o);
  EXPECT_GT(staged.bucket(1).plan.makespan, staged.bucket(1).graph.store_all_time() * (1 + 1e-12));
  autodiff::Optimizer after(o.optimizer, reference.model(0).encoder(0).parameters(), kernels::heap_allocator());
  for (int step = 0; step < 3; ++step) {
    const int b = step % 2;
    const std::int64_t L = buckets[std::size_t(b)];
    SequenceBatch batch = padded({{L, L / 2, 3, L - 1}, {L / 3 + 1, L, L, 2}}, L, std::uint64_t(step) + 3);
    batch.targets = {1, 0, 1, 0};
    staged.step(b, batch);
    reference.compute(b, batch);
    after.step(autodiff::sum_shared_gradients(reference.model(b), reference.gradients())[0]);
  }
  const auto got = staged.model(0).encoder(0).parameters();
  const auto want = reference.model(0).encoder(0).parameters();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t p = 0; p < got.size(); ++p) {
    ASSERT_EQ(got[p]->data.size(), want[p]->data.size());
    EXPECT_EQ(0, std::memcmp(got[p]->data.data(), want[p]->data.data(), got[p]->data.size() * sizeof(float)))
        << "parameter " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, SequenceSteps,
                         ::testing::Values(autodiff::OptimizerConfig::Kind::sgd, autodiff::OptimizerConfig::Kind::adam),
                         [](const auto& info) {
                           return std::string(info.param == autodiff::OptimizerConfig::Kind::sgd ? "SGD" : "Adam");
                         });

struct SyntheticFiles {
  std::string values, offsets, labels;
};

SyntheticFiles write_synthetic(const data::SyntheticSequenceOptions& o, const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("rematch_seq_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  SyntheticFiles f{(dir / (name + "_x.npy")).string(), (dir / (name + "_off.npy")).string(),
                   (dir / (name + "_y.npy")).string()};
  const data::SequenceSet set = data::synthesize_sequences(o);
  data::write_ragged(f.values, f.offsets, set.channels, set.sequences);
  data::write_npy_integers(f.labels, set.labels);
  return f;
}

TEST(SequenceEpoch, ArenaPeakStaysWithinTheBudgetOnEveryStepOverLengthsSpanning20x) {
  data::SyntheticSequenceOptions o;
  o.sequences = 96;
  o.channels = 3;
  o.min_length = 16;
  o.max_length = 640;
  o.tail = 0.6;
  o.seed = 3;
  const SyntheticFiles files = write_synthetic(o, "span");
  const SequenceData data = SequenceData::open({data::Layout::labelled, {files.values}, {files.offsets}, files.labels});
  const auto all = data.lengths();
  const auto [shortest, longest] = std::minmax_element(all.begin(), all.end());
  ASSERT_GE(*longest, 20 * *shortest);
  const auto edges = quantile_edges(all, 5);
  const std::size_t budget = std::size_t(1) << 20;
  std::size_t fits = budget;
  try {
    SequenceTrainer probe(siamese(), "test", edges, 8, 1, options(budget));
  } catch (const InfeasibleBudget& e) {
    fits = std::size_t(std::ceil(e.min_memory));
  }
  SequenceTrainer trainer(siamese(), "test", edges, 8, 1, options(fits));
  SequenceEpochs epochs(data, trainer.description(), edges, 8, 2);
  const auto epoch = epochs.next_epoch();
  std::set<int> seen;
  for (const PlannedBatch& p : epoch) {
    const autodiff::StepResult r = trainer.step(p.bucket, epochs.load(p));
    EXPECT_LE(r.arena_peak, fits) << "bucket " << edges[std::size_t(p.bucket)];
    EXPECT_TRUE(std::isfinite(r.loss));
    seen.insert(p.bucket);
  }
  EXPECT_EQ(seen.size(), edges.size());
  // The budget is below what storing everything of the longest bucket needs.
  const Graph& g = trainer.bucket(int(edges.size()) - 1).graph;
  EXPECT_LT(double(fits), simulate(g, solve(g, 1e18, {.solver = "store-all"}).ops).peak);
}

TEST(BucketPlans, AnInfeasibleBucketIsReportedWithTheLeastBudgetEveryBucketFits) {
  const std::vector<std::int64_t> buckets = {16, 128};
  try {
    SequenceTrainer t(siamese(), "test", buckets, 4, 1, options(4096));
    FAIL() << "a 4 KiB budget was accepted";
  } catch (const InfeasibleBudget& e) {
    EXPECT_NE(std::string(e.what()).find("bucket 16"), std::string::npos) << e.what();
    SequenceTrainer t(siamese(), "test", buckets, 4, 1, options(std::size_t(std::ceil(e.min_memory))));
    EXPECT_LE(t.bucket(1).plan.peak, e.min_memory);
  }
}

TEST(LengthFit, RecoversLinearTimesExactlyAndKeepsTheMeasuredSizes) {
  std::vector<Graph> graphs;
  const std::vector<std::int64_t> lengths = {10, 40, 90};
  for (std::int64_t L : lengths) {
    Graph g;
    Branch b;
    b.fw = {1 + 0.5 * double(L), 2.0 * double(L)};
    b.bw = {3 + double(L), 4.0};
    b.cw = {1, 2, 3};
    b.cbw = {1, 2, 3};
    b.ftmp = {0, 0};
    b.btmp = {0, 0};
    g.branches = {b};
    g.loss.time = 0.25;
    graphs.push_back(g);
  }
  const LengthFit f = fit_lengths(lengths, graphs);
  Graph sizes = graphs[0];
  sizes.branches[0].cw = {7, 8, 9};
  const Graph at = f.at(sizes, 60);
  EXPECT_NEAR(at.branches[0].fw[0], 31, 1e-9);
  EXPECT_NEAR(at.branches[0].fw[1], 120, 1e-9);
  EXPECT_NEAR(at.branches[0].bw[0], 63, 1e-9);
  EXPECT_NEAR(at.branches[0].bw[1], 4, 1e-9);
  EXPECT_NEAR(at.loss.time, 0.25, 1e-12);
  EXPECT_EQ(at.branches[0].cw, (std::vector<double>{7, 8, 9}));
}

TEST(Representatives, AtMostTenBucketsWhoseWeightsCountEveryBatch) {
  std::vector<std::int64_t> batches, lengths;
  for (int b = 0; b < 37; ++b) {
    batches.push_back(b % 5 == 0 ? 0 : 1 + b % 7);
    lengths.push_back(16 + 8 * b);
  }
  const auto reps = representatives(batches, lengths, 10);
  ASSERT_LE(reps.size(), 10u);
  double weight = 0;
  for (const auto& r : reps) {
    weight += r.weight;
    EXPECT_GT(batches[std::size_t(r.bucket)], 0);
  }
  EXPECT_EQ(weight, double(std::accumulate(batches.begin(), batches.end(), std::int64_t{0})));
  for (std::size_t k = 1; k < reps.size(); ++k) EXPECT_LT(reps[k - 1].bucket, reps[k].bucket);
  const std::vector<std::int64_t> few = {3, 0, 2};
  const auto all = representatives(few, std::vector<std::int64_t>{8, 16, 32}, 10);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].bucket, 2);
  EXPECT_EQ(all[1].weight, 2);
}

TEST(BucketEdges, QuantilesCoverTheLongestAndGivenEdgesMustIncrease) {
  const auto e = quantile_edges({5, 1, 9, 9, 3, 7, 2, 8}, 4);
  EXPECT_EQ(e, (std::vector<std::int64_t>{2, 5, 8, 9}));
  EXPECT_EQ(bucket_of(e, 6), 2);
  EXPECT_EQ(bucket_of(e, 10), -1);
  EXPECT_EQ(parse_edges("8,16,64"), (std::vector<std::int64_t>{8, 16, 64}));
  EXPECT_THROW(parse_edges("8,8"), std::invalid_argument);
  EXPECT_THROW(parse_edges("8,x"), std::invalid_argument);
  EXPECT_THROW(parse_edges("-3"), std::invalid_argument);
  EXPECT_THROW(parse_edges(""), std::invalid_argument);
}

TEST(VaryingLengthModels, LayersThatMixPaddingInAreRefusedByName) {
  json doc = classifier("global_avg_pool");
  doc["encoders"]["enc"]["layers"][1] = {{"type", "layer_norm"}};
  try {
    require_varying_length(at_length(doc, "m.json", 32));
    FAIL();
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("encoders.enc.layers[1]"), std::string::npos) << e.what();
  }
  json flat_doc = classifier("flatten");
  flat_doc["encoders"]["enc"]["layers"][5]["out"] = 4;
  EXPECT_THROW(require_varying_length(at_length(flat_doc, "m.json", 32)), ModelFileError);
}

TEST(RaggedNpy, RoundTripsAndRefusesBrokenOffsetsNamingTheFile) {
  const fs::path dir = fs::temp_directory_path() / ("rematch_ragged_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string x = (dir / "x.npy").string(), off = (dir / "off.npy").string();
  const std::vector<std::vector<float>> seqs = {{1, 2, 3, 4}, {5, 6}, {7, 8, 9, 10, 11, 12}};
  data::write_ragged(x, off, 2, seqs);
  const data::RaggedArray a(x, off);
  ASSERT_EQ(a.sequences(), 3);
  EXPECT_EQ(a.channels(), 2);
  EXPECT_EQ(a.lengths(), (std::vector<std::int64_t>{2, 1, 3}));
  std::vector<float> ncw(2 * 4, -1);
  a.read(2, 4, ncw.data());
  EXPECT_EQ(ncw, (std::vector<float>{7, 9, 11, 0, 8, 10, 12, 0}));
  for (const auto& [bad, what] : std::vector<std::pair<std::vector<std::int64_t>, std::string>>{
           {{1, 2, 3, 6}, "start at 0"}, {{0, 2, 2, 6}, "increase strictly"}, {{0, 2, 3, 5}, "last offset"}}) {
    data::write_npy_integers(off, bad);
    try {
      data::RaggedArray broken(x, off);
      FAIL() << what;
    } catch (const data::DataError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("off.npy"), std::string::npos) << e.what();
    }
  }
  fs::remove_all(dir);
}

TEST(SyntheticSequences, SeededLongTailedLengthsWithinBoundsAndBalancedClasses) {
  data::SyntheticSequenceOptions o;
  o.sequences = 400;
  o.classes = 4;
  const auto a = data::synthesize_sequences(o), b = data::synthesize_sequences(o);
  EXPECT_EQ(a.sequences, b.sequences);
  std::vector<std::int64_t> lengths;
  for (const auto& s : a.sequences) lengths.push_back(std::int64_t(s.size()) / o.channels);
  const auto [lo, hi] = std::minmax_element(lengths.begin(), lengths.end());
  EXPECT_GE(*lo, o.min_length);
  EXPECT_LE(*hi, o.max_length);
  std::sort(lengths.begin(), lengths.end());
  // Long-tailed: the median sits far below the mean of the longest tenth.
  EXPECT_LT(double(lengths[lengths.size() / 2]) * 3, double(lengths[lengths.size() * 95 / 100]));
  EXPECT_EQ(std::count(a.labels.begin(), a.labels.end(), 3), 100);
  o.seed = 2;
  EXPECT_NE(data::synthesize_sequences(o).sequences, a.sequences);
  o.min_length = 4;
  EXPECT_THROW(data::synthesize_sequences(o), std::invalid_argument);
}

}  // namespace
}  // namespace rematch::models
