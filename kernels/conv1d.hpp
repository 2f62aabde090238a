#pragma once
// 1D dilated convolution (cross-correlation, stride 1) on plain NCW tensors,
// after Chaudhary et al. 2021: the width is LIBXSMM's m dimension, and the
// filter taps are the batch of one BRGEMM. For output positions q..q+bq of
// sample n and a block of output channels,
//   y[n][k][q..] = sum_s W_s[k][:] * x_padded[n][:][q + s*dilation ..]
// where the A operand of tap s is the input shifted by s*dilation elements, so
// the stride-based BRGEMM walks the taps without any im2col copy.
//
//   x  : n x c x width         (row-major NCW)
//   w  : taps x k x c          (tap-major; weights_from_kcs converts PyTorch's k x c x taps)
//   y  : n x k x out_width()
//   backward_data   = the same tap BRGEMM on dy padded by (taps-1)*dilation,
//                     with the taps flipped and w transposed per tap
//   backward_weights: for each tap and block of output channels, GEMMs over
//                     chunks of width (sample by sample, accumulating in order)
//                     on channels-last copies of the padded input; the bias
//                     gradient is summed from the same packed chunks of dy.
//
// With a fused ReLU (Conv1dDesc::activation), forward applies bias and ReLU to each output
// tile while it is in cache, and both backward passes take dy w.r.t. the ReLU's output plus
// that output y, and apply the mask (y > 0) while packing dy: no separate pass over dy
// (backward() runs both and, where it can, masks dy once, in place). In a chain of such layers
// backward() can also move the mask across a layer boundary (ReluLinks): the layer after a
// fused ReLU writes its dx already masked by its input x > 0 (x is that ReLU's output) in the
// backward-data epilogue, while each dx tile is in cache, and the layer with the ReLU then reads
// that dy without its y.
//
// A Conv1d object owns padding/transposition scratch: one pass at a time per object.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "kernels/cost.hpp"
#include "kernels/eltwise.hpp"  // Activation
#include "kernels/tensor.hpp"

namespace rematch::kernels {

enum class Padding { same, valid };

struct Conv1dDesc {
  std::int64_t n = 0, c = 0, k = 0;  // samples, input and output channels
  std::int64_t width = 0;            // input width
  std::int64_t taps = 1, dilation = 1;
  Padding padding = Padding::same;   // same: out_width == width, extra zero on the right if odd
  bool bias = true;
  std::int64_t bq = 64;  // output positions per BRGEMM call (vector dimension)
  std::int64_t bk = 64;  // output channels per BRGEMM call
  Activation activation = Activation::none;  // relu: y = max(0, conv + bias), fused

  std::int64_t span() const { return (taps - 1) * dilation; }  // receptive field minus one
  std::int64_t pad_left() const { return padding == Padding::same ? span() / 2 : 0; }
  std::int64_t out_width() const { return padding == Padding::same ? width : width - span(); }
};

// Where Conv1d::backward applies the ReLU masks next to it, in a chain of layers with fused ReLUs.
struct ReluLinks {
  // dy is already the gradient w.r.t. the fused ReLU's input (the layer after applied the mask):
  // y is not read and must be empty.
  bool dy_masked = false;
  // x is the output of a ReLU (the previous layer's fused one): dx is written masked by x > 0,
  // i.e. as the gradient w.r.t. that ReLU's input.
  bool mask_dx = false;
};

// PyTorch order [k][c][taps] -> tap-major [taps][k][c].
void weights_from_kcs(std::span<const float> kcs, std::int64_t k, std::int64_t c,
                      std::int64_t taps, std::span<float> tkc);

class Conv1d {
 public:
  explicit Conv1d(const Conv1dDesc& d);  // validates and JITs all kernels
  ~Conv1d();
  Conv1d(Conv1d&&) noexcept;
  Conv1d& operator=(Conv1d&&) noexcept;

  const Conv1dDesc& desc() const { return d_; }

  void forward(std::span<const float> x, std::span<const float> w, std::span<const float> bias,
               std::span<float> y);
  // y: the forward output, required with a fused ReLU (dy is then the gradient w.r.t. it) and
  // empty without one.
  void backward_data(std::span<const float> dy, std::span<const float> w, std::span<float> dx,
                     std::span<const float> y = {});
  void backward_weights(std::span<const float> x, std::span<const float> dy, std::span<float> dw,
                        std::span<float> dbias, std::span<const float> y = {});

  // Both backward passes from dy, the gradient w.r.t. the output y (y empty without a fused
  // ReLU, or with links.dy_masked), bitwise as backward_data (skipped when dx is empty: the input
  // gradient is not needed) and backward_weights give them, followed by the mask of
  // links.mask_dx on dx. With weights of at most 256 KiB and backward-weights' chunks as wide as
  // backward-data's tasks, both run in one pass: each task computes dx for the positions of the
  // chunk whose weight gradient it has just added, while that chunk of dy and x is in cache, so
  // dy and x are read from memory once. Otherwise dy may be overwritten: with a fused ReLU, y
  // and such weights, backward-weights masks each chunk of dy in place, once, and backward-data
  // packs the masked dy without reading y.
  void backward(std::span<const float> x, std::span<const float> y, std::span<float> dy,
                std::span<const float> w, std::span<float> dx, std::span<float> dw,
                std::span<float> dbias, ReluLinks links = {});

  LayerCost cost() const;  // saved for backward: x, and y with a fused ReLU

  // With an allocator, scratch (padded and transposed copies) is taken from it for the duration
  // of each pass and given back before the pass returns, so a budgeted arena counts it as that
  // pass's transient memory. Without one (the default) scratch stays cached on the heap.
  // Scratch cached from an earlier allocator is dropped, so the new one counts all of it.
  void set_scratch_allocator(Allocator* allocator);

 private:
  struct Plans;
  const float* relu_mask(std::span<const float> y, const char* pass) const;
  void check_data_sizes(std::span<const float> dy, std::span<const float> w, std::span<float> dx) const;
  void check_weights_sizes(std::span<const float> x, std::span<const float> dy, std::span<float> dw,
                           std::span<float> dbias) const;
  // The passes after their checks; weights_pass masks dy in place when `in_place` is dy, and calls
  // after_chunk(sample, chunk) in the task that has just finished that chunk (fused decomposition
  // only, see Plans). data_pass masks dx by dx_mask > 0 when dx_mask is given.
  void data_pass(const float* dy, std::span<const float> w, std::span<float> dx, const float* mask,
                 const float* dx_mask = nullptr);
  void weights_pass(const float* x, const float* dy, const float* mask, std::span<float> dw,
                    std::span<float> dbias, float* in_place,
                    const std::function<void(std::int64_t, std::int64_t)>* after_chunk = nullptr);
  // Both passes in one (backward-data's tasks run inside backward-weights', see Plans), with the
  // masks of data_pass and weights_pass; dy is not written.
  void both_passes(const float* x, const float* dy, const float* mask, std::span<const float> w,
                   std::span<float> dx, std::span<float> dw, std::span<float> dbias,
                   const float* dx_mask);
  // w flipped and transposed per tap for backward-data, in scratch.
  const float* flipped_weights(std::span<const float> w);
  Conv1dDesc d_;
  std::unique_ptr<Plans> p_;
};

}  // namespace rematch::kernels
