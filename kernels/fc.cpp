#include "kernels/fc.hpp"

#include <string>

#include "kernels/error.hpp"

namespace rematch::kernels {
namespace {

std::int64_t padded(std::int64_t dim, std::int64_t block) { return (dim + block - 1) / block * block; }

}  // namespace

FcDesc fc_blocking(const FcDesc& d) {
  require(d.n > 0 && d.c > 0 && d.k > 0,
          "Fc: n, c, k must be positive, got " + std::to_string(d.n) + ", " +
              std::to_string(d.c) + ", " + std::to_string(d.k));
  require(d.bn > 0 && d.bc > 0 && d.bk > 0, "Fc: block sizes must be positive");
  require(d.precision == Precision::fp32 || bf16_supported(),
          "Fc: bf16 requested but this CPU has no AVX512-BF16");
  // bf16 VNNI packing pairs rows of each right operand (w, w^T, dy): blocks must be even.
  const std::int64_t mult = d.precision == Precision::bf16 ? 2 : 1;
  FcDesc out = d;
  out.bn = choose_block(d.n, d.bn + d.bn % mult, mult);
  // Padding rows cost work on every pass: halve the batch block when that pads less.
  const std::int64_t half = out.bn / 2;
  if (half % mult == 0 && half > 0 && padded(d.n, half) < padded(d.n, out.bn)) out.bn = half;
  out.bc = choose_block(d.c, d.bc + d.bc % mult, mult);
  out.bk = choose_block(d.k, d.bk + d.bk % mult, mult);
  return out;
}

Fc::Fc(const FcDesc& desc)
    : d_(fc_blocking(desc)),
      x_{d_.n, d_.c, d_.bn, d_.bc, false},
      w_{d_.c, d_.k, d_.bc, d_.bk, true},
      y_{d_.n, d_.k, d_.bn, d_.bk, false},
      gemm_{BlockedGemm(x_, w_, d_.precision), BlockedGemm(y_, transposed(w_), d_.precision),
            BlockedGemm(transposed(x_), y_, d_.precision, w_.column_panels)} {}

void Fc::gemm(Pass pass, const BlockedMatrix& a, const BlockedMatrix& b, BlockedMatrix& c,
              const BlockedGemm::Epilogue& epilogue) {
  if (d_.precision == Precision::fp32) {
    gemm_[pass].run(a, b, c, epilogue);
    return;
  }
  to_bf16_into(a, false, bf16_[pass][0], scratch());
  to_bf16_into(b, true, bf16_[pass][1], scratch());
  gemm_[pass].run(bf16_[pass][0], bf16_[pass][1], c, epilogue);
}

Allocator& Fc::scratch() const {
  return scratch_allocator_ != nullptr ? *scratch_allocator_ : heap_allocator();
}

void Fc::release_scratch() {
  wt_ = {};
  xt_ = {};
  for (auto& pass : bf16_) {
    for (auto& operand : pass) operand = {};
  }
}

void Fc::end_pass() {
  if (scratch_allocator_ != nullptr) release_scratch();
}

void Fc::forward(const BlockedMatrix& x, const BlockedMatrix& w, std::span<const float> bias,
                 BlockedMatrix& y) {
  require(x.shape == x_, "Fc::forward: x shape differs from x_shape()");
  require(w.shape == w_, "Fc::forward: w shape differs from w_shape()");
  require(y.shape == y_, "Fc::forward: y shape differs from y_shape()");
  require(bias.size() == (d_.bias ? std::size_t(d_.k) : 0),
          "Fc::forward: bias must have k values when enabled and none otherwise");
  const float* b = d_.bias ? bias.data() : nullptr;
  const Activation act = d_.activation;
  const BlockShape ys = y_;
  gemm(kForward, x, w, y, [b, act, ys](float* blk, std::int64_t rb, std::int64_t cb) {
    bias_activation_block(blk, ys, rb, cb, b, act);
  });
  end_pass();
}

void Fc::activation_backward(const BlockedMatrix& y, BlockedMatrix& dy) const {
  require(y.shape == y_ && dy.shape == y_, "Fc::activation_backward: shapes differ from y_shape()");
  if (d_.activation == Activation::relu) relu_backward(y.data.span(), dy.data.span(), dy.data.span());
}

void Fc::backward_data(const BlockedMatrix& dy, const BlockedMatrix& w, BlockedMatrix& dx) {
  require(dy.shape == y_, "Fc::backward_data: dy shape differs from y_shape()");
  require(w.shape == w_, "Fc::backward_data: w shape differs from w_shape()");
  require(dx.shape == x_, "Fc::backward_data: dx shape differs from x_shape()");
  if (wt_.data.size() == 0) wt_ = BlockedMatrix(transposed(w_), false, scratch());
  transpose_into(w, wt_);
  gemm(kBackwardData, dy, wt_, dx);
  end_pass();
}

void Fc::backward_weights(const BlockedMatrix& x, const BlockedMatrix& dy, BlockedMatrix& dw,
                          std::span<float> dbias) {
  require(x.shape == x_, "Fc::backward_weights: x shape differs from x_shape()");
  require(dy.shape == y_, "Fc::backward_weights: dy shape differs from y_shape()");
  require(dw.shape == w_, "Fc::backward_weights: dw shape differs from w_shape()");
  require(dbias.size() == (d_.bias ? std::size_t(d_.k) : 0),
          "Fc::backward_weights: dbias must have k values when enabled and none otherwise");
  if (xt_.data.size() == 0) xt_ = BlockedMatrix(transposed(x_), false, scratch());
  transpose_into(x, xt_);
  gemm(kBackwardWeights, xt_, dy, dw);
  end_pass();
  if (d_.bias) bias_grad(dy, dbias);
}

LayerCost Fc::cost() const {
  const double mnk = 2.0 * double(d_.n) * double(d_.c) * double(d_.k);
  const double out = double(d_.n) * double(d_.k);
  const double epilogue = (d_.bias ? out : 0.0) + (d_.activation == Activation::relu ? out : 0.0);
  LayerCost c;
  c.fwd_flops = mnk + epilogue;
  c.bwd_data_flops = mnk + (d_.activation == Activation::relu ? out : 0.0);
  c.bwd_weights_flops = mnk + (d_.bias ? out : 0.0);
  c.saved_bytes = (x_.elems() + (d_.activation == Activation::relu ? y_.elems() : 0)) *
                  std::int64_t(sizeof(float));
  return c;
}

}  // namespace rematch::kernels
