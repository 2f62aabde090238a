#pragma once
// Element-wise and normalisation layers. They are memory-bound, so they are
// written as simple OpenMP loops; every output element (and every reduced
// parameter gradient) is computed by one thread in a fixed order, which makes
// them bitwise deterministic for any thread count.
//
// Pointwise ops work on any layout, including blocked buffers with zero padding,
// because f(0) = 0 for all of them (ReLU, GELU, dropout): padding stays zero.
// Gradient spans may alias the incoming gradient (in-place backward).
#include <cstdint>
#include <span>

#include "kernels/cost.hpp"
#include "kernels/tensor.hpp"

namespace rematch::kernels {

enum class Activation { none, relu };

// ReLU; backward needs only the forward output y (saved instead of the input).
void relu_forward(std::span<const float> x, std::span<float> y);
void relu_backward(std::span<const float> y, std::span<const float> dy, std::span<float> dx);
LayerCost relu_cost(std::int64_t elems);

// GELU, tanh approximation; backward needs the forward input x.
void gelu_forward(std::span<const float> x, std::span<float> y);
void gelu_backward(std::span<const float> x, std::span<const float> dy, std::span<float> dx);
LayerCost gelu_cost(std::int64_t elems);

// Bias over the columns of a blocked matrix (logical rows only, padding untouched).
void bias_add(BlockedMatrix& y, std::span<const float> bias);
void bias_grad(const BlockedMatrix& dy, std::span<float> dbias);
// The same on one block, with an optional ReLU: the FC forward epilogue.
void bias_activation_block(float* block, const BlockShape& s, std::int64_t rb, std::int64_t cb,
                           const float* bias, Activation act);

// sum_q row[q] in a fixed order that vectorises: 16 interleaved partial sums, then those in
// order (a single running sum is one dependent add, ~4 cycles, per element). Bias sums and
// average pooling over the width of NCW rows.
inline float row_sum(const float* row, std::int64_t len) {
  constexpr int kLanes = 16;
  float lanes[kLanes] = {};
  std::int64_t q = 0;
  for (; q + kLanes <= len; q += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += row[q + l];
  }
  for (int l = 0; q < len; ++q, ++l) lanes[l] += row[q];
  float sum = 0.0f;
  for (float l : lanes) sum += l;
  return sum;
}

// Per-channel bias on an NCW tensor of n x channels x width.
void bias_add_ncw(std::span<float> y, std::int64_t n, std::int64_t channels, std::int64_t width,
                  std::span<const float> bias);
void bias_grad_ncw(std::span<const float> dy, std::int64_t n, std::int64_t channels,
                   std::int64_t width, std::span<float> dbias);

// Layer norm over the columns (features) of each logical row of a blocked matrix.
// mean and rstd (one per row) are written by forward and read by backward.
void layer_norm_forward(const BlockedMatrix& x, std::span<const float> gamma,
                        std::span<const float> beta, float eps, BlockedMatrix& y,
                        std::span<float> mean, std::span<float> rstd);
void layer_norm_backward(const BlockedMatrix& x, const BlockedMatrix& dy,
                         std::span<const float> gamma, std::span<const float> mean,
                         std::span<const float> rstd, BlockedMatrix& dx, std::span<float> dgamma,
                         std::span<float> dbeta);
// The per-row mean and rstd layer_norm_forward writes, alone: a backward that keeps only x
// recomputes them.
void layer_norm_stats(const BlockedMatrix& x, float eps, std::span<float> mean, std::span<float> rstd);
LayerCost layer_norm_cost(std::int64_t rows, std::int64_t cols);
LayerCost add_cost(std::int64_t elems);

// y += x (the skip connection of a residual block).
void add_into(std::span<const float> x, std::span<float> y);
// Dropout with a counter-based mask: element i is kept iff hash(seed, i) >= p,
// so the mask depends only on (seed, p, i). Backward and recomputation regenerate
// it instead of storing it, and it does not depend on the thread count.
struct DropoutDesc {
  float p = 0.5f;  // drop probability in [0, 1)
  std::uint64_t seed = 0;
};
void dropout_forward(const DropoutDesc& d, std::span<const float> x, std::span<float> y);
void dropout_backward(const DropoutDesc& d, std::span<const float> dy, std::span<float> dx);
bool dropout_keeps(const DropoutDesc& d, std::uint64_t index);
LayerCost dropout_cost(std::int64_t elems);

// 1D pooling over the width of an NCW tensor, windows without padding.
enum class PoolKind { max, avg };
struct Pool1dDesc {
  std::int64_t n = 0, channels = 0, width = 0;
  std::int64_t window = 2, stride = 2;
  PoolKind kind = PoolKind::max;
  std::int64_t out_width() const;  // throws on a bad descriptor
};
void pool1d_forward(const Pool1dDesc& d, std::span<const float> x, std::span<float> y);
// Max pooling re-finds the first maximum of each window in x; avg ignores x.
void pool1d_backward(const Pool1dDesc& d, std::span<const float> x, std::span<const float> dy,
                     std::span<float> dx);
LayerCost pool1d_cost(const Pool1dDesc& d);

}  // namespace rematch::kernels
