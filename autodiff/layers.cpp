#include "autodiff/layers.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace rematch::autodiff {

BlockShape plain_shape(std::int64_t rows, std::int64_t cols) { return {rows, cols, rows, cols, false}; }

std::uint64_t splitmix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::vector<Tensor*> pointers(std::vector<Tensor>& tensors) {
  std::vector<Tensor*> out;
  for (Tensor& t : tensors) out.push_back(&t);
  return out;
}

void Layer::initialize(std::uint64_t& stream) {
  const std::vector<Tensor*> params = parameters();
  if (params.empty()) return;
  // He (Kaiming) uniform for the weight; biases (the later parameters) start at zero.
  const double bound = std::sqrt(6.0 / double(fan_in()));
  stream = splitmix(stream);
  Tensor& w = *params[0];
  std::vector<float> plain(std::size_t(w.shape.rows * w.shape.cols));
  for (std::size_t i = 0; i < plain.size(); ++i) {
    const double unit = double(splitmix(stream ^ splitmix(i)) >> 11) * 0x1.0p-53;  // [0, 1)
    plain[i] = float((2 * unit - 1) * bound);
  }
  kernels::pack_into(plain, w);
  for (std::size_t p = 1; p < params.size(); ++p) {
    std::fill(params[p]->data.span().begin(), params[p]->data.span().end(), 0.0f);
  }
}

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
  fc_.backward(x, y, dy, params_[0], dx, grads[0],
               fc_.desc().bias ? values(grads[1]) : std::span<float>{});
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
         std::to_string(d.taps) + " dilation " + std::to_string(d.dilation) +
         (d.activation == kernels::Activation::relu ? " relu" : "");
}

void Conv1dLayer::forward(const Tensor& x, Tensor& y) {
  conv_.forward(values(x), values(params_[0]),
                conv_.desc().bias ? values(params_[1]) : std::span<const float>{}, values(y));
}

void Conv1dLayer::backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                           std::span<Tensor> grads) {
  // A fused ReLU's mask is applied inside the passes, read from y, unless dy arrives masked.
  const std::span<const float> mask = backward_reads_output() ? values(y) : std::span<const float>{};
  conv_.backward(values(x), mask, values(dy), values(params_[0]),
                 dx != nullptr ? values(*dx) : std::span<float>{}, values(grads[0]),
                 conv_.desc().bias ? values(grads[1]) : std::span<float>{}, links_);
}

kernels::LayerCost ReluLayer::cost() const {
  return kernels::relu_cost(shape_.elems());
}

void ReluLayer::forward(const Tensor& x, Tensor& y) { kernels::relu_forward(values(x), values(y)); }

void ReluLayer::backward(const Tensor&, const Tensor& y, Tensor& dy, Tensor* dx, std::span<Tensor>) {
  if (dx != nullptr) kernels::relu_backward(values(y), values(dy), values(*dx));
}

void GeluLayer::forward(const Tensor& x, Tensor& y) { kernels::gelu_forward(values(x), values(y)); }

void GeluLayer::backward(const Tensor& x, const Tensor&, Tensor& dy, Tensor* dx, std::span<Tensor>) {
  if (dx != nullptr) kernels::gelu_backward(values(x), values(dy), values(*dx));
}

LayerNormLayer::LayerNormLayer(const BlockShape& shape, float eps, kernels::Allocator& parameters)
    : SameShapeLayer(shape), eps_(eps) {
  params_.emplace_back(plain_shape(1, shape.cols), false, parameters);
  params_.emplace_back(plain_shape(1, shape.cols), false, parameters);
}

kernels::LayerCost LayerNormLayer::cost() const {
  kernels::LayerCost c = kernels::layer_norm_cost(shape_.rows, shape_.cols);
  // Only x is kept; the backward recomputes the statistics (one more sweep over x).
  c.saved_bytes = shape_.rows * shape_.cols * std::int64_t(sizeof(float));
  c.bwd_data_flops += 3.0 * double(shape_.rows) * double(shape_.cols);
  return c;
}

