#include "kernels/eltwise.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/op_timing.hpp"
#include "kernels/simd.hpp"
#include "kernels/error.hpp"

namespace rematch::kernels {
namespace {

void same_size(std::size_t a, std::size_t b, const char* what) {
  require(a == b, std::string(what) + ": sizes differ (" + std::to_string(a) + " vs " +
                      std::to_string(b) + ")");
}

std::int64_t ssize(std::span<const float> s) { return static_cast<std::int64_t>(s.size()); }

constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluA = 0.044715f;

std::uint64_t mix(std::uint64_t z) {  // splitmix64 finaliser: a full-avalanche bijection
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void check_dropout(const DropoutDesc& d) {
  require(d.p >= 0.0f && d.p < 1.0f, "dropout: p must be in [0, 1), got " + std::to_string(d.p));
}

void check_ncw(std::size_t size, std::int64_t n, std::int64_t c, std::int64_t w, const char* what) {
  require(n > 0 && c > 0 && w > 0, std::string(what) + ": sizes must be positive");
  same_size(size, static_cast<std::size_t>(n * c * w), what);
}

// Mean and 1 / sqrt(var + eps) of logical row r, accumulated in double in column order.
void row_stats(const BlockedMatrix& x, std::int64_t r, float eps, float& mean, float& rstd) {
  const BlockShape& s = x.shape;
  const std::int64_t rb = r / s.brow, i = r % s.brow;
  double sum = 0.0, sq = 0.0;
  for (std::int64_t c = 0; c < s.cols; ++c) {
    const double v = x.block(rb, c / s.bcol)[i * s.bcol + c % s.bcol];
    sum += v;
    sq += v * v;
  }
  const double m = sum / double(s.cols);
  const double var = std::max(sq / double(s.cols) - m * m, 0.0);
  mean = static_cast<float>(m);
  rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
}

}  // namespace

void relu_forward(std::span<const float> x, std::span<float> y) {
  const OpScope scope(OpKind::eltwise);
  same_size(x.size(), y.size(), "relu_forward");
  // Raw pointers: through the spans the compiler must assume a store may move them, and it then
  // neither hoists their loads nor vectorises (a branch per element, mispredicted half the time).
  const float* in = x.data();
  float* out = y.data();
  const std::int64_t n = ssize(x);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void relu_backward(std::span<const float> y, std::span<const float> dy, std::span<float> dx) {
  const OpScope scope(OpKind::eltwise);
  same_size(y.size(), dy.size(), "relu_backward");
  same_size(y.size(), dx.size(), "relu_backward");
  const float* out = y.data();
  const float* g = dy.data();
  float* in = dx.data();
  const std::int64_t n = ssize(y);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) in[i] = out[i] > 0.0f ? g[i] : 0.0f;
}

LayerCost relu_cost(std::int64_t elems) {
  return {double(elems), double(elems), 0, elems * std::int64_t(sizeof(float))};
}

void gelu_forward(std::span<const float> x, std::span<float> y) {
  const OpScope scope(OpKind::eltwise);
  same_size(x.size(), y.size(), "gelu_forward");
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < ssize(x); ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(kGeluC * (v + kGeluA * v * v * v)));
  }
}

void gelu_backward(std::span<const float> x, std::span<const float> dy, std::span<float> dx) {
  const OpScope scope(OpKind::eltwise);
  same_size(x.size(), dy.size(), "gelu_backward");
  same_size(x.size(), dx.size(), "gelu_backward");
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < ssize(x); ++i) {
    const float v = x[i];
    const float t = std::tanh(kGeluC * (v + kGeluA * v * v * v));
    const float dt = (1.0f - t * t) * kGeluC * (1.0f + 3.0f * kGeluA * v * v);
    dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * dt);
  }
}

LayerCost gelu_cost(std::int64_t elems) {
  return {14.0 * double(elems), 20.0 * double(elems), 0, elems * std::int64_t(sizeof(float))};
}

