#include "autodiff/layers.hpp"

#include <string>

namespace rematch::autodiff {

BlockShape plain_shape(std::int64_t rows, std::int64_t cols) { return {rows, cols, rows, cols, false}; }

namespace {
std::span<const float> values(const Tensor& t) { return t.data.span(); }
std::span<float> values(Tensor& t) { return t.data.span(); }
}  // namespace

FcLayer::FcLayer(const kernels::FcDesc& desc, kernels::Allocator& parameters) : fc_(desc) {
  params_.emplace_back(fc_.w_shape(), false, parameters);
  if (desc.bias) params_.emplace_back(plain_shape(1, desc.k), false, parameters);
}

std::string FcLayer::name() const {
  const auto& d = fc_.desc();
  return "fc " + std::to_string(d.c) + "->" + std::to_string(d.k) +
         (d.activation == kernels::Activation::relu ? " relu" : "");
}

void FcLayer::forward(const Tensor& x, Tensor& y) {
  fc_.forward(x, params_[0], fc_.desc().bias ? values(params_[1]) : std::span<const float>{}, y);
}

void FcLayer::backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                       std::span<Tensor> grads) {
  fc_.activation_backward(y, dy);
  if (dx != nullptr) fc_.backward_data(dy, params_[0], *dx);
  fc_.backward_weights(x, dy, grads[0], fc_.desc().bias ? values(grads[1]) : std::span<float>{});
}

Conv1dLayer::Conv1dLayer(const kernels::Conv1dDesc& desc, kernels::Allocator& parameters)
    : conv_(desc),
      in_(plain_shape(desc.n, desc.c * desc.width)),
      out_(plain_shape(desc.n, desc.k * desc.out_width())) {
  params_.emplace_back(plain_shape(desc.taps * desc.k, desc.c), false, parameters);
  if (desc.bias) params_.emplace_back(plain_shape(1, desc.k), false, parameters);
}

std::string Conv1dLayer::name() const {
  const auto& d = conv_.desc();
  return "conv1d " + std::to_string(d.c) + "->" + std::to_string(d.k) + " taps " +
         std::to_string(d.taps) + " dilation " + std::to_string(d.dilation);
}

void Conv1dLayer::forward(const Tensor& x, Tensor& y) {
  conv_.forward(values(x), values(params_[0]),
                conv_.desc().bias ? values(params_[1]) : std::span<const float>{}, values(y));
}

void Conv1dLayer::backward(const Tensor& x, const Tensor&, Tensor& dy, Tensor* dx,
                           std::span<Tensor> grads) {
  if (dx != nullptr) conv_.backward_data(values(dy), values(params_[0]), values(*dx));
  conv_.backward_weights(values(x), values(dy), values(grads[0]),
                         conv_.desc().bias ? values(grads[1]) : std::span<float>{});
}

kernels::LayerCost ReluLayer::cost() const {
  return kernels::relu_cost(shape_.elems());
}

void ReluLayer::forward(const Tensor& x, Tensor& y) { kernels::relu_forward(values(x), values(y)); }

void ReluLayer::backward(const Tensor&, const Tensor& y, Tensor& dy, Tensor* dx, std::span<Tensor>) {
  if (dx != nullptr) kernels::relu_backward(values(y), values(dy), values(*dx));
}

Pool1dLayer::Pool1dLayer(const kernels::Pool1dDesc& desc)
    : desc_(desc),
      in_(plain_shape(desc.n, desc.channels * desc.width)),
      out_(plain_shape(desc.n, desc.channels * desc.out_width())) {}

std::string Pool1dLayer::name() const {
  return std::string(desc_.kind == kernels::PoolKind::max ? "maxpool " : "avgpool ") +
         std::to_string(desc_.window) + "/" + std::to_string(desc_.stride);
}

void Pool1dLayer::forward(const Tensor& x, Tensor& y) {
  kernels::pool1d_forward(desc_, values(x), values(y));
}

void Pool1dLayer::backward(const Tensor& x, const Tensor&, Tensor& dy, Tensor* dx,
                           std::span<Tensor>) {
  if (dx != nullptr) kernels::pool1d_backward(desc_, values(x), values(dy), values(*dx));
}

ToBlockedLayer::ToBlockedLayer(const BlockShape& blocked)
    : plain_(plain_shape(blocked.rows, blocked.cols)), blocked_(blocked) {}

void ToBlockedLayer::forward(const Tensor& x, Tensor& y) { kernels::pack_into(values(x), y); }

void ToBlockedLayer::backward(const Tensor&, const Tensor&, Tensor& dy, Tensor* dx,
                              std::span<Tensor>) {
  if (dx != nullptr) kernels::unpack(dy, values(*dx));
}

}  // namespace rematch::autodiff
