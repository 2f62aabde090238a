#include <gtest/gtest.h>

#include <numeric>

#include "kernels/eltwise.hpp"
#include "tests/kernels/helpers.hpp"

namespace rematch::kernels {
namespace {

using test::random_vector;

// sum(r * f(x)) in double, for finite differences of pointwise layers.
double weighted(const std::vector<float>& r, const std::vector<double>& fx) {
  double s = 0.0;
  for (std::size_t i = 0; i < r.size(); ++i) s += r[i] * fx[i];
  return s;
}

class EltwiseTest : public test::ThreadsTest {};

TEST_P(EltwiseTest, ReluForwardAndBackwardMatchDefinition) {
  const auto x = random_vector(1001, 1), dy = random_vector(1001, 2);
  std::vector<float> y(x.size()), dx(x.size());
  relu_forward(x, y);
  relu_backward(y, dy, dx);
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(y[i], x[i] > 0 ? x[i] : 0.0f);
    EXPECT_EQ(dx[i], x[i] > 0 ? dy[i] : 0.0f);
  }
}

TEST_P(EltwiseTest, GeluMatchesTanhFormulaAndItsFiniteDifferenceGradient) {
  const auto x = random_vector(257, 3, -4.0f, 4.0f), r = random_vector(257, 4);
  auto gelu = [](double v) {
    return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
  };
  std::vector<float> y(x.size()), dx(x.size());
  gelu_forward(x, y);
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], gelu(x[i]), 1e-6 * (1 + std::abs(x[i])));
  gelu_backward(x, r, dx);
  const auto g = test::finite_difference(
      [&](const std::vector<double>& v) {
        std::vector<double> f(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) f[i] = gelu(v[i]);
        return weighted(r, f);
      },
      test::to_double(x));
  test::expect_gradient_near(dx, g);
}

TEST_P(EltwiseTest, BiasAddAndGradTouchOnlyLogicalEntries) {
  const BlockShape s{10, 7, 4, 4};
  const auto plain = random_vector(70, 5), bias = random_vector(7, 6);
  BlockedMatrix y = pack(plain, s);
  bias_add(y, bias);
  std::vector<float> got(70);
  unpack(y, got);
  for (int r = 0; r < 10; ++r)
    for (int c = 0; c < 7; ++c) EXPECT_EQ(got[r * 7 + c], plain[r * 7 + c] + bias[c]);
  EXPECT_EQ(y.block(2, 1)[3 * 4 + 3], 0.0f);  // padding (row 11, column 7) untouched
  std::vector<float> db(7);
  bias_grad(pack(plain, s), db);
  for (int c = 0; c < 7; ++c) {
    double want = 0.0;
    for (int r = 0; r < 10; ++r) want += plain[r * 7 + c];
    EXPECT_NEAR(db[c], want, 1e-5);
  }
  std::vector<float> ncw(2 * 3 * 5, 1.0f), cb(3);
  bias_add_ncw(ncw, 2, 3, 5, std::vector<float>{1, 2, 3});
  bias_grad_ncw(ncw, 2, 3, 5, cb);
  EXPECT_EQ(cb, (std::vector<float>{20, 30, 40}));
}

TEST_P(EltwiseTest, LayerNormMatchesDefinitionAndFiniteDifferenceGradients) {
  const std::int64_t rows = 6, cols = 11;
  const BlockShape s{rows, cols, 4, 8};
  const auto x = random_vector(rows * cols, 7), gamma = random_vector(cols, 8),
             beta = random_vector(cols, 9), r = random_vector(rows * cols, 10);
  const float eps = 1e-5f;
  auto ln = [&](const std::vector<double>& xv, const std::vector<double>& g,
                const std::vector<double>& b) {
    std::vector<double> y(rows * cols);
    for (std::int64_t i = 0; i < rows; ++i) {
      double m = 0.0, v = 0.0;
      for (std::int64_t j = 0; j < cols; ++j) m += xv[i * cols + j] / cols;
      for (std::int64_t j = 0; j < cols; ++j) v += (xv[i * cols + j] - m) * (xv[i * cols + j] - m) / cols;
      for (std::int64_t j = 0; j < cols; ++j)
        y[i * cols + j] = (xv[i * cols + j] - m) / std::sqrt(v + eps) * g[j] + b[j];
    }
    return y;
  };
  const auto xd = test::to_double(x), gd = test::to_double(gamma), bd = test::to_double(beta);
  const BlockedMatrix xb = pack(x, s);
  BlockedMatrix y(s), dx(s);
  std::vector<float> mean(rows), rstd(rows), dg(cols), dbeta(cols), got(rows * cols);
  layer_norm_forward(xb, gamma, beta, eps, y, mean, rstd);
  unpack(y, got);
  const auto want = ln(xd, gd, bd);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5);
  layer_norm_backward(xb, pack(r, s), gamma, mean, rstd, dx, dg, dbeta);
  unpack(dx, got);
  test::expect_gradient_near(got, test::finite_difference([&](const auto& v) { return weighted(r, ln(v, gd, bd)); }, xd));
  test::expect_gradient_near(dg, test::finite_difference([&](const auto& v) { return weighted(r, ln(xd, v, bd)); }, gd));
  test::expect_gradient_near(dbeta, test::finite_difference([&](const auto& v) { return weighted(r, ln(xd, gd, v)); }, bd));
  // The statistics alone, as a backward that kept only x recomputes them: bitwise the forward's.
  std::vector<float> mean2(rows), rstd2(rows);
  layer_norm_stats(xb, eps, mean2, rstd2);
  EXPECT_EQ(mean2, mean);
  EXPECT_EQ(rstd2, rstd);
}