void bias_activation_block(float* block, const BlockShape& s, std::int64_t rb, std::int64_t cb,
                           const float* bias, Activation act) {
  const std::int64_t rows = std::min(s.brow, s.rows - rb * s.brow);
  const std::int64_t cols = std::min(s.bcol, s.cols - cb * s.bcol);
  const float* b = bias != nullptr ? bias + cb * s.bcol : nullptr;
  if (b == nullptr && act == Activation::none) return;
  if (cols % kVectorFloats == 0) {
    // One pass of whole vectors per row (bias and ReLU together): the scalar-indexed loops below,
    // versioned for aliasing and run once per operation, took a quarter of a narrow layer's
    // forward.
    const FloatVector zero = {};
    for (std::int64_t i = 0; i < rows; ++i) {
      float* row = block + i * s.bcol;
      for (std::int64_t j = 0; j < cols; j += kVectorFloats) {
        FloatVector v, add = zero;
        std::memcpy(&v, row + j, sizeof v);
        if (b != nullptr) std::memcpy(&add, b + j, sizeof add);
        v += add;
        if (act == Activation::relu) v = v > zero ? v : zero;
        std::memcpy(row + j, &v, sizeof v);
      }
    }
    return;
  }
  for (std::int64_t i = 0; i < rows; ++i) {
    float* row = block + i * s.bcol;
    if (b != nullptr) {
      for (std::int64_t j = 0; j < cols; ++j) row[j] += b[j];
    }
    if (act == Activation::relu) {
      for (std::int64_t j = 0; j < cols; ++j) row[j] = row[j] > 0.0f ? row[j] : 0.0f;
    }
  }
}

void bias_add(BlockedMatrix& y, std::span<const float> bias) {
  const OpScope scope(OpKind::eltwise);
  const BlockShape& s = y.shape;
  same_size(bias.size(), static_cast<std::size_t>(s.cols), "bias_add: bias vs columns");
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t rb = 0; rb < s.row_blocks(); ++rb) {
    for (std::int64_t cb = 0; cb < s.col_blocks(); ++cb) {
      bias_activation_block(y.block(rb, cb), s, rb, cb, bias.data(), Activation::none);
    }
  }
}

void bias_grad(const BlockedMatrix& dy, std::span<float> dbias) {
  const OpScope scope(OpKind::eltwise);
  const BlockShape& s = dy.shape;
  same_size(dbias.size(), static_cast<std::size_t>(s.cols), "bias_grad: bias vs columns");
  // A column block at a time, its rows added in order as whole vectors (each column's sum is the
  // same sequence of additions as a column-by-column loop, without its one-float-per-line reads).
  const std::int64_t rows = s.rows;
#pragma omp parallel for schedule(static)
  for (std::int64_t cb = 0; cb < s.col_blocks(); ++cb) {
    std::vector<float> acc(std::size_t(s.bcol), 0.0f);
    float* a = acc.data();
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* row = dy.block(r / s.brow, cb) + (r % s.brow) * s.bcol;
      for (std::int64_t j = 0; j < s.bcol; ++j) a[j] += row[j];
    }
    const std::int64_t cols = std::min(s.bcol, s.cols - cb * s.bcol);
    for (std::int64_t j = 0; j < cols; ++j) dbias[cb * s.bcol + j] = a[j];
  }
}

void bias_add_ncw(std::span<float> y, std::int64_t n, std::int64_t channels, std::int64_t width,
                  std::span<const float> bias) {
  const OpScope scope(OpKind::eltwise);
  check_ncw(y.size(), n, channels, width, "bias_add_ncw");
  same_size(bias.size(), static_cast<std::size_t>(channels), "bias_add_ncw: bias vs channels");
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t c = 0; c < channels; ++c) {
      float* row = y.data() + (i * channels + c) * width;
      for (std::int64_t w = 0; w < width; ++w) row[w] += bias[c];
    }
  }
}

void bias_grad_ncw(std::span<const float> dy, std::int64_t n, std::int64_t channels,
                   std::int64_t width, std::span<float> dbias) {
  const OpScope scope(OpKind::eltwise);
  check_ncw(dy.size(), n, channels, width, "bias_grad_ncw");
  same_size(dbias.size(), static_cast<std::size_t>(channels), "bias_grad_ncw: bias vs channels");
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < channels; ++c) {
    float acc = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) {
      const float* row = dy.data() + (i * channels + c) * width;
      for (std::int64_t w = 0; w < width; ++w) acc += row[w];
    }
    dbias[c] = acc;
  }
}

