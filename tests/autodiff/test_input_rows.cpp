// A step takes a batch's input rows as its input tensor without copying them when the first
// layer's blocks span whole rows, counts them against the budget as it counts a copy, and trains
// as the packed layout does (bitwise at 1 and 2 threads).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "autodiff/layers.hpp"
#include "autodiff/trainer.hpp"

namespace rematch::autodiff {
namespace {

constexpr std::int64_t kFeatures = 40;

// Heap storage that records, when the first buffer comes back, the activation arena's high-water
// mark at that moment.
class Origin final : public kernels::Allocator {
 public:
  void* allocate(std::size_t bytes) override { return kernels::heap_allocator().allocate(bytes); }
  void deallocate(void* p, std::size_t bytes) noexcept override {
    if (arena != nullptr && released == 0) high_water_at_release = arena->high_water();
    ++released;
    kernels::heap_allocator().deallocate(p, bytes);
  }
  const Arena* arena = nullptr;
  std::size_t high_water_at_release = 0;
  int released = 0;
};

// A siamese MLP 40 -> 24 (ReLU) -> 8 whose first layer's input blocks are whole rows or 8 x 8.
std::unique_ptr<JoinModel> siamese(Arena& params, std::int64_t n, bool whole_rows) {
  std::vector<std::unique_ptr<Layer>> layers;
  kernels::FcDesc d;
  d.n = n;
  d.c = kFeatures;
  d.k = 24;
  d.bn = d.bk = 8;
  d.bc = whole_rows ? kFeatures : 8;
  d.activation = kernels::Activation::relu;
  layers.push_back(std::make_unique<FcLayer>(d, params));
  d.c = 24;
  d.k = 8;
  d.bc = 8;
  d.activation = kernels::Activation::none;
  layers.push_back(std::make_unique<FcLayer>(d, params));
  auto e = std::make_unique<Encoder>("mlp", std::move(layers), std::vector<int>{1, 2});
  e->initialize(5);
  std::vector<std::unique_ptr<Encoder>> encoders;
  encoders.push_back(std::move(e));
  return std::make_unique<JoinModel>("test", std::move(encoders), std::vector<int>{0, 0},
                                     LossHead(LossKind::contrastive, 1.0f));
}

struct Trained {
  std::vector<float> losses;
  std::vector<std::vector<float>> weights;  // every parameter after the steps, row-major
  std::vector<std::size_t> arena_peaks;
  bool row_major_input = false;
  int released = 0;                     // batch buffers given back to their allocator
  std::size_t high_water_at_release = 0;  // when the first batch buffer came back
};

Trained train(std::int64_t n, bool whole_rows, Precision activations, int threads) {
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(threads);
  Arena params("parameters");
  auto model = siamese(params, n, whole_rows);
  TrainerOptions options;
  options.activation_budget = std::size_t{1} << 30;
  options.solve.solver = "store-all";
  options.calibrate = false;
  options.activations = activations;
  Trainer trainer(*model, params, options);
  Origin origin;
  origin.arena = &trainer.activations();
  Trained run;
  run.row_major_input = model->encoder_of(0).input_shape(0).row_major();
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (int step = 0; step < 2; ++step) {
    Batch batch;
    for (int j = 0; j < 2; ++j) {
      InputRows x(std::size_t(n * kFeatures), origin, kernels::Uninitialised{});
      for (float& v : x.span()) v = normal(rng);
      batch.inputs.push_back(std::move(x));
    }
    for (std::int64_t r = 0; r < n; ++r) batch.targets.push_back(float(r % 2));
    const StepResult result = trainer.step(std::move(batch));
    run.losses.push_back(result.loss);
    run.arena_peaks.push_back(result.arena_peak);
  }
  run.released = origin.released;
  run.high_water_at_release = origin.high_water_at_release;
  for (Tensor* p : model->encoder(0).parameters()) {
    std::vector<float> plain(std::size_t(p->shape.rows * p->shape.cols));
    kernels::unpack(*p, plain);
    run.weights.push_back(std::move(plain));
  }
  omp_set_num_threads(previous_threads);
  return run;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void expect_bitwise_equal(const Trained& a, const Trained& b) {
  EXPECT_TRUE(same_bits(a.losses, b.losses));
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (std::size_t p = 0; p < a.weights.size(); ++p) EXPECT_TRUE(same_bits(a.weights[p], b.weights[p])) << "parameter " << p;
}

// The first layer's products reduce over the features in one block instead of five, which may
// change their last bits (LIBXSMM's kernels for the two shapes), hence a float tolerance.
void expect_close(const Trained& a, const Trained& b) {
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (std::size_t s = 0; s < a.losses.size(); ++s) EXPECT_NEAR(a.losses[s], b.losses[s], 1e-5f * std::abs(b.losses[s]));
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (std::size_t p = 0; p < a.weights.size(); ++p) {
    ASSERT_EQ(a.weights[p].size(), b.weights[p].size());
    float largest = 0;
    for (float v : b.weights[p]) largest = std::max(largest, std::abs(v));
    for (std::size_t i = 0; i < a.weights[p].size(); ++i) {
      EXPECT_NEAR(a.weights[p][i], b.weights[p][i], 1e-5f * largest) << "parameter " << p << ", value " << i;
    }
  }
}

TEST(InputRows, WholeRowBlocksTakeTheBatchBuffersCountTheSameBytesAndTrainAsThePackedLayout) {
  for (Precision activations : {Precision::fp32, Precision::bf16}) {
    SCOPED_TRACE(to_string(activations));
    const Trained rows = train(40, true, activations, 1);
    const Trained packed = train(40, false, activations, 1);
    ASSERT_TRUE(rows.row_major_input);
    ASSERT_FALSE(packed.row_major_input);
    expect_bitwise_equal(rows, train(40, true, activations, 2));
    expect_close(rows, packed);
    // The same bytes counted: 40 features in 8-wide blocks need no padding either.
    EXPECT_EQ(rows.arena_peaks, packed.arena_peaks);
    EXPECT_EQ(rows.released, 4);
    EXPECT_EQ(packed.released, 4);
    if (activations == Precision::fp32) {
      // Taken as the step's input, the first buffer went back at the end of the first step (the
      // arena had reached the step's peak); a packed batch is released as soon as it is copied.
      // (A bf16 step keeps its input rounded and releases the fp32 rows at its start.)
      EXPECT_EQ(rows.high_water_at_release, rows.arena_peaks[0]);
      EXPECT_LT(packed.high_water_at_release, packed.arena_peaks[0]);
    }
  }
}

TEST(InputRows, AnOddBatchIsCopiedIntoWholeRowBlocksWithZeroRowsAndTrainsAsThePackedLayout) {
  for (Precision activations : {Precision::fp32, Precision::bf16}) {
    SCOPED_TRACE(to_string(activations));
    const Trained rows = train(37, true, activations, 1);
    ASSERT_FALSE(rows.row_major_input);  // 37 rows in blocks of 8: zero rows pad the layout
    expect_bitwise_equal(rows, train(37, true, activations, 2));
    const Trained packed = train(37, false, activations, 1);
    expect_close(rows, packed);
    EXPECT_EQ(rows.arena_peaks, packed.arena_peaks);
    EXPECT_LT(rows.high_water_at_release, rows.arena_peaks[0]);
  }
}

TEST(ArenaAdoption, CountsForeignStorageAgainstTheBudgetAndGivesItBack) {
  Origin origin;
  Arena arena("activations", 4096);
  kernels::AlignedBuffer<float> a(512, origin, kernels::Uninitialised{});  // 2 KiB
  a.transfer_to(arena);
  EXPECT_EQ(arena.in_use(), 2048u);
  EXPECT_EQ(arena.high_water(), 2048u);
  EXPECT_EQ(arena.mapped(), 0u) << "adopted storage stays where it is";
  kernels::AlignedBuffer<float> b(768, origin, kernels::Uninitialised{});  // 3 KiB: over the budget
  const float* where = b.data();
  EXPECT_THROW(b.transfer_to(arena), ArenaExhausted);
  EXPECT_EQ(b.data(), where);
  EXPECT_EQ(arena.in_use(), 2048u);
  b = {};
  EXPECT_EQ(origin.released, 1) << "a refused buffer stays its origin's";
  a = {};
  EXPECT_EQ(origin.released, 2);
  EXPECT_EQ(arena.in_use(), 0u);
  EXPECT_THROW(kernels::heap_allocator().adopt(nullptr, 64, origin), std::invalid_argument);
}

}  // namespace
}  // namespace rematch::autodiff
