#include <gtest/gtest.h>

#include <cstring>

#include "kernels/fc.hpp"
#include "tests/kernels/helpers.hpp"

namespace rematch::kernels {
namespace {

using test::dot_tolerance;
using test::random_vector;

// Plain row-major data for one FC problem.
struct FcData {
  std::int64_t n, c, k;
  std::vector<float> x, w, b, dy;
  FcData(std::int64_t n_, std::int64_t c_, std::int64_t k_, std::uint32_t seed)
      : n(n_), c(c_), k(k_), x(random_vector(n * c, seed)), w(random_vector(c * k, seed + 1)),
        b(random_vector(k, seed + 2)), dy(random_vector(n * k, seed + 3)) {}
};

// The three passes as naive double loops; each also returns sum |terms| per
// output for the tolerance.
struct Ref {
  std::vector<double> val, abs;
};
Ref ref_forward(const FcData& d, bool bias) {
  Ref r{std::vector<double>(d.n * d.k), std::vector<double>(d.n * d.k)};
  for (std::int64_t i = 0; i < d.n; ++i) {
    for (std::int64_t o = 0; o < d.k; ++o) {
      double s = bias ? d.b[o] : 0.0, a = bias ? std::abs(d.b[o]) : 0.0;
      for (std::int64_t j = 0; j < d.c; ++j) {
        s += double(d.x[i * d.c + j]) * d.w[j * d.k + o];
        a += std::abs(double(d.x[i * d.c + j]) * d.w[j * d.k + o]);
      }
      r.val[i * d.k + o] = s;
      r.abs[i * d.k + o] = a;
    }
  }
  return r;
}
Ref ref_backward_data(const FcData& d) {
  Ref r{std::vector<double>(d.n * d.c), std::vector<double>(d.n * d.c)};
  for (std::int64_t i = 0; i < d.n; ++i) {
    for (std::int64_t j = 0; j < d.c; ++j) {
      for (std::int64_t o = 0; o < d.k; ++o) {
        const double t = double(d.dy[i * d.k + o]) * d.w[j * d.k + o];
        r.val[i * d.c + j] += t;
        r.abs[i * d.c + j] += std::abs(t);
      }
    }
  }
  return r;
}
Ref ref_backward_weights(const FcData& d) {
  Ref r{std::vector<double>(d.c * d.k), std::vector<double>(d.c * d.k)};
  for (std::int64_t i = 0; i < d.n; ++i) {
    for (std::int64_t j = 0; j < d.c; ++j) {
      for (std::int64_t o = 0; o < d.k; ++o) {
        const double t = double(d.x[i * d.c + j]) * d.dy[i * d.k + o];
        r.val[j * d.k + o] += t;
        r.abs[j * d.k + o] += std::abs(t);
      }
    }
  }
  return r;
}

void expect_close(const BlockedMatrix& got, const Ref& want, std::int64_t length) {
  std::vector<float> plain(got.shape.rows * got.shape.cols);
  unpack(got, plain);
  for (std::size_t i = 0; i < plain.size(); ++i) {
    ASSERT_NEAR(plain[i], want.val[i], dot_tolerance(length, want.abs[i])) << "at " << i;
  }
}

// Every value outside the logical matrix must be zero (the padding invariant).
void expect_zero_padding(const BlockedMatrix& m) {
  std::vector<float> plain(m.shape.rows * m.shape.cols);
  unpack(m, plain);
  double inside = 0.0, all = 0.0;
  for (float v : plain) inside += std::abs(v);
  for (float v : m.data.span()) all += std::abs(v);
  EXPECT_EQ(inside, all);
}

struct Shape {
  std::int64_t n, c, k, block;
};
const Shape kShapes[] = {{70, 45, 130, 32}, {64, 128, 64, 64}, {3, 1, 5, 64}, {129, 67, 33, 64}};

class FcTest : public test::ThreadsTest {};

TEST_P(FcTest, ForwardMatchesNaiveLoopOnShapesThatDoNotDivideTheBlocks) {
  for (const Shape& s : kShapes) {
    const FcData d(s.n, s.c, s.k, 10);
    Fc fc({s.n, s.c, s.k, s.block, s.block, s.block, true, Activation::none, Precision::fp32});
    BlockedMatrix y(fc.y_shape());
    fc.forward(pack(d.x, fc.x_shape()), pack(d.w, fc.w_shape()), d.b, y);
    expect_close(y, ref_forward(d, true), s.c);
    expect_zero_padding(y);
  }
}

TEST_P(FcTest, ForwardWithFusedReluEqualsReluOfReference) {
  const FcData d(33, 20, 40, 11);
  Fc fc({33, 20, 40, 16, 16, 16, true, Activation::relu, Precision::fp32});
  BlockedMatrix y(fc.y_shape());
  fc.forward(pack(d.x, fc.x_shape()), pack(d.w, fc.w_shape()), d.b, y);
  Ref r = ref_forward(d, true);
  for (double& v : r.val) v = std::max(v, 0.0);
  expect_close(y, r, 20);
  expect_zero_padding(y);
}

TEST_P(FcTest, BackwardDataMatchesNaiveLoop) {
  for (const Shape& s : kShapes) {
    const FcData d(s.n, s.c, s.k, 20);
    Fc fc({s.n, s.c, s.k, s.block, s.block, s.block, false, Activation::none, Precision::fp32});
    BlockedMatrix dx(fc.x_shape());
    fc.backward_data(pack(d.dy, fc.y_shape()), pack(d.w, fc.w_shape()), dx);
    expect_close(dx, ref_backward_data(d), s.k);
    expect_zero_padding(dx);
  }
}

TEST_P(FcTest, BackwardWeightsAndBiasMatchNaiveLoop) {
  for (const Shape& s : kShapes) {
    const FcData d(s.n, s.c, s.k, 30);
    Fc fc({s.n, s.c, s.k, s.block, s.block, s.block, true, Activation::none, Precision::fp32});
    BlockedMatrix dw(fc.w_shape());
    std::vector<float> db(s.k);
    fc.backward_weights(pack(d.x, fc.x_shape()), pack(d.dy, fc.y_shape()), dw, db);
    expect_close(dw, ref_backward_weights(d), s.n);
    expect_zero_padding(dw);
    for (std::int64_t o = 0; o < s.k; ++o) {
      double want = 0.0, abs = 0.0;
      for (std::int64_t i = 0; i < s.n; ++i) {
        want += d.dy[i * s.k + o];
        abs += std::abs(d.dy[i * s.k + o]);
      }
      ASSERT_NEAR(db[o], want, dot_tolerance(s.n, abs));
    }
  }
}

TEST_P(FcTest, GradientsMatchFiniteDifferencesOfDoubleForward) {
  // loss = sum(r * relu(x w + b)) on a small shape with blocks that do not divide it.
  const std::int64_t n = 5, c = 7, k = 6;
  FcData d(n, c, k, 40);
  const auto r = random_vector(n * k, 44);
  Fc fc({n, c, k, 4, 4, 4, true, Activation::relu, Precision::fp32});
  auto loss = [&](const std::vector<double>& x, const std::vector<double>& w,
                  const std::vector<double>& b) {
    double l = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t o = 0; o < k; ++o) {
        double s = b[o];
        for (std::int64_t j = 0; j < c; ++j) s += x[i * c + j] * w[j * k + o];
        l += r[i * k + o] * std::max(s, 0.0);
      }
    }
    return l;
  };
  const auto xd = test::to_double(d.x), wd = test::to_double(d.w), bd = test::to_double(d.b);
  const auto gx = test::finite_difference([&](const auto& v) { return loss(v, wd, bd); }, xd);
  const auto gw = test::finite_difference([&](const auto& v) { return loss(xd, v, bd); }, wd);
  const auto gb = test::finite_difference([&](const auto& v) { return loss(xd, wd, v); }, bd);

