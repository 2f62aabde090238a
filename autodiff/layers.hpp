// The layers encoders are built from, each a thin adapter of one kernel, and the residual block
// (a list of layers with a skip connection around it).
#pragma once

#include <memory>
#include <vector>

#include "autodiff/layer.hpp"
#include "kernels/conv1d.hpp"
#include "kernels/eltwise.hpp"
#include "kernels/fc.hpp"

namespace rematch::autodiff {

std::vector<Tensor*> pointers(std::vector<Tensor>& tensors);

// A layer whose output has its input's shape (activations, normalization, dropout).
class SameShapeLayer : public Layer {
 public:
  explicit SameShapeLayer(const BlockShape& shape) : shape_(shape) {}
  const BlockShape& input_shape() const final { return shape_; }
  const BlockShape& output_shape() const final { return shape_; }

 protected:
  BlockShape shape_;
};

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
  std::vector<Tensor*> parameters() override { return pointers(params_); }
  std::int64_t fan_in() const override { return fc_.desc().c; }
  void set_scratch_allocator(kernels::Allocator* a) override { fc_.set_scratch_allocator(a); }

 private:
  kernels::Fc fc_;
  std::vector<Tensor> params_;  // weight (c x k, column panels), then bias (1 x k) if any
};

// 1D dilated convolution with bias and optional fused ReLU on NCW tensors (plain).
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
  // A fused ReLU's backward masks dy by y > 0, unless the next layer did.
  bool backward_reads_output() const override { return output_is_relu() && !links_.dy_masked; }
  bool output_is_relu() const override { return conv_.desc().activation == kernels::Activation::relu; }
  bool mask_input_gradient() override { return links_.mask_dx = true; }
  void take_masked_output_gradient() override { links_.dy_masked = true; }
  std::vector<Tensor*> parameters() override { return pointers(params_); }
  std::int64_t fan_in() const override { return conv_.desc().c * conv_.desc().taps; }
  void set_scratch_allocator(kernels::Allocator* a) override { conv_.set_scratch_allocator(a); }

 private:
  kernels::Conv1d conv_;
  kernels::ReluLinks links_;
  BlockShape in_, out_;
  std::vector<Tensor> params_;  // weight (taps x k x c), then bias (1 x k) if any
};

// ReLU on any tensor; its backward reads only y.
class ReluLayer final : public SameShapeLayer {
 public:
  explicit ReluLayer(const BlockShape& shape) : SameShapeLayer(shape) {}
  std::string name() const override { return "relu"; }
  kernels::LayerCost cost() const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;
  bool backward_reads_input() const override { return false; }
};

// GELU (tanh approximation) on any tensor; its backward reads x.
class GeluLayer final : public SameShapeLayer {
 public:
  explicit GeluLayer(const BlockShape& shape) : SameShapeLayer(shape) {}
  std::string name() const override { return "gelu"; }
  kernels::LayerCost cost() const override { return kernels::gelu_cost(shape_.elems()); }
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;
  bool backward_reads_output() const override { return false; }
};

// Layer norm over the features of each sample (every value of a row of the tensor), with a
// learned scale (the weight, starting at 1) and shift (the bias, starting at 0). The backward
// recomputes the row statistics from x instead of keeping them: the layer object is shared by
// the branches of a siamese model, so nothing of one pass may outlive it.
class LayerNormLayer final : public SameShapeLayer {
 public:
  LayerNormLayer(const BlockShape& shape, float eps, kernels::Allocator& parameters);
  std::string name() const override { return "layer-norm"; }
  kernels::LayerCost cost() const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;
  bool backward_reads_output() const override { return false; }
  std::vector<Tensor*> parameters() override { return pointers(params_); }
  void initialize(std::uint64_t& stream) override;
  void set_scratch_allocator(kernels::Allocator* a) override { scratch_ = a; }

 private:
  float eps_;
  std::vector<Tensor> params_;  // gamma, beta (1 x features each)
  kernels::Allocator* scratch_ = nullptr;
};

// Inverted dropout (kept values scaled by 1 / (1 - p)). The mask of step s is a counter-based
// hash of (key, s, element index), so a recomputed forward and the backward regenerate it and
// nothing is saved; `key` tells the model's dropout layers apart. Branches sharing the layer
// share the step's mask. Under Layer::kInference it passes its input through.
class DropoutLayer final : public SameShapeLayer {
 public:
  DropoutLayer(const BlockShape& shape, float p, std::uint64_t key);
  std::string name() const override;
  kernels::LayerCost cost() const override { return kernels::dropout_cost(shape_.elems()); }
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;
  bool backward_reads_input() const override { return false; }
  bool backward_reads_output() const override { return false; }
  void set_step(std::int64_t step) override { step_ = step; }

 private:
  kernels::DropoutDesc desc() const;
  float p_;
  std::uint64_t key_;
  std::int64_t step_ = 0;
};

// y = x + f(x), f a chain of layers from x's shape back to it. It keeps only x: its backward
// recomputes f's inner outputs (from the scratch allocator, as transient memory), so its cost
// counts f's forward twice. A residual block is one layer, hence always inside one stage.
class ResidualLayer final : public Layer {
 public:
  explicit ResidualLayer(std::vector<std::unique_ptr<Layer>> body);  // throws unless f chains
  std::string name() const override;
  const BlockShape& input_shape() const override { return body_.front()->input_shape(); }
  const BlockShape& output_shape() const override { return body_.front()->input_shape(); }
  kernels::LayerCost cost() const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;
  bool backward_reads_output() const override { return false; }
  std::vector<Tensor*> parameters() override;
  void initialize(std::uint64_t& stream) override;
  void set_step(std::int64_t step) override;
  void set_scratch_allocator(kernels::Allocator* a) override;

 private:
  kernels::Allocator& scratch() const;
  std::vector<std::unique_ptr<Layer>> body_;
  kernels::Allocator* scratch_ = nullptr;
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
  bool backward_reads_output() const override { return false; }

 private:
  kernels::Pool1dDesc desc_;
  BlockShape in_, out_;
};

// Layout change (the model file's `flatten`): the plain n x features matrix (an NCW tensor read
// as n x (c * w), or raw input rows) into the blocked layout an FcLayer reads. No arithmetic.
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
  bool backward_reads_input() const override { return false; }
  bool backward_reads_output() const override { return false; }

 private:
  BlockShape plain_, blocked_;
};

}  // namespace rematch::autodiff
