// Sequences of varying length in one batch: every sample is padded (with zeros, on the right)
// to the batch's length, and the layers below keep the padding from reaching any value or
// gradient of the real positions.
//
// SequenceLengths holds, per branch, each row's real length for the coming step; the executor
// names the branch each op runs (JoinModel::select_branch), since siamese branches share their
// layer objects but not their lengths. With no lengths set every position is real (the
// profiler's placeholder batches, full-length batches).
//
// Why this gives the gradients of the unpadded sequences: a 'same' conv1d pads its input with
// zeros past the end, so a padded input whose padding is zero yields the unpadded output at
// every real position; MaskedLayer zeroes the rest after each layer, so the next layer again
// sees zeros past the end, and it zeroes dy there before the layer's backward (d(m * f(x)) =
// m * df). GlobalPoolLayer averages (or takes the maximum) over the real positions only.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "autodiff/layer.hpp"

namespace rematch::autodiff {

struct SequenceLengths {
  std::vector<std::vector<std::int64_t>> rows;  // per branch, per row; empty: all full length
  int branch = 0;                               // the branch whose op runs now
  // Row r's real length at the full length `width` of the tensors.
  std::int64_t length(std::int64_t row, std::int64_t width) const;
};

// y = mask(f(x)) for a layer f whose output is an NCW sequence (n x channels * width).
class MaskedLayer final : public Layer {
 public:
  MaskedLayer(std::unique_ptr<Layer> inner, std::int64_t channels,
              std::shared_ptr<const SequenceLengths> lengths);
  std::string name() const override { return inner_->name(); }
  const BlockShape& input_shape() const override { return inner_->input_shape(); }
  const BlockShape& output_shape() const override { return inner_->output_shape(); }
  kernels::LayerCost cost() const override { return inner_->cost(); }
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;
  bool backward_reads_input() const override { return inner_->backward_reads_input(); }
  bool backward_reads_output() const override { return inner_->backward_reads_output(); }
  std::vector<Tensor*> parameters() override { return inner_->parameters(); }
  void initialize(std::uint64_t& stream) override { inner_->initialize(stream); }
  void set_step(std::int64_t step) override { inner_->set_step(step); }
  std::int64_t fan_in() const override { return inner_->fan_in(); }
  void set_scratch_allocator(kernels::Allocator* a) override { inner_->set_scratch_allocator(a); }

 private:
  void zero_padding(Tensor& t) const;
  std::unique_ptr<Layer> inner_;
  std::int64_t channels_;
  std::shared_ptr<const SequenceLengths> lengths_;
};

enum class GlobalPoolKind { avg, max };

// NCW (n x channels * width, plain) -> n x channels features, in the layout `out` (n rows,
// channels columns; blocked as the feature layer after it reads), over each row's real positions.
class GlobalPoolLayer final : public Layer {
 public:
  GlobalPoolLayer(GlobalPoolKind kind, const BlockShape& out, std::int64_t width,
                  std::shared_ptr<const SequenceLengths> lengths);
  std::string name() const override;
  const BlockShape& input_shape() const override { return in_; }
  const BlockShape& output_shape() const override { return out_; }
  kernels::LayerCost cost() const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                std::span<Tensor> grads) override;
  bool backward_reads_output() const override { return false; }

 private:
  std::int64_t at(std::int64_t row, std::int64_t channel) const;  // index into the output
  GlobalPoolKind kind_;
  std::int64_t channels_, width_;
  BlockShape in_, out_;
  std::shared_ptr<const SequenceLengths> lengths_;
};

}  // namespace rematch::autodiff