void layer_norm_forward(const BlockedMatrix& x, std::span<const float> gamma,
                        std::span<const float> beta, float eps, BlockedMatrix& y,
                        std::span<float> mean, std::span<float> rstd) {
  const OpScope scope(OpKind::eltwise);
  const BlockShape& s = x.shape;
  require(y.shape == s, "layer_norm_forward: output shape differs from input shape");
  require(eps > 0.0f, "layer_norm_forward: eps must be positive");
  same_size(gamma.size(), static_cast<std::size_t>(s.cols), "layer_norm_forward: gamma");
  same_size(beta.size(), static_cast<std::size_t>(s.cols), "layer_norm_forward: beta");
  same_size(mean.size(), static_cast<std::size_t>(s.rows), "layer_norm_forward: mean");
  same_size(rstd.size(), static_cast<std::size_t>(s.rows), "layer_norm_forward: rstd");
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < s.rows; ++r) {
    const std::int64_t rb = r / s.brow, i = r % s.brow;
    row_stats(x, r, eps, mean[r], rstd[r]);
    const float rs = rstd[r];
    for (std::int64_t c = 0; c < s.cols; ++c) {
      const std::int64_t at = i * s.bcol + c % s.bcol;
      const float xhat = (x.block(rb, c / s.bcol)[at] - mean[r]) * rs;
      y.block(rb, c / s.bcol)[at] = xhat * gamma[c] + beta[c];
    }
  }
}

void layer_norm_backward(const BlockedMatrix& x, const BlockedMatrix& dy,
                         std::span<const float> gamma, std::span<const float> mean,
                         std::span<const float> rstd, BlockedMatrix& dx, std::span<float> dgamma,
                         std::span<float> dbeta) {
  const OpScope scope(OpKind::eltwise);
  const BlockShape& s = x.shape;
  require(dy.shape == s && dx.shape == s, "layer_norm_backward: gradient shapes differ from input");
  same_size(gamma.size(), static_cast<std::size_t>(s.cols), "layer_norm_backward: gamma");
  same_size(dgamma.size(), static_cast<std::size_t>(s.cols), "layer_norm_backward: dgamma");
  same_size(dbeta.size(), static_cast<std::size_t>(s.cols), "layer_norm_backward: dbeta");
  same_size(mean.size(), static_cast<std::size_t>(s.rows), "layer_norm_backward: mean");
  same_size(rstd.size(), static_cast<std::size_t>(s.rows), "layer_norm_backward: rstd");
  auto at = [&s](std::int64_t r, std::int64_t c) {
    return s.block_offset(r / s.brow, c / s.bcol) + (r % s.brow) * s.bcol + c % s.bcol;
  };
  const float* xp = x.data.data();
  const float* dyp = dy.data.data();
  float* dxp = dx.data.data();
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < s.rows; ++r) {
    double sum_g = 0.0, sum_gx = 0.0;  // sums of dxhat and dxhat * xhat over the row
    for (std::int64_t c = 0; c < s.cols; ++c) {
      const double g = double(dyp[at(r, c)]) * gamma[c];
      sum_g += g;
      sum_gx += g * (xp[at(r, c)] - mean[r]) * rstd[r];
    }
    const double mg = sum_g / double(s.cols), mgx = sum_gx / double(s.cols);
    for (std::int64_t c = 0; c < s.cols; ++c) {
      const double xhat = (xp[at(r, c)] - mean[r]) * rstd[r];
      const double g = double(dyp[at(r, c)]) * gamma[c];
      dxp[at(r, c)] = static_cast<float>(rstd[r] * (g - mg - xhat * mgx));
    }
  }
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < s.cols; ++c) {
    double dg = 0.0, db = 0.0;
    for (std::int64_t r = 0; r < s.rows; ++r) {
      const double g = dyp[at(r, c)];
      dg += g * (xp[at(r, c)] - mean[r]) * rstd[r];
      db += g;
    }
    dgamma[c] = static_cast<float>(dg);
    dbeta[c] = static_cast<float>(db);
  }
}

void layer_norm_stats(const BlockedMatrix& x, float eps, std::span<float> mean,
                      std::span<float> rstd) {
  const OpScope scope(OpKind::eltwise);
  require(eps > 0.0f, "layer_norm_stats: eps must be positive");
  same_size(mean.size(), static_cast<std::size_t>(x.shape.rows), "layer_norm_stats: mean");
  same_size(rstd.size(), static_cast<std::size_t>(x.shape.rows), "layer_norm_stats: rstd");
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < x.shape.rows; ++r) row_stats(x, r, eps, mean[r], rstd[r]);
}

void add_into(std::span<const float> x, std::span<float> y) {
  const OpScope scope(OpKind::eltwise);
  same_size(x.size(), y.size(), "add_into");
  const float* in = x.data();
  float* out = y.data();
  const std::int64_t n = ssize(x);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] += in[i];
}

LayerCost add_cost(std::int64_t elems) { return {double(elems), 0, 0, 0}; }

