// The one-sweep backward of narrow FC layers (fc.hpp): against naive double loops of the unfused
// passes (ReLU mask, bias gradient, dx, dw), bitwise independent of the thread count, and taken
// exactly by the shapes it is planned for.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "kernels/fc.hpp"
#include "tests/kernels/helpers.hpp"

namespace rematch::kernels {
namespace {

using test::dot_tolerance;
using test::random_vector;

struct Case {
  std::int64_t n, c, k, block;
  Activation act;
  bool bias;
  std::int64_t bn = 0;  // batch block when not `block`
};
// Odd sizes that pad every block dimension; at least 4 row blocks each, so they sweep. Output
// blocks of 16, 32, 64, 80 (five 16-column vectors), 24 (a vector and a scalar tail) and 10 columns
// (scalar only) take every path of the masking pass; with and without ReLU and bias (none of
// either: no masking pass at all). Row blocks of dx that are whole vectors are streamed out from
// per-thread scratch, the others written in place: 2 x 3 blocks (a 6-float row block) take that
// path on every ISA, 40 x 21 blocks (840 floats) with 16-float vectors. The dw products take a row
// block in two parts of its rows: 16 rows as 8 + 8, 5 as 2 + 3, and single rows in one part. Layers
// whose weight gradient is one block 64 inputs wide take them on the register tile (AVX-512 builds):
// 64, 33 (every row-group size) and 1 output rows, row blocks of 64 (a partial last one) and 45
// (parts of 22 + 23 rows).
const Case kCases[] = {{1000, 45, 70, 16, Activation::relu, true},
                       {41, 3, 5, 1, Activation::relu, true},
                       {1001, 3, 40, 5, Activation::relu, true},
                       {777, 130, 33, 32, Activation::relu, true},
                       {517, 64, 64, 64, Activation::none, true},
                       {300, 7, 129, 16, Activation::relu, false},
                       {403, 21, 150, 80, Activation::relu, true},
                       {333, 19, 10, 64, Activation::relu, true},
                       {450, 24, 40, 24, Activation::none, false},
                       {1001, 64, 33, 64, Activation::relu, true},
                       {2250, 64, 64, 64, Activation::relu, false, 45},
                       {600, 64, 1, 64, Activation::none, true}};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

struct Outputs {
  std::vector<float> dx, dw, db;
};

struct Problem {
  Case cs;
  Fc fc;
  BlockedMatrix x, w, y;
  std::vector<float> xp, wp, bias, dyp, yp;
  explicit Problem(const Case& c)
      : cs(c),
        fc({c.n, c.c, c.k, c.bn > 0 ? c.bn : c.block, c.block, c.block, c.bias, c.act, Precision::fp32}),
        xp(random_vector(c.n * c.c, 1)),
        wp(random_vector(c.c * c.k, 2)),
        bias(random_vector(c.bias ? c.k : 0, 3)),
        dyp(random_vector(c.n * c.k, 4)) {
    x = pack(xp, fc.x_shape());
    w = pack(wp, fc.w_shape());
    y = BlockedMatrix(fc.y_shape());
    fc.forward(x, w, bias, y);
    yp.resize(c.n * c.k);
    unpack(y, yp);
  }
  Outputs run(bool with_dx) {
    BlockedMatrix dy = pack(dyp, fc.y_shape()), dx(fc.x_shape()), dw(fc.w_shape());
    Outputs o{std::vector<float>(cs.n * cs.c), std::vector<float>(cs.c * cs.k),
              std::vector<float>(cs.bias ? cs.k : 0)};
    fc.backward(x, y, dy, w, with_dx ? &dx : nullptr, dw, o.db);
    unpack(dx, o.dx);
    unpack(dw, o.dw);
    for (float v : dx.data.span()) EXPECT_TRUE(with_dx || v == 0.0f);
    double inside = 0, all = 0;
    for (float v : o.dw) inside += std::abs(v);
    for (float v : dw.data.span()) all += std::abs(v);
    EXPECT_EQ(inside, all) << "dw padding must stay zero";
    return o;
  }
};

class FcSweepTest : public test::ThreadsTest {};

TEST_P(FcSweepTest, BackwardMatchesNaiveUnfusedPasses) {
  for (const Case& c : kCases) {
    Problem p(c);
    ASSERT_TRUE(p.fc.sweeps()) << c.n << "x" << c.c << "x" << c.k;
    const Outputs got = p.run(true);
    // The gradient w.r.t. the pre-activation, as activation_backward makes it.
    std::vector<double> g(c.n * c.k);
    for (std::int64_t i = 0; i < c.n * c.k; ++i) {
      g[i] = c.act == Activation::relu && !(p.yp[i] > 0.0f) ? 0.0 : p.dyp[i];
    }
    for (std::int64_t i = 0; i < c.n; ++i) {
      for (std::int64_t j = 0; j < c.c; ++j) {
        double s = 0, a = 0;
        for (std::int64_t o = 0; o < c.k; ++o) {
          s += g[i * c.k + o] * p.wp[j * c.k + o];
          a += std::abs(g[i * c.k + o] * p.wp[j * c.k + o]);
        }
        ASSERT_NEAR(got.dx[i * c.c + j], s, dot_tolerance(c.k, a));
      }
    }
    for (std::int64_t j = 0; j < c.c; ++j) {
      for (std::int64_t o = 0; o < c.k; ++o) {
        double s = 0, a = 0;
        for (std::int64_t i = 0; i < c.n; ++i) {
          s += double(p.xp[i * c.c + j]) * g[i * c.k + o];
          a += std::abs(double(p.xp[i * c.c + j]) * g[i * c.k + o]);
        }
        ASSERT_NEAR(got.dw[j * c.k + o], s, dot_tolerance(c.n, a));
      }
    }
    for (std::size_t o = 0; o < got.db.size(); ++o) {
      double s = 0, a = 0;
      for (std::int64_t i = 0; i < c.n; ++i) s += g[i * c.k + o], a += std::abs(g[i * c.k + o]);
      ASSERT_NEAR(got.db[o], s, dot_tolerance(c.n, a));
    }
  }
}

TEST_P(FcSweepTest, WithoutInputGradientGivesTheSameWeightGradientsBitwise) {
  Problem p(kCases[0]);
  const Outputs all = p.run(true), weights = p.run(false);
  EXPECT_TRUE(same_bits(all.dw, weights.dw));
  EXPECT_TRUE(same_bits(all.db, weights.db));
}

TEST_P(FcSweepTest, BackwardWeightsAloneEqualsTheSweepWithoutActivation) {
  const Case c{517, 64, 64, 64, Activation::none, true};
  Problem p(c);
  const Outputs sweep = p.run(true);
  BlockedMatrix dw(p.fc.w_shape());
  std::vector<float> db(c.k), dwp(c.c * c.k);
  p.fc.backward_weights(p.x, pack(p.dyp, p.fc.y_shape()), dw, db);
  unpack(dw, dwp);
  EXPECT_TRUE(same_bits(sweep.dw, dwp));
  EXPECT_TRUE(same_bits(sweep.db, db));
}

INSTANTIATE_TEST_SUITE_P(Threads, FcSweepTest, ::testing::Values(1, 2), test::thread_name);

TEST(FcSweep, ResultsAreBitwiseIdenticalForOneTwoAndThreeThreads) {
  const int saved = omp_get_max_threads();
  for (const Case& c : kCases) {
    Problem p(c);
    omp_set_num_threads(1);
    const Outputs one = p.run(true);
    for (int t : {2, 3}) {
      omp_set_num_threads(t);
      const Outputs other = p.run(true);
      EXPECT_TRUE(same_bits(one.dx, other.dx)) << t;
      EXPECT_TRUE(same_bits(one.dw, other.dw)) << t;
      EXPECT_TRUE(same_bits(one.db, other.db)) << t;
    }
  }
  omp_set_num_threads(saved);
}

TEST(FcSweep, OnlyNarrowLayersOnSeveralRowBlocksSweep) {
  EXPECT_TRUE(Fc({4096, 128, 128}).sweeps());
  EXPECT_FALSE(Fc({4096, 2048, 2048}).sweeps());  // a 16 MiB weight gradient per segment
  EXPECT_TRUE(Fc({8192, 512, 512}).sweeps());    // four 1 MiB segment gradients, a 16 MiB input
  EXPECT_FALSE(Fc({1024, 512, 512}).sweeps());   // ... but not beside a 2 MiB input
  EXPECT_FALSE(Fc({256, 128, 128}).sweeps());     // two row blocks
  if (bf16_supported()) {  // bf16 keeps its three passes
    EXPECT_FALSE(Fc({4096, 128, 128, 128, 64, 64, true, Activation::none, Precision::bf16}).sweeps());
  }
}

TEST(FcSweep, TheShapePredicateAnswersAsTheBuiltLayer) {
  int sweeping = 0, not_sweeping = 0;
  for (std::int64_t n : {256, 1000, 4096, 8192}) {
    for (std::int64_t c : {3, 128, 784}) {
      for (std::int64_t k : {16, 512}) {
        for (bool whole_rows : {false, true}) {
          FcDesc d{n, c, k};
          if (whole_rows) d.bc = c;
          const bool built = Fc(d).sweeps();
          EXPECT_EQ(fc_sweeps(d), built) << n << "x" << c << "x" << k << (whole_rows ? " whole rows" : "");
          ++(built ? sweeping : not_sweeping);
        }
      }
    }
  }
  EXPECT_GT(sweeping, 0);
  EXPECT_GT(not_sweeping, 0);
}

}  // namespace
}  // namespace rematch::kernels
