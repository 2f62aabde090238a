#pragma once
// Fully-connected layer y = act(x w + b) on blocked matrices (tensor.hpp):
//   x: n x c (blocks bn x bc), w: c x k (blocks bc x bk, column panels: the
//   blocks one output block reduces over are contiguous), y: n x k (blocks bn x bk).
// Every pass is one BlockedGemm (BRGEMM calls per output block reducing over
// the shared block index), after Georganas et al. 2019:
//   forward         y  = x   * w     (+ bias and ReLU fused on each finished block)
//   backward_data   dx = dy  * w^T   (each task transposes the chunk of w it reduces over)
//   backward_weights dw = x^T * dy   (each task transposes its chunk of x; db = column sums of dy)
// Backward passes take the gradient w.r.t. the pre-activation: with a fused
// ReLU, call activation_backward(y, dy) first, or call backward() for all of it.
//
// Narrow layers (four segments' weight gradients within 4 MiB and within a quarter of the input
// x or 1 MiB, batches of at least 4 blocks) run their backward as one sweep over the batch instead: the batch is cut into a fixed number of segments
// (a function of the shape only), and per row block of a segment one pass masks dy by the ReLU
// into small per-thread scratch and sums it for the bias gradient, dx = dy w^T is written and x^T dy
// accumulated into the segment's weight gradient with x read in place (no transposed copy of x or
// dy; on AVX-512 builds a layer whose weight gradient is one 64-input block takes these products on
// the register tile of tile.hpp, bitwise the same), while the next row block is fetched. The
// segments' gradients are then summed in segment order, so the results are the same for any
// thread count. backward_weights() alone takes the same sweep.
//
// With Precision::bf16 the operands are rounded to bf16 (right operand VNNI-packed)
// right before each GEMM; accumulation and outputs stay fp32.
//
// An Fc object owns transpose (and bf16) scratch, so one object must not run two passes
// at the same time; each pass parallelises internally with OpenMP.
#include <cstdint>
#include <span>

#include "kernels/brgemm.hpp"
#include "kernels/cost.hpp"
#include "kernels/eltwise.hpp"
#include "kernels/tensor.hpp"

namespace rematch::kernels {

struct FcDesc {
  std::int64_t n = 0, c = 0, k = 0;        // batch, input and output features
  // Preferred blocks, shrunk for small sizes; bn is halved when that pads the batch less.
  std::int64_t bn = 128, bc = 64, bk = 64;
  bool bias = true;
  Activation activation = Activation::none;
  Precision precision = Precision::fp32;
};

// The descriptor with the block sizes an Fc of it uses (validated): x is n x c in bn x bc blocks,
// y n x k in bn x bk blocks. Features blocked this way chain from one Fc into the next.
FcDesc fc_blocking(const FcDesc& d);

// Whether an Fc of `d` runs its backward as the narrow one-sweep pass: what Fc(d).sweeps()
// answers, without building the layer's kernels.
bool fc_sweeps(const FcDesc& d);

class Fc {
 public:
  explicit Fc(const FcDesc& d);  // validates and JITs all kernels

  const FcDesc& desc() const { return d_; }
  const BlockShape& x_shape() const { return x_; }
  const BlockShape& w_shape() const { return w_; }
  const BlockShape& y_shape() const { return y_; }

  // bias: k values, or empty when desc().bias is false.
  void forward(const BlockedMatrix& x, const BlockedMatrix& w, std::span<const float> bias,
               BlockedMatrix& y);
  void activation_backward(const BlockedMatrix& y, BlockedMatrix& dy) const;
  void backward_data(const BlockedMatrix& dy, const BlockedMatrix& w, BlockedMatrix& dx);
  // dbias: k values, or empty when desc().bias is false.
  void backward_weights(const BlockedMatrix& x, const BlockedMatrix& dy, BlockedMatrix& dw,
                        std::span<float> dbias);
  // The whole backward from the gradient w.r.t. the output y: the ReLU's backward (when fused;
  // its mask from y), the bias gradient, dx (unless null) and dw. dy is left unchanged on the
  // narrow sweep and may be overwritten otherwise.
  void backward(const BlockedMatrix& x, const BlockedMatrix& y, BlockedMatrix& dy,
                const BlockedMatrix& w, BlockedMatrix* dx, BlockedMatrix& dw,
                std::span<float> dbias);
  // Whether backward() and backward_weights() take the one-sweep path (see above).
  bool sweeps() const { return sweep_.segments > 0; }

  // Saved for backward: x, plus y when a ReLU is fused (its mask comes from y).
  LayerCost cost() const;

  // With an allocator, scratch (transposes, bf16 copies) is taken from it for the duration of
  // each pass and given back before the pass returns, so a budgeted arena counts it as that
  // pass's transient memory. Without one (the default) scratch stays cached on the heap.
  // Scratch cached from an earlier allocator is dropped, so the new one counts all of it.
  void set_scratch_allocator(Allocator* allocator) {
    scratch_allocator_ = allocator;
    release_scratch();
  }

 private:
  enum Pass { kForward, kBackwardData, kBackwardWeights };
  void gemm(Pass pass, const BlockedMatrix& a, const BlockedMatrix& b, BlockedMatrix& c,
            const BlockedGemm::Epilogue& epilogue = {});
  Allocator& scratch() const;
  // Per-thread panels for a pass's transposed operand chunks (BlockedGemm::run_*_transposed).
  std::span<float> panel_scratch(Pass pass);
  // m transposed whole into `out` (wt_ or xt_, allocated on first use): bf16 passes, small weights, the sweep.
  const BlockedMatrix& whole_transpose(const BlockedMatrix& m, BlockedMatrix& out);
  void release_scratch();
  void end_pass();
  // The one-sweep backward; y and dx may be null (no ReLU mask, no input gradient).
  void sweep(const BlockedMatrix& x, const BlockedMatrix* y, const BlockedMatrix& dy,
             const BlockedMatrix* w, BlockedMatrix* dx, BlockedMatrix& dw, std::span<float> dbias);

  // The sweep's plan (segments == 0: not narrow, the three-pass path runs).
  struct Sweep {
    std::int64_t segments = 0, segment_blocks = 0;  // batch segments, row blocks per segment
    // A row block's dw products run in two parts of its rows, [0, dw_split) and [dw_split, bn)
    // (the second empty when bn is 1): dw_start for the first part of a segment's first row block,
    // dw_accumulate[part] for the others.
    std::int64_t dw_split = 0;
    // The dw products on the register tile (tile.hpp) instead of LIBXSMM: see sweep_tiles_dw().
    bool tile_dw = false;
    Brgemm dx, dw_start, dw_accumulate[2];
  };

  FcDesc d_;
  BlockShape x_, w_, y_;
  BlockedGemm gemm_[3];     // indexed by Pass
  Sweep sweep_;
  BlockedMatrix wt_, xt_;   // whole transposes (bf16 passes, the sweep), allocated on first use
  AlignedBuffer<float> panels_;  // fp32 passes' transposed chunks, allocated on first use
  BlockedBf16 bf16_[3][2];  // bf16 copies of each pass's operands, allocated on first use
  Allocator* scratch_allocator_ = nullptr;
};

}  // namespace rematch::kernels
