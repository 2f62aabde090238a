#include "kernels/losses.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/error.hpp"

namespace rematch::kernels {
namespace {

void check_input(std::span<const float> s, std::int64_t n, std::int64_t dim, const char* loss,
                 const char* name) {
  require(n > 0 && dim > 0, std::string(loss) + ": n and dim must be positive");
  require(static_cast<std::int64_t>(s.size()) == n * dim,
          std::string(loss) + ": " + name + " has " + std::to_string(s.size()) +
              " values, expected " + std::to_string(n * dim));
}

// Gradients are all requested or all skipped.
bool check_grads(std::initializer_list<std::span<float>> grads, std::int64_t n, std::int64_t dim,
                 const char* loss) {
  const bool want = !std::data(grads)->empty();
  for (const auto& g : grads) {
    require(want ? static_cast<std::int64_t>(g.size()) == n * dim : g.empty(),
            std::string(loss) + ": pass all gradient spans with n*dim values, or none");
  }
  return want;
}

double distance(const float* x, const float* y, std::int64_t dim) {
  double s = 0.0;
  for (std::int64_t j = 0; j < dim; ++j) s += (double(x[j]) - y[j]) * (double(x[j]) - y[j]);
  return std::sqrt(s + kDistanceEps);
}

double ordered_mean(const std::vector<double>& terms) {
  double s = 0.0;
  for (double t : terms) s += t;
  return s / double(terms.size());
}

}  // namespace

float contrastive_loss(std::span<const float> a, std::span<const float> b,
                       std::span<const float> similar, std::int64_t n, std::int64_t dim,
                       float margin, std::span<float> da, std::span<float> db) {
  check_input(a, n, dim, "contrastive_loss", "a");
  check_input(b, n, dim, "contrastive_loss", "b");
  check_input(similar, n, 1, "contrastive_loss", "similar");
  require(margin > 0.0f, "contrastive_loss: margin must be positive");
  const bool grad = check_grads({da, db}, n, dim, "contrastive_loss");
  std::vector<double> terms(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float* x = a.data() + i * dim;
    const float* y = b.data() + i * dim;
    const double d = distance(x, y, dim), hinge = std::max(0.0, margin - d), s = similar[i];
    terms[i] = 0.5 * (s * d * d + (1.0 - s) * hinge * hinge);
    if (!grad) continue;
    // d(term)/dx = (s - (1 - s) hinge / d) (x - y)
    const double g = (s - (1.0 - s) * hinge / d) / double(n);
    for (std::int64_t j = 0; j < dim; ++j) {
      const double v = g * (double(x[j]) - y[j]);
      da[i * dim + j] = static_cast<float>(v);
      db[i * dim + j] = static_cast<float>(-v);
    }
  }
  return static_cast<float>(ordered_mean(terms));
}

float triplet_margin_loss(std::span<const float> anchor, std::span<const float> positive,
                          std::span<const float> negative, std::int64_t n, std::int64_t dim,
                          float margin, std::span<float> d_anchor, std::span<float> d_positive,
                          std::span<float> d_negative) {
  check_input(anchor, n, dim, "triplet_margin_loss", "anchor");
  check_input(positive, n, dim, "triplet_margin_loss", "positive");
  check_input(negative, n, dim, "triplet_margin_loss", "negative");
  require(margin >= 0.0f, "triplet_margin_loss: margin must be non-negative");
  const bool grad = check_grads({d_anchor, d_positive, d_negative}, n, dim, "triplet_margin_loss");
  std::vector<double> terms(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float* a = anchor.data() + i * dim;
    const float* p = positive.data() + i * dim;
    const float* q = negative.data() + i * dim;
    const double dp = distance(a, p, dim), dq = distance(a, q, dim);
    const double t = dp - dq + margin;
    terms[i] = std::max(0.0, t);
    if (!grad) continue;
    const double active = t > 0.0 ? 1.0 / double(n) : 0.0;
    for (std::int64_t j = 0; j < dim; ++j) {
      const double gp = active * (double(a[j]) - p[j]) / dp;
      const double gq = active * (double(a[j]) - q[j]) / dq;
      d_anchor[i * dim + j] = static_cast<float>(gp - gq);
      d_positive[i * dim + j] = static_cast<float>(-gp);
      d_negative[i * dim + j] = static_cast<float>(gq);
    }
  }
  return static_cast<float>(ordered_mean(terms));
}

float cosine_embedding_loss(std::span<const float> a, std::span<const float> b,
                            std::span<const float> target, std::int64_t n, std::int64_t dim,
                            float margin, std::span<float> da, std::span<float> db) {
  check_input(a, n, dim, "cosine_embedding_loss", "a");
  check_input(b, n, dim, "cosine_embedding_loss", "b");
  check_input(target, n, 1, "cosine_embedding_loss", "target");
  for (float t : target) {
    require(t == 1.0f || t == -1.0f, "cosine_embedding_loss: targets must be +1 or -1");
  }
  const bool grad = check_grads({da, db}, n, dim, "cosine_embedding_loss");
  std::vector<double> terms(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float* x = a.data() + i * dim;
    const float* y = b.data() + i * dim;
    double xy = 0.0, xx = kDistanceEps, yy = kDistanceEps;
    for (std::int64_t j = 0; j < dim; ++j) {
      xy += double(x[j]) * y[j];
      xx += double(x[j]) * x[j];
      yy += double(y[j]) * y[j];
    }
    const double nx = std::sqrt(xx), ny = std::sqrt(yy), cos = xy / (nx * ny);
    // d(term)/d(cos): -1 for similar pairs, +1 for dissimilar ones above the margin.
    double dcos = 0.0;
    if (target[i] > 0.0f) {
      terms[i] = 1.0 - cos;
      dcos = -1.0;
    } else {
      terms[i] = std::max(0.0, cos - margin);
      dcos = cos > margin ? 1.0 : 0.0;
    }
    if (!grad) continue;
    const double g = dcos / double(n);
    for (std::int64_t j = 0; j < dim; ++j) {
      da[i * dim + j] = static_cast<float>(g * (y[j] / (nx * ny) - cos * x[j] / xx));
      db[i * dim + j] = static_cast<float>(g * (x[j] / (nx * ny) - cos * y[j] / yy));
    }
  }
  return static_cast<float>(ordered_mean(terms));
}

float softmax_cross_entropy(std::span<const float> logits, std::span<const std::int32_t> labels,
                            std::int64_t n, std::int64_t classes, std::span<float> dlogits) {
  check_input(logits, n, classes, "softmax_cross_entropy", "logits");
  require(static_cast<std::int64_t>(labels.size()) == n,
          "softmax_cross_entropy: labels must have n values");
  for (std::int32_t l : labels) {
    require(l >= 0 && l < classes, "softmax_cross_entropy: label " + std::to_string(l) +
                                       " outside [0, " + std::to_string(classes) + ")");
  }
  const bool grad = check_grads({dlogits}, n, classes, "softmax_cross_entropy");
  std::vector<double> terms(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * classes;
    const double top = *std::max_element(z, z + classes);
    double sum = 0.0;
    for (std::int64_t j = 0; j < classes; ++j) sum += std::exp(z[j] - top);
    terms[i] = top + std::log(sum) - z[labels[i]];
    if (!grad) continue;
    for (std::int64_t j = 0; j < classes; ++j) {
      const double p = std::exp(z[j] - top) / sum - (j == labels[i] ? 1.0 : 0.0);
      dlogits[i * classes + j] = static_cast<float>(p / double(n));
    }
  }
  return static_cast<float>(ordered_mean(terms));
}

LayerCost loss_cost(std::int64_t n, std::int64_t dim, std::int64_t inputs) {
  const double e = double(n) * double(dim) * double(inputs);
  return {3.0 * e, 3.0 * e, 0, n * dim * inputs * std::int64_t(sizeof(float))};
}

}  // namespace rematch::kernels