void LayerNormLayer::forward(const Tensor& x, Tensor& y) {
  kernels::Allocator& a = scratch_ != nullptr ? *scratch_ : kernels::heap_allocator();
  kernels::AlignedBuffer<float> mean(std::size_t(shape_.rows), a, kernels::Uninitialised{});
  kernels::AlignedBuffer<float> rstd(std::size_t(shape_.rows), a, kernels::Uninitialised{});
  kernels::layer_norm_forward(x, values(params_[0]), values(params_[1]), eps_, y, mean.span(),
                              rstd.span());
  kernels::zero_padding(y);  // the kernel writes the logical rows and columns only
}

void LayerNormLayer::backward(const Tensor& x, const Tensor&, Tensor& dy, Tensor* dx,
                              std::span<Tensor> grads) {
  kernels::Allocator& a = scratch_ != nullptr ? *scratch_ : kernels::heap_allocator();
  kernels::AlignedBuffer<float> mean(std::size_t(shape_.rows), a, kernels::Uninitialised{});
  kernels::AlignedBuffer<float> rstd(std::size_t(shape_.rows), a, kernels::Uninitialised{});
  kernels::layer_norm_stats(x, eps_, mean.span(), rstd.span());
  // The kernel always writes dx; without a caller's buffer it goes to scratch.
  Tensor own;
  if (dx == nullptr) own = Tensor(shape_, false, a, kernels::Uninitialised{});
  kernels::layer_norm_backward(x, dy, values(params_[0]), mean.span(), rstd.span(),
                               dx != nullptr ? *dx : own, values(grads[0]), values(grads[1]));
  if (dx != nullptr) kernels::zero_padding(*dx);  // written on the logical elements only
}

void LayerNormLayer::initialize(std::uint64_t&) {
  std::fill(values(params_[0]).begin(), values(params_[0]).end(), 1.0f);
  std::fill(values(params_[1]).begin(), values(params_[1]).end(), 0.0f);
}

DropoutLayer::DropoutLayer(const BlockShape& shape, float p, std::uint64_t key)
    : SameShapeLayer(shape), p_(p), key_(key) {
  if (!(p >= 0.0f && p < 1.0f)) throw std::invalid_argument("dropout: p must be in [0, 1)");
}

std::string DropoutLayer::name() const { return "dropout " + std::to_string(p_); }

kernels::DropoutDesc DropoutLayer::desc() const {
  return {p_, splitmix(key_ ^ splitmix(std::uint64_t(step_)))};
}

void DropoutLayer::forward(const Tensor& x, Tensor& y) {
  if (step_ == kInference) {
    std::copy(values(x).begin(), values(x).end(), values(y).begin());
    return;
  }
  kernels::dropout_forward(desc(), values(x), values(y));
}

void DropoutLayer::backward(const Tensor&, const Tensor&, Tensor& dy, Tensor* dx, std::span<Tensor>) {
  if (dx == nullptr) return;
  if (step_ == kInference) {
    std::copy(values(dy).begin(), values(dy).end(), values(*dx).begin());
    return;
  }
  kernels::dropout_backward(desc(), values(dy), values(*dx));
}

ResidualLayer::ResidualLayer(std::vector<std::unique_ptr<Layer>> body) : body_(std::move(body)) {
  if (body_.empty()) throw std::invalid_argument("residual block: no layers");
  for (std::size_t l = 1; l < body_.size(); ++l) {
    if (!(body_[l]->input_shape() == body_[l - 1]->output_shape())) {
      throw std::invalid_argument("residual block: layer " + std::to_string(l) + " (" +
                                  body_[l]->name() + ") does not read what layer " +
                                  std::to_string(l - 1) + " writes");
    }
  }
  if (!(body_.back()->output_shape() == body_.front()->input_shape())) {
    throw std::invalid_argument("residual block: its layers do not return to the input's shape");
  }
}