  const BlockedMatrix x = pack(d.x, fc.x_shape()), w = pack(d.w, fc.w_shape());
  BlockedMatrix y(fc.y_shape()), dx(fc.x_shape()), dw(fc.w_shape());
  fc.forward(x, w, d.b, y);
  BlockedMatrix dy = pack(r, fc.y_shape());
  fc.activation_backward(y, dy);
  std::vector<float> db(k), dxp(n * c), dwp(c * k);
  fc.backward_data(dy, w, dx);
  fc.backward_weights(x, dy, dw, db);
  unpack(dx, dxp);
  unpack(dw, dwp);
  test::expect_gradient_near(dxp, gx);
  test::expect_gradient_near(dwp, gw);
  test::expect_gradient_near(db, gb);
}

TEST_P(FcTest, Bf16PassesMatchReferenceOnBf16RoundedInputs) {
  if (!bf16_supported()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  const std::int64_t n = 50, c = 70, k = 36;
  FcData d(n, c, k, 50);
  for (auto* v : {&d.x, &d.w, &d.dy}) {
    for (float& f : *v) f = to_float(to_bf16(f));  // then the reference sees the kernel's inputs
  }
  Fc fc({n, c, k, 32, 32, 32, false, Activation::none, Precision::bf16});
  const BlockedMatrix x = pack(d.x, fc.x_shape()), w = pack(d.w, fc.w_shape());
  const BlockedMatrix dy = pack(d.dy, fc.y_shape());
  BlockedMatrix y(fc.y_shape()), dx(fc.x_shape()), dw(fc.w_shape());
  fc.forward(x, w, {}, y);
  fc.backward_data(dy, w, dx);
  fc.backward_weights(x, dy, dw, {});
  expect_close(y, ref_forward(d, false), c);
  expect_close(dx, ref_backward_data(d), k);
  expect_close(dw, ref_backward_weights(d), n);
}

INSTANTIATE_TEST_SUITE_P(Threads, FcTest, ::testing::Values(1, 2), test::thread_name);

// The forward with bias and ReLU on n x c -> k with batch blocks of bn, against the naive loop.
void expect_relu_forward_matches_naive(std::int64_t n, std::int64_t c, std::int64_t k, std::int64_t bn,
                                       std::uint32_t seed) {
  const FcData d(n, c, k, seed);
  Fc fc({n, c, k, bn, 64, 64, true, Activation::relu, Precision::fp32});
  BlockedMatrix y(fc.y_shape());
  fc.forward(pack(d.x, fc.x_shape()), pack(d.w, fc.w_shape()), d.b, y);
  Ref r = ref_forward(d, true);
  for (double& v : r.val) v = std::max(v, 0.0);
  expect_close(y, r, c);
  expect_zero_padding(y);
}

class FcManyRowsTest : public test::ThreadsTest {};

// Hundreds of block rows: tasks go out in groups and each prefetches its next row panel.
TEST_P(FcManyRowsTest, ForwardAndBackwardDataOnHundredsOfBlockRowsMatchNaiveLoop) {
  const std::int64_t n = 1597, c = 24, k = 40;
  const FcData d(n, c, k, 60);
  Fc fc({n, c, k, 8, 8, 8, true, Activation::relu, Precision::fp32});
  BlockedMatrix y(fc.y_shape()), dx(fc.x_shape());
  fc.forward(pack(d.x, fc.x_shape()), pack(d.w, fc.w_shape()), d.b, y);
  Ref r = ref_forward(d, true);
  for (double& v : r.val) v = std::max(v, 0.0);
  expect_close(y, r, c);
  expect_zero_padding(y);
  fc.backward_data(pack(d.dy, fc.y_shape()), pack(d.w, fc.w_shape()), dx);
  expect_close(dx, ref_backward_data(d), k);
  expect_zero_padding(dx);
}

// Nine 128-row batch blocks: backward-weights reduces them in two BRGEMM calls (8 + 1 blocks).
TEST_P(FcManyRowsTest, BackwardWeightsOverSeveralReductionChunksMatchesNaiveLoop) {
  const std::int64_t n = 1100, c = 600, k = 70;
  const FcData d(n, c, k, 70);
  Fc fc({n, c, k, 128, 64, 64, false, Activation::none, Precision::fp32});
  ASSERT_FALSE(fc.sweeps());
  BlockedMatrix dw(fc.w_shape());
  fc.backward_weights(pack(d.x, fc.x_shape()), pack(d.dy, fc.y_shape()), dw, {});
  expect_close(dw, ref_backward_weights(d), n);
  expect_zero_padding(dw);
}

// Wide panels: a task computes a band of up to 4 block rows of C; 6 row blocks make a full and a
// partial band (10 block columns keep the bands whole at up to 3 threads), over two reduction
// chunks (18 blocks of 64 against chunks of 16).
TEST_P(FcManyRowsTest, ForwardOverBandsOfBlockRowsMatchesNaiveLoop) {
  expect_relu_forward_matches_naive(380, 1100, 600, 64, 80);
}

// One block column of C: too few columns to share out, so the bands narrow (to 2 block rows at
// 1 thread, 1 at 2 and 3) until every thread has tasks; 9 row blocks leave a partial band.
TEST_P(FcManyRowsTest, ForwardOfOneBlockColumnOverNarrowedBandsMatchesNaiveLoop) {
  expect_relu_forward_matches_naive(1100, 1100, 40, 128, 90);
}

INSTANTIATE_TEST_SUITE_P(Threads, FcManyRowsTest, ::testing::Values(1, 2, 3), test::thread_name);

// BlockedGemm from one operand's transpose (the FC backward passes' path) against run() on an
// explicitly transposed copy: bitwise equal, on blocks that do not divide the sizes, with several
// reduction chunks (17 blocks of 64 x 64 against chunks of 16) and with blocks that are not
// multiples of the 8 x 8 register transpose.
class BlockedGemmTransposedTest : public test::ThreadsTest {};

BlockedMatrix random_blocked(const BlockShape& s, std::uint32_t seed) {
  return pack(random_vector(s.rows * s.cols, seed), s);
}
BlockedMatrix transpose_of(const BlockedMatrix& m) {
  BlockedMatrix t(transposed(m.shape));
  transpose_into(m, t);
  return t;
}

TEST_P(BlockedGemmTransposedTest, RightOperandFromItsTransposeEqualsRunOnTheTransposeBitwise) {
  struct Case { BlockShape a, b; };
  const Case cases[] = {{{70, 1100, 24, 64}, {1100, 130, 64, 64, true}},
                        {{9, 31, 5, 12}, {31, 47, 12, 20, true}},
                        {{300, 70, 16, 32}, {70, 40, 32, 64, true}},
                        // 4.8 MiB of A: B transposed in slabs, here one of all B.
                        {{2100, 520, 64, 64}, {520, 70, 64, 64, true}},
                        // 4.7 MiB of A, 256 KiB column panels of B: slabs of 32 block columns of
                        // C, the last one of 3.
                        {{1100, 1000, 64, 64}, {1000, 2200, 64, 64, true}}};
  for (const Case& t : cases) {
    const BlockedGemm gemm(t.a, t.b);
    const BlockedMatrix a = random_blocked(t.a, 1), bt = random_blocked(transposed(t.b), 2);
    BlockedMatrix want(gemm.c_shape()), got(gemm.c_shape());
    gemm.run(a, transpose_of(bt), want);
    std::vector<float> scratch(std::size_t(gemm.transpose_scratch_floats(BlockedGemm::Transposed::right)));
    gemm.run_right_transposed(a, bt, got, scratch);
    ASSERT_EQ(0, std::memcmp(want.data.data(), got.data.data(), want.data.size() * sizeof(float)))
        << "a " << t.a.rows << " x " << t.a.cols << ", b " << t.b.rows << " x " << t.b.cols;
  }
}

TEST_P(BlockedGemmTransposedTest, LeftOperandFromItsTransposeEqualsRunOnTheTransposeBitwise) {
  struct Case { BlockShape a, b; bool c_column_panels; };
  const Case cases[] = {{{130, 1100, 64, 128}, {1100, 70, 128, 64}, true},
                        {{31, 9, 12, 5}, {9, 47, 5, 20}, false},
                        {{40, 900, 64, 64}, {900, 300, 64, 32}, true},
                        // 18 block rows of C: bands of 4 rows (the last of 2) at 1 thread, of 2
                        // rows at 2 threads, single rows at 3.
                        {{1132, 1100, 64, 128}, {1100, 70, 128, 64}, true}};
  for (const Case& t : cases) {
    const BlockedGemm gemm(t.a, t.b, Precision::fp32, t.c_column_panels);
    const BlockedMatrix at = random_blocked(transposed(t.a), 3), b = random_blocked(t.b, 4);
    BlockedMatrix want(gemm.c_shape()), got(gemm.c_shape());
    gemm.run(transpose_of(at), b, want);
    std::vector<float> scratch(std::size_t(gemm.transpose_scratch_floats(BlockedGemm::Transposed::left)));
    gemm.run_left_transposed(at, b, got, scratch);
    ASSERT_EQ(0, std::memcmp(want.data.data(), got.data.data(), want.data.size() * sizeof(float)))
        << "a " << t.a.rows << " x " << t.a.cols << ", b " << t.b.rows << " x " << t.b.cols;
  }
}

// run() against one LIBXSMM batch-reduce call per C block over the whole reduction: each C
// element is the same FMA chain however run() cuts the reduction into chunks and whichever kernel
// computes them (the register tile on 64-wide slices of large right operands in AVX-512 builds,
// LIBXSMM otherwise), so the two agree bitwise. Odd block row counts, 64- and 128-wide blocks (two
// slices), B in column panels and in row order, several reduction chunks.
class BlockedGemmRunTest : public test::ThreadsTest {};

TEST_P(BlockedGemmRunTest, EqualsOneLibxsmmCallPerBlockBitwise) {
  struct Case { BlockShape a, b; };
  const Case cases[] = {{{70, 1100, 13, 64}, {1100, 130, 64, 64, true}},
                        {{300, 640, 64, 64}, {640, 256, 64, 128, true}},
                        {{130, 700, 7, 64}, {700, 200, 64, 64, false}},
                        {{9, 31, 5, 12}, {31, 47, 12, 20, true}},
                        // 8 MiB of right operand: the register tile's size in AVX-512 builds.
                        {{70, 2048, 13, 64}, {2048, 1024, 64, 64, true}}};
  for (const Case& t : cases) {
    const BlockedGemm gemm(t.a, t.b);
    const BlockedMatrix a = random_blocked(t.a, 1), b = random_blocked(t.b, 2);
    BlockedMatrix want(gemm.c_shape()), got(gemm.c_shape());
    BrgemmDesc d;
    d.m = t.b.bcol, d.n = t.a.brow, d.k = t.a.bcol;
    d.lda = t.b.bcol, d.ldb = t.a.bcol, d.ldc = t.b.bcol;
    d.stride_a = t.b.down_step(), d.stride_b = t.a.right_step();
    const Brgemm whole(d);
    for (std::int64_t i = 0; i < want.shape.row_blocks(); ++i) {
      for (std::int64_t j = 0; j < want.shape.col_blocks(); ++j) whole(b.block(0, j), a.block(i, 0), want.block(i, j), t.a.col_blocks());
    }
    gemm.run(a, b, got);
    ASSERT_EQ(0, std::memcmp(want.data.data(), got.data.data(), want.data.size() * sizeof(float)))
        << "a " << t.a.rows << " x " << t.a.cols << ", b " << t.b.rows << " x " << t.b.cols;
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, BlockedGemmRunTest, ::testing::Values(1, 2, 3), test::thread_name);

TEST(BlockedGemmTransposed, WrongShapesAndShortScratchThrowNamedErrors) {
  const BlockShape as{64, 64, 32, 32}, bs{64, 96, 32, 32, true};
  const BlockedGemm gemm(as, bs);
  const BlockedMatrix a(as), bt(transposed(bs));
  BlockedMatrix c(gemm.c_shape());
  std::vector<float> scratch(std::size_t(gemm.transpose_scratch_floats(BlockedGemm::Transposed::right)));
  EXPECT_THROW(gemm.run_right_transposed(a, bt, c, std::span<float>(scratch).first(1)), std::invalid_argument);
  EXPECT_THROW(gemm.run_right_transposed(a, BlockedMatrix(bs), c, scratch), std::invalid_argument);
  // A left operand in column panels (or a right one in row order) is not what these paths walk.
  const BlockShape panels{64, 64, 32, 32, true};
  const BlockedGemm left_panels(panels, bs);
  EXPECT_THROW(left_panels.run_left_transposed(BlockedMatrix(transposed(panels)), BlockedMatrix(bs), c, scratch),
               std::invalid_argument);
  const BlockShape rows{64, 96, 32, 32};
  const BlockedGemm right_rows(as, rows);
  EXPECT_THROW(right_rows.run_right_transposed(a, BlockedMatrix(transposed(rows)), c, scratch),
               std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Threads, BlockedGemmTransposedTest, ::testing::Values(1, 2, 3), test::thread_name);

// The backward passes' transposed panels are transient memory inside a budget: a thread's panel
// never holds more than the operand it transposes, so a small layer's backward costs no more than
// a whole transposed copy per thread, and a wide one no more than a chunk (backward-data) or a
// band of 4 chunks (backward-weights) per thread.
class FcScratchTest : public test::ThreadsTest {};

TEST_P(FcScratchTest, BackwardScratchIsAtMostOneTransposedOperandOrABandOfChunksPerThread) {
  struct Shape { std::int64_t n, c, k; };
  for (const Shape s : {Shape{256, 64, 64}, Shape{100, 70, 130}, Shape{512, 2048, 1024}}) {
    Fc fc({s.n, s.c, s.k, 128, 64, 64, true, Activation::none});
    ASSERT_FALSE(fc.sweeps());
    const BlockedMatrix x = random_blocked(fc.x_shape(), 1), w = random_blocked(fc.w_shape(), 2);
    const BlockedMatrix dy = random_blocked(fc.y_shape(), 3);
    BlockedMatrix dx(fc.x_shape()), dw(fc.w_shape());
    std::vector<float> dbias(std::size_t(s.k));
    test::CountingAllocator counting;
    fc.set_scratch_allocator(&counting);
    const std::size_t threads = std::size_t(omp_get_max_threads()), chunk = 256 << 10;
    fc.backward_data(dy, w, dx);
    EXPECT_EQ(counting.live_, 0u);
    EXPECT_LE(counting.peak_, threads * std::min(chunk, fc.w_shape().elems() * sizeof(float)))
        << "backward-data, n " << s.n << " c " << s.c << " k " << s.k;
    counting.peak_ = 0;
    fc.backward_weights(x, dy, dw, dbias);
    EXPECT_EQ(counting.live_, 0u);
    EXPECT_LE(counting.peak_, threads * std::min(4 * chunk, fc.x_shape().elems() * sizeof(float)))
        << "backward-weights, n " << s.n << " c " << s.c << " k " << s.k;
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, FcScratchTest, ::testing::Values(1, 2, 3), test::thread_name);

TEST(Fc, BadDescriptorsAndShapesThrowNamedErrors) {
  EXPECT_THROW(Fc({0, 4, 4}), std::invalid_argument);
  EXPECT_THROW(Fc({4, 4, 4, 0, 4, 4}), std::invalid_argument);
  Fc fc({8, 8, 8, 4, 4, 4});
  BlockedMatrix y(fc.y_shape());
  const BlockedMatrix w(fc.w_shape());
  const std::vector<float> bias(8);
  try {
    fc.forward(BlockedMatrix(BlockShape{8, 9, 4, 4}), w, bias, y);
    FAIL() << "forward accepted a wrongly shaped x";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("x shape"), std::string::npos);
  }
  EXPECT_THROW(fc.forward(BlockedMatrix(fc.x_shape()), w, std::vector<float>(3), y),
               std::invalid_argument);
}

TEST(Fc, BatchBlockIsHalvedOnlyWhenThatPadsTheBatchLess) {
  FcDesc d;
  d.c = d.k = 64;
  d.n = 512;
  EXPECT_EQ(Fc(d).desc().bn, 128);
  d.n = 320;  // 384 rows with 128, 320 with 64
  EXPECT_EQ(Fc(d).desc().bn, 64);
  d.n = 200;  // 256 rows either way
  EXPECT_EQ(Fc(d).desc().bn, 128);
  d.n = 100;  // one block of the whole batch
  EXPECT_EQ(Fc(d).desc().bn, 100);
  d.n = 96;
  d.bn = 64;  // 128 rows with 64, 96 with 32
  EXPECT_EQ(Fc(d).desc().bn, 32);
}

TEST(Fc, CostReportsGemmFlopsAndSavedInputBytes) {
  Fc fc({100, 30, 20, 64, 64, 64, true, Activation::relu});
  const LayerCost c = fc.cost();
  EXPECT_EQ(c.fwd_flops, 2.0 * 100 * 30 * 20 + 2.0 * 100 * 20);
  EXPECT_EQ(c.bwd_data_flops, 2.0 * 100 * 30 * 20 + 100 * 20);
  EXPECT_EQ(c.bwd_weights_flops, 2.0 * 100 * 30 * 20 + 100 * 20);
  // x (blocks 64 x 30 -> 128 x 30 padded) and y (128 x 20) for the ReLU mask.
  EXPECT_EQ(c.saved_bytes, (128 * 30 + 128 * 20) * 4);
}

}  // namespace
}  // namespace rematch::kernels
