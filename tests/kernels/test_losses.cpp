#include <gtest/gtest.h>

#include "kernels/losses.hpp"
#include "tests/kernels/helpers.hpp"

namespace rematch::kernels {
namespace {

using test::random_vector;
using test::to_double;

constexpr std::int64_t kN = 6, kDim = 5;

double dist(const std::vector<double>& a, const std::vector<double>& b, std::int64_t i) {
  double s = 0.0;
  for (std::int64_t j = 0; j < kDim; ++j) s += (a[i * kDim + j] - b[i * kDim + j]) * (a[i * kDim + j] - b[i * kDim + j]);
  return std::sqrt(s + kDistanceEps);
}

class LossTest : public test::ThreadsTest {};

TEST_P(LossTest, ContrastiveMatchesDefinitionAndFiniteDifferences) {
  const auto a = random_vector(kN * kDim, 1), b = random_vector(kN * kDim, 2);
  const std::vector<float> y{1, 0, 1, 0, 0, 1};
  const float margin = 1.5f;  // some dissimilar pairs inside, some outside the margin
  auto loss = [&](const std::vector<double>& av, const std::vector<double>& bv) {
    double l = 0.0;
    for (std::int64_t i = 0; i < kN; ++i) {
      const double d = dist(av, bv, i), h = std::max(0.0, margin - d);
      l += 0.5 * (y[i] * d * d + (1 - y[i]) * h * h);
    }
    return l / kN;
  };
  std::vector<float> da(a.size()), db(b.size());
  const float l = contrastive_loss(a, b, y, kN, kDim, margin, da, db);
  EXPECT_NEAR(l, loss(to_double(a), to_double(b)), 1e-6);
  EXPECT_EQ(contrastive_loss(a, b, y, kN, kDim, margin, {}, {}), l);
  test::expect_gradient_near(da, test::finite_difference([&](const auto& v) { return loss(v, to_double(b)); }, to_double(a)));
  test::expect_gradient_near(db, test::finite_difference([&](const auto& v) { return loss(to_double(a), v); }, to_double(b)));
}

TEST_P(LossTest, TripletMarginMatchesDefinitionAndFiniteDifferences) {
  const auto a = random_vector(kN * kDim, 3), p = random_vector(kN * kDim, 4),
             q = random_vector(kN * kDim, 5);
  const float margin = 0.5f;
  auto loss = [&](const std::vector<double>& av, const std::vector<double>& pv,
                  const std::vector<double>& qv) {
    double l = 0.0;
    for (std::int64_t i = 0; i < kN; ++i) l += std::max(0.0, dist(av, pv, i) - dist(av, qv, i) + margin);
    return l / kN;
  };
  const auto ad = to_double(a), pd = to_double(p), qd = to_double(q);
  std::vector<float> ga(a.size()), gp(p.size()), gq(q.size());
  const float l = triplet_margin_loss(a, p, q, kN, kDim, margin, ga, gp, gq);
  EXPECT_NEAR(l, loss(ad, pd, qd), 1e-6);
  test::expect_gradient_near(ga, test::finite_difference([&](const auto& v) { return loss(v, pd, qd); }, ad));
  test::expect_gradient_near(gp, test::finite_difference([&](const auto& v) { return loss(ad, v, qd); }, pd));
  test::expect_gradient_near(gq, test::finite_difference([&](const auto& v) { return loss(ad, pd, v); }, qd));
}

TEST_P(LossTest, CosineEmbeddingMatchesDefinitionAndFiniteDifferences) {
  const auto a = random_vector(kN * kDim, 6), b = random_vector(kN * kDim, 7);
  const std::vector<float> y{1, -1, 1, -1, -1, 1};
  const float margin = -0.2f;
  auto loss = [&](const std::vector<double>& av, const std::vector<double>& bv) {
    double l = 0.0;
    for (std::int64_t i = 0; i < kN; ++i) {
      double xy = 0, xx = kDistanceEps, yy = kDistanceEps;
      for (std::int64_t j = 0; j < kDim; ++j) {
        xy += av[i * kDim + j] * bv[i * kDim + j];
        xx += av[i * kDim + j] * av[i * kDim + j];
        yy += bv[i * kDim + j] * bv[i * kDim + j];
      }
      const double c = xy / std::sqrt(xx * yy);
      l += y[i] > 0 ? 1 - c : std::max(0.0, c - margin);
    }
    return l / kN;
  };
  std::vector<float> da(a.size()), db(b.size());
  const float l = cosine_embedding_loss(a, b, y, kN, kDim, margin, da, db);
  EXPECT_NEAR(l, loss(to_double(a), to_double(b)), 1e-6);
  test::expect_gradient_near(da, test::finite_difference([&](const auto& v) { return loss(v, to_double(b)); }, to_double(a)));
  test::expect_gradient_near(db, test::finite_difference([&](const auto& v) { return loss(to_double(a), v); }, to_double(b)));
}

TEST_P(LossTest, SoftmaxCrossEntropyMatchesDefinitionAndFiniteDifferences) {
  const std::int64_t classes = 7;
  const auto z = random_vector(kN * classes, 8, -5.0f, 5.0f);
  const std::vector<std::int32_t> labels{0, 6, 3, 3, 1, 5};
  auto loss = [&](const std::vector<double>& zv) {
    double l = 0.0;
    for (std::int64_t i = 0; i < kN; ++i) {
      double s = 0.0;
      for (std::int64_t j = 0; j < classes; ++j) s += std::exp(zv[i * classes + j]);
      l += std::log(s) - zv[i * classes + labels[i]];
    }
    return l / kN;
  };
  std::vector<float> dz(z.size());
  const float l = softmax_cross_entropy(z, labels, kN, classes, dz);
  EXPECT_NEAR(l, loss(to_double(z)), 1e-6);
  test::expect_gradient_near(dz, test::finite_difference(loss, to_double(z)));
}

INSTANTIATE_TEST_SUITE_P(Threads, LossTest, ::testing::Values(1, 2), test::thread_name);

TEST(Losses, BadArgumentsThrowNamedErrors) {
  const std::vector<float> a(10), b(10), y(2, 1.0f);
  std::vector<float> g(10), short_g(3);
  EXPECT_THROW(contrastive_loss(a, b, y, 2, 4, 1.0f, g, g), std::invalid_argument);
  EXPECT_THROW(contrastive_loss(a, b, y, 2, 5, 1.0f, g, short_g), std::invalid_argument);
  EXPECT_THROW(cosine_embedding_loss(a, b, std::vector<float>{1, 0}, 2, 5, 0.0f, {}, {}),
               std::invalid_argument);
  try {
    softmax_cross_entropy(a, std::vector<std::int32_t>{0, 5}, 2, 5, {});
    FAIL() << "an out-of-range label was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("label 5"), std::string::npos);
  }
}

}  // namespace
}  // namespace rematch::kernels