std::string ResidualLayer::name() const {
  std::string out = "residual [";
  for (std::size_t l = 0; l < body_.size(); ++l) out += (l ? ", " : "") + body_[l]->name();
  return out + "]";
}

kernels::LayerCost ResidualLayer::cost() const {
  kernels::LayerCost total = kernels::add_cost(input_shape().elems());
  for (const auto& l : body_) {
    const kernels::LayerCost c = l->cost();
    total.fwd_flops += c.fwd_flops;
    total.bwd_data_flops += c.bwd_data_flops + c.fwd_flops;  // the recomputed forward
    total.bwd_weights_flops += c.bwd_weights_flops;
  }
  total.saved_bytes = input_shape().elems() * std::int64_t(sizeof(float));  // x only
  total.bwd_data_flops += double(input_shape().elems());                      // dx += dy
  return total;
}

kernels::Allocator& ResidualLayer::scratch() const {
  return scratch_ != nullptr ? *scratch_ : kernels::heap_allocator();
}

void ResidualLayer::forward(const Tensor& x, Tensor& y) {
  Tensor current;
  const Tensor* input = &x;
  for (std::size_t l = 0; l + 1 < body_.size(); ++l) {
    Tensor next(body_[l]->output_shape(), false, scratch(), kernels::Uninitialised{});
    body_[l]->forward(*input, next);
    current = std::move(next);
    input = &current;
  }
  body_.back()->forward(*input, y);
  kernels::add_into(values(x), values(y));
}

void ResidualLayer::backward(const Tensor& x, const Tensor&, Tensor& dy, Tensor* dx,
                             std::span<Tensor> grads) {
  // f's layer outputs, recomputed (f(x) too: y - x would round, and a ReLU's backward reads it).
  std::vector<Tensor> inner;
  inner.reserve(body_.size());
  for (std::size_t l = 0; l < body_.size(); ++l) {
    inner.emplace_back(body_[l]->output_shape(), false, scratch(), kernels::Uninitialised{});
    body_[l]->forward(l == 0 ? x : inner[l - 1], inner.back());
  }
  // The skip path's share of dx is dy itself; layers may overwrite their dy, so keep a copy.
  Tensor skip;
  if (dx != nullptr) {
    skip = Tensor(dy.shape, false, scratch(), kernels::Uninitialised{});
    std::copy(values(dy).begin(), values(dy).end(), values(skip).begin());
  }
  std::size_t offset = 0;
  std::vector<std::size_t> first(body_.size());
  for (std::size_t l = 0; l < body_.size(); ++l) {
    first[l] = offset;
    offset += body_[l]->parameters().size();
  }
  Tensor g = std::move(dy);
  for (std::size_t l = body_.size(); l-- > 0;) {
    const Tensor& in = l == 0 ? x : inner[l - 1];
    Tensor d;
    if (l > 0) d = Tensor(body_[l]->input_shape(), false, scratch(), kernels::Uninitialised{});
    Tensor* target = l > 0 ? &d : dx;
    const std::size_t count = body_[l]->parameters().size();
    body_[l]->backward(in, inner[l], g, target, grads.subspan(first[l], count));
    inner[l] = {};
    if (l > 0) g = std::move(d);
  }
  if (dx != nullptr) kernels::add_into(values(skip), values(*dx));
}

std::vector<Tensor*> ResidualLayer::parameters() {
  std::vector<Tensor*> out;
  for (auto& l : body_) {
    for (Tensor* p : l->parameters()) out.push_back(p);
  }
  return out;
}

void ResidualLayer::initialize(std::uint64_t& stream) {
  for (auto& l : body_) l->initialize(stream);
}

void ResidualLayer::set_step(std::int64_t step) {
  for (auto& l : body_) l->set_step(step);
}

void ResidualLayer::set_scratch_allocator(kernels::Allocator* a) {
  scratch_ = a;
  for (auto& l : body_) l->set_scratch_allocator(a);
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
