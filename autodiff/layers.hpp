// The layers the model zoo builds encoders from, each a thin adapter of one kernel.
#pragma once

#include <memory>
#include <vector>

#include "autodiff/layer.hpp"
#include "kernels/conv1d.hpp"
#include "kernels/eltwise.hpp"
#include "kernels/fc.hpp"

namespace rematch::autodiff {

// Fully connected, x: n x c (blocked) -> n x k (blocked), bias and optional fused ReLU.
class FcLayer final : public Layer {
 public:
  FcLayer(const kernels::FcDesc& desc, kernels::Allocator& parameters);
  std::string name() const override;
  const BlockShape& input_shape() const override { return fc_.x_shape(); }
  const BlockShape& output_shape() const override { return fc_.y_shape(); }
  kernels::LayerCost cost() const override { return fc_.cost(); }
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;
  std::span<Tensor> parameters() override { return params_; }
  std::int64_t fan_in() const override { return fc_.desc().c; }
  void set_scratch_allocator(kernels::Allocator* a) override { fc_.set_scratch_allocator(a); }

 private:
  kernels::Fc fc_;
  std::vector<Tensor> params_;  // weight (c x k, column panels), then bias (1 x k) if any
};

// 1D dilated convolution with bias on NCW tensors (plain).
class Conv1dLayer final : public Layer {
 public:
  Conv1dLayer(const kernels::Conv1dDesc& desc, kernels::Allocator& parameters);
  std::string name() const override;
  const BlockShape& input_shape() const override { return in_; }
  const BlockShape& output_shape() const override { return out_; }
  kernels::LayerCost cost() const override { return conv_.cost(); }
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;
  std::span<Tensor> parameters() override { return params_; }
  std::int64_t fan_in() const override { return conv_.desc().c * conv_.desc().taps; }
  void set_scratch_allocator(kernels::Allocator* a) override { conv_.set_scratch_allocator(a); }

 private:
  kernels::Conv1d conv_;
  BlockShape in_, out_;
  std::vector<Tensor> params_;  // weight (taps x k x c), then bias (1 x k) if any
};

// ReLU on any tensor; its backward reads only y.
class ReluLayer final : public Layer {
 public:
  explicit ReluLayer(const BlockShape& shape) : shape_(shape) {}
  std::string name() const override { return "relu"; }
  const BlockShape& input_shape() const override { return shape_; }
  const BlockShape& output_shape() const override { return shape_; }
  kernels::LayerCost cost() const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;

 private:
  BlockShape shape_;
};

// Max or average pooling over the width of an NCW tensor.
class Pool1dLayer final : public Layer {
 public:
  explicit Pool1dLayer(const kernels::Pool1dDesc& desc);
  std::string name() const override;
  const BlockShape& input_shape() const override { return in_; }
  const BlockShape& output_shape() const override { return out_; }
  kernels::LayerCost cost() const override { return kernels::pool1d_cost(desc_); }
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;

 private:
  kernels::Pool1dDesc desc_;
  BlockShape in_, out_;
};

// Layout change: the plain n x features matrix (an NCW tensor read as n x (c * w), or raw input
// rows) into the blocked layout an FcLayer reads. No arithmetic.
class ToBlockedLayer final : public Layer {
 public:
  explicit ToBlockedLayer(const BlockShape& blocked);
  std::string name() const override { return "to-blocked"; }
  const BlockShape& input_shape() const override { return plain_; }
  const BlockShape& output_shape() const override { return blocked_; }
  kernels::LayerCost cost() const override { return {}; }
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;

 private:
  BlockShape plain_, blocked_;
};

}  // namespace rematch::autodiff
