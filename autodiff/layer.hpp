// A layer of a stage: one kernel (or a few fused), forward and backward, over tensors whose
// storage the caller provides. Every tensor is a kernels::BlockedMatrix: FC activations in
// their blocked layout, NCW tensors as one plain row-major block of n x (channels * width).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernels/cost.hpp"
#include "kernels/tensor.hpp"

namespace rematch::autodiff {

using Tensor = kernels::BlockedMatrix;
using kernels::BlockShape;

// A plain row-major rows x cols matrix as a single block.
BlockShape plain_shape(std::int64_t rows, std::int64_t cols);

// splitmix64: a counter-based generator step, so a value depends only on (seed, index); the
// weight initialisation and the dropout keys are drawn with it.
std::uint64_t splitmix(std::uint64_t z);

class Layer {
 public:
  virtual ~Layer() = default;

  virtual std::string name() const = 0;
  virtual const BlockShape& input_shape() const = 0;
  virtual const BlockShape& output_shape() const = 0;
  virtual kernels::LayerCost cost() const = 0;

  // y = f(x); y has output_shape() and is owned by the caller. Its storage arrives
  // uninitialised (a step's buffers skip the zero-fill): forward writes every element, the
  // blocked layout's padding included, as zeros.
  virtual void forward(const Tensor& x, Tensor& y) = 0;
  // Given x, y = f(x) and dy, writes dx (unless null: the input gradient is not needed) and the
  // parameter gradients `grads` (in parameters() order, overwritten, not accumulated). dx arrives
  // uninitialised, as y does in forward, and is written whole, zero padding included. dy may be
  // overwritten.
  virtual void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                        std::span<Tensor> grads) = 0;
  // Whether backward reads x, and y: an operand it does not read may be passed empty (a stage
  // kept in bf16 widens only what its layers read).
  virtual bool backward_reads_input() const { return true; }
  virtual bool backward_reads_output() const { return true; }

  // A ReLU's backward moved into the layer after it: a layer whose output is a ReLU's (a fused
  // one) may take dy already masked by y > 0, applied by the next layer as it writes the dx it
  // writes anyway (whose x is that y) instead of in a pass over dy and y of its own. The encoder
  // links such neighbours once, when it is built; unlinked layers keep their own masks.
  virtual bool output_is_relu() const { return false; }
  // From now on, backward writes dx masked by x > 0; false (and nothing changes) if it cannot.
  virtual bool mask_input_gradient() { return false; }
  // From now on, dy arrives masked by y > 0 (only called when output_is_relu()).
  virtual void take_masked_output_gradient() {}

  // The layer's trainable tensors, the weight first, then the bias if any (a block: its inner
  // layers' tensors in layer order); empty for parameter-free layers.
  virtual std::vector<Tensor*> parameters() { return {}; }
  // Draws the layer's initial parameters from the counter-based stream (advancing it): He
  // uniform weights (fan_in()), zero biases, unless the layer knows better (layer norm: 1, 0).
  virtual void initialize(std::uint64_t& stream);
  // The training step the next passes belong to, or kInference (layers act as at evaluation:
  // dropout passes its input through). Dropout masks are keyed on it, so a recomputed forward
  // of the same step reproduces the same mask.
  static constexpr std::int64_t kInference = -1;
  virtual void set_step(std::int64_t) {}
  // Inputs each output reads (the weight initialisation's scale).
  virtual std::int64_t fan_in() const { return 0; }
  // Where the kernels take their per-pass scratch (see kernels::Fc::set_scratch_allocator).
  virtual void set_scratch_allocator(kernels::Allocator*) {}
};

}  // namespace rematch::autodiff