LayerCost layer_norm_cost(std::int64_t rows, std::int64_t cols) {
  const double e = double(rows) * double(cols);
  return {8.0 * e, 10.0 * e, 4.0 * e,
          (rows * cols + 2 * rows) * std::int64_t(sizeof(float))};  // x, mean, rstd
}

bool dropout_keeps(const DropoutDesc& d, std::uint64_t index) {
  const std::uint64_t h = mix(mix(d.seed ^ 0x9e3779b97f4a7c15ull) + index);
  const float u = static_cast<float>(h >> 40) * 0x1.0p-24f;  // uniform in [0, 1)
  return u >= d.p;
}

void dropout_forward(const DropoutDesc& d, std::span<const float> x, std::span<float> y) {
  const OpScope scope(OpKind::eltwise);
  check_dropout(d);
  same_size(x.size(), y.size(), "dropout_forward");
  const float scale = 1.0f / (1.0f - d.p);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < ssize(x); ++i) y[i] = dropout_keeps(d, i) ? x[i] * scale : 0.0f;
}

void dropout_backward(const DropoutDesc& d, std::span<const float> dy, std::span<float> dx) {
  dropout_forward(d, dy, dx);  // the same mask and scale apply to the gradient
}

LayerCost dropout_cost(std::int64_t elems) {
  return {double(elems), double(elems), 0, std::int64_t(sizeof(std::uint64_t))};  // just the seed
}

std::int64_t Pool1dDesc::out_width() const {
  require(n > 0 && channels > 0 && width > 0, "pool1d: sizes must be positive");
  require(window > 0 && stride > 0, "pool1d: window and stride must be positive");
  require(window <= width, "pool1d: window " + std::to_string(window) + " exceeds width " +
                               std::to_string(width));
  return (width - window) / stride + 1;
}

void pool1d_forward(const Pool1dDesc& d, std::span<const float> x, std::span<float> y) {
  const OpScope scope(OpKind::eltwise);
  const std::int64_t q = d.out_width();
  check_ncw(x.size(), d.n, d.channels, d.width, "pool1d_forward: input");
  check_ncw(y.size(), d.n, d.channels, q, "pool1d_forward: output");
#pragma omp parallel for schedule(static)
  for (std::int64_t row = 0; row < d.n * d.channels; ++row) {
    const float* in = x.data() + row * d.width;
    for (std::int64_t o = 0; o < q; ++o) {
      const float* win = in + o * d.stride;
      float acc = win[0];
      for (std::int64_t t = 1; t < d.window; ++t) {
        acc = d.kind == PoolKind::max ? std::max(acc, win[t]) : acc + win[t];
      }
      y[row * q + o] = d.kind == PoolKind::max ? acc : acc / float(d.window);
    }
  }
}

void pool1d_backward(const Pool1dDesc& d, std::span<const float> x, std::span<const float> dy,
                     std::span<float> dx) {
  const OpScope scope(OpKind::eltwise);
  const std::int64_t q = d.out_width();
  check_ncw(x.size(), d.n, d.channels, d.width, "pool1d_backward: input");
  check_ncw(dy.size(), d.n, d.channels, q, "pool1d_backward: output gradient");
  check_ncw(dx.size(), d.n, d.channels, d.width, "pool1d_backward: input gradient");
  // Rows are independent and each is swept in order, so overlapping windows
  // accumulate deterministically.
#pragma omp parallel for schedule(static)
  for (std::int64_t row = 0; row < d.n * d.channels; ++row) {
    const float* in = x.data() + row * d.width;
    float* g = dx.data() + row * d.width;
    std::fill(g, g + d.width, 0.0f);
    for (std::int64_t o = 0; o < q; ++o) {
      const float grad = dy[row * q + o];
      const std::int64_t start = o * d.stride;
      if (d.kind == PoolKind::max) {
        std::int64_t best = start;
        for (std::int64_t t = 1; t < d.window; ++t) {
          if (in[start + t] > in[best]) best = start + t;
        }
        g[best] += grad;
      } else {
        for (std::int64_t t = 0; t < d.window; ++t) g[start + t] += grad / float(d.window);
      }
    }
  }
}

LayerCost pool1d_cost(const Pool1dDesc& d) {
  const double out = double(d.n) * double(d.channels) * double(d.out_width());
  return {out * double(d.window), out * double(d.window), 0,
          d.n * d.channels * d.width * std::int64_t(sizeof(float))};
}

}  // namespace rematch::kernels