TEST_P(EltwiseTest, AddIntoIsTheElementwiseSum) {
  const auto x = random_vector(1001, 3), y0 = random_vector(1001, 4);
  std::vector<float> y = y0;
  add_into(x, y);
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], y0[i] + x[i]);
  std::vector<float> short_y(3);
  EXPECT_THROW(add_into(x, short_y), std::invalid_argument);
}

TEST_P(EltwiseTest, DropoutMaskIsReproducibleFromSeedAndKeepsExpectedFraction) {
  const DropoutDesc d{0.3f, 1234};
  const std::vector<float> x(100000, 1.0f);
  std::vector<float> y1(x.size()), y2(x.size()), dx(x.size());
  dropout_forward(d, x, y1);
  dropout_forward(d, x, y2);  // recomputation
  EXPECT_EQ(y1, y2);
  dropout_backward(d, x, dx);
  EXPECT_EQ(dx, y1);  // same mask and scale on the gradient
  const auto kept = std::count_if(y1.begin(), y1.end(), [](float v) { return v != 0.0f; });
  EXPECT_NEAR(double(kept) / double(x.size()), 0.7, 0.01);  // ~7 sigma
  for (float v : y1) ASSERT_TRUE(v == 0.0f || v == 1.0f / 0.7f);
  std::vector<float> other(x.size());
  dropout_forward({0.3f, 1235}, x, other);
  EXPECT_NE(other, y1);
  EXPECT_THROW(dropout_forward({1.0f, 1}, x, y1), std::invalid_argument);
}

TEST_P(EltwiseTest, PoolingMatchesNaiveLoopAndFiniteDifferences) {
  for (PoolKind kind : {PoolKind::max, PoolKind::avg}) {
    const Pool1dDesc d{2, 3, 17, 4, 3, kind};
    const std::int64_t q = d.out_width();
    ASSERT_EQ(q, 5);
    const auto x = random_vector(2 * 3 * 17, 11), r = random_vector(2 * 3 * q, 12);
    auto pool = [&](const std::vector<double>& xv) {
      std::vector<double> y(2 * 3 * q);
      for (std::int64_t row = 0; row < 6; ++row)
        for (std::int64_t o = 0; o < q; ++o) {
          double acc = kind == PoolKind::max ? -1e300 : 0.0;
          for (std::int64_t t = 0; t < 4; ++t) {
            const double v = xv[row * 17 + o * 3 + t];
            acc = kind == PoolKind::max ? std::max(acc, v) : acc + v / 4;
          }
          y[row * q + o] = acc;
        }
      return y;
    };
    std::vector<float> y(2 * 3 * q), dx(x.size());
    pool1d_forward(d, x, y);
    const auto want = pool(test::to_double(x));
    for (std::size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-6);
    pool1d_backward(d, x, r, dx);
    test::expect_gradient_near(dx, test::finite_difference([&](const auto& v) { return weighted(r, pool(v)); }, test::to_double(x)));
  }
  EXPECT_THROW((Pool1dDesc{1, 1, 3, 4, 1}.out_width()), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Threads, EltwiseTest, ::testing::Values(1, 2), test::thread_name);

TEST(Eltwise, MismatchedSizesThrowNamedErrors) {
  std::vector<float> a(4), b(5);
  try {
    relu_forward(a, b);
    FAIL() << "relu_forward accepted different sizes";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("relu_forward"), std::string::npos);
  }
  BlockedMatrix m(BlockShape{2, 3, 2, 2});
  EXPECT_THROW(bias_add(m, a), std::invalid_argument);
}

TEST(Eltwise, CostsReportSavedTensors) {
  EXPECT_EQ(relu_cost(100).saved_bytes, 400);
  EXPECT_EQ(dropout_cost(100).saved_bytes, 8);  // only the seed
  EXPECT_EQ(layer_norm_cost(10, 20).saved_bytes, (200 + 20) * 4);
}

}  // namespace
}  // namespace rematch::kernels
