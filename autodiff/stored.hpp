// Tensors as they are kept between the ops of a step: the stage boundaries x_i and their
// gradients y_i, and what a taped forward keeps for its backward (xbar: the stage output and
// the tape). They are kept in fp32, or in bfloat16 at half the bytes (`--activations bf16`);
// layers always compute in fp32, reading bf16 values widened into scratch memory.
//
// A stored value is exactly what every later reader sees: a stage's input is the rounded
// output of the previous stage whether it was kept (x_i, xbar_i) or recomputed, which is why
// gradients are bitwise equal under every schedule (docs/runtime.md, "Activation precision").
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "autodiff/layer.hpp"

namespace rematch::autodiff {

enum class Precision { fp32, bf16 };

std::string to_string(Precision p);
// "fp32" or "bf16"; anything else throws std::invalid_argument naming the value.
Precision parse_precision(std::string_view name);
// The bytes a tensor of `shape` takes when stored in `precision` (whole cache lines).
std::size_t stored_bytes(const BlockShape& shape, Precision precision);

// A stored tensor read as fp32 for the length of a layer call: the stored fp32 tensor itself,
// or a tensor the view owns (a widened copy of a bf16 one, or a stored tensor taken), freed
// with the view. A default view reads as an empty tensor: for the operands a layer's backward
// does not read.
class Fp32View {
 public:
  Fp32View() = default;
  explicit Fp32View(const Tensor* in_place) : in_place_(in_place) {}
  explicit Fp32View(Tensor owned) : owned_(std::move(owned)) {}
  const Tensor& get() const;

 private:
  const Tensor* in_place_ = nullptr;
  Tensor owned_;
};

class Stored {
 public:
  Stored() = default;
  // Keeps t in `precision`: fp32 keeps t itself; bf16 rounds it to nearest even into a buffer
  // of half the size from `allocator` and frees t.
  Stored(Tensor t, Precision precision, kernels::Allocator& allocator);
  // A bf16 copy of t's values (t stays): a taped forward keeps its inner outputs this way
  // while the next layer reads the fp32 original.
  static Stored bf16_copy(const Tensor& t, kernels::Allocator& allocator);

  bool held() const { return fp32_.data.size() != 0 || bf16_.data.size() != 0; }
  Precision precision() const { return bf16_.data.size() != 0 ? Precision::bf16 : Precision::fp32; }
  const BlockShape& shape() const { return bf16_.data.size() != 0 ? bf16_.shape : fp32_.shape; }
  std::size_t bytes() const { return fp32_.data.bytes() + bf16_.data.bytes(); }

  // The values in fp32 for a layer to read; bf16 ones are widened into `scratch`.
  Fp32View view(kernels::Allocator& scratch) const;
  // The values as an fp32 tensor the caller owns and may overwrite: an fp32 tensor is moved
  // out, a bf16 one widened into `scratch` and then freed.
  Tensor take(kernels::Allocator& scratch) &&;

 private:
  Tensor fp32_;
  kernels::BlockedBf16 bf16_;
};

}  // namespace rematch::autodiff
