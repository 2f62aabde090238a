#include "autodiff/stored.hpp"

#include <stdexcept>

#include "kernels/bf16.hpp"

namespace rematch::autodiff {
namespace {

Tensor widened(const kernels::BlockedBf16& h, kernels::Allocator& scratch) {
  Tensor t(h.shape, false, scratch, kernels::Uninitialised{});
  kernels::widen(h.data.span(), t.data.span());
  return t;
}

}  // namespace

std::string to_string(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

Precision parse_precision(std::string_view name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw std::invalid_argument("activation precision '" + std::string(name) +
                              "': expected fp32 or bf16");
}

std::size_t stored_bytes(const BlockShape& shape, Precision precision) {
  return kernels::aligned_bytes(std::size_t(shape.elems()),
                                precision == Precision::bf16 ? sizeof(kernels::bfloat16) : sizeof(float));
}

const Tensor& Fp32View::get() const {
  static const Tensor empty;
  if (in_place_ != nullptr) return *in_place_;
  return owned_.data.size() != 0 ? owned_ : empty;
}

Stored::Stored(Tensor t, Precision precision, kernels::Allocator& allocator) {
  if (precision == Precision::fp32 || t.data.size() == 0) {
    fp32_ = std::move(t);
    return;
  }
  *this = bf16_copy(t, allocator);
}

Stored Stored::bf16_copy(const Tensor& t, kernels::Allocator& allocator) {
  Stored s;
  s.bf16_ = kernels::BlockedBf16(t.shape, false, allocator, kernels::Uninitialised{});
  kernels::narrow(t.data.span(), s.bf16_.data.span());
  return s;
}

Fp32View Stored::view(kernels::Allocator& scratch) const {
  if (bf16_.data.size() != 0) return Fp32View(widened(bf16_, scratch));
  return Fp32View(&fp32_);
}

Tensor Stored::take(kernels::Allocator& scratch) && {
  if (bf16_.data.size() == 0) return std::move(fp32_);
  Tensor t = widened(bf16_, scratch);
  bf16_ = {};
  return t;
}

}  // namespace rematch::autodiff
