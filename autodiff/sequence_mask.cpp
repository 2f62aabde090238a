#include "autodiff/sequence_mask.hpp"

#include <algorithm>
#include <stdexcept>

#include "kernels/eltwise.hpp"

namespace rematch::autodiff {

std::int64_t SequenceLengths::length(std::int64_t row, std::int64_t width) const {
  if (rows.empty()) return width;
  const auto& branch_rows = rows.at(std::size_t(branch));
  return std::min(branch_rows.at(std::size_t(row)), width);
}

MaskedLayer::MaskedLayer(std::unique_ptr<Layer> inner, std::int64_t channels,
                         std::shared_ptr<const SequenceLengths> lengths)
    : inner_(std::move(inner)), channels_(channels), lengths_(std::move(lengths)) {
  if (channels_ <= 0 || inner_->output_shape().cols % channels_ != 0) {
    throw std::invalid_argument("masked layer: the output is not channels x width");
  }
}

void MaskedLayer::zero_padding(Tensor& t) const {
  if (lengths_->rows.empty()) return;
  const std::int64_t cols = t.shape.cols, width = cols / channels_;
  float* v = t.data.data();
  for (std::int64_t r = 0; r < t.shape.rows; ++r) {
    const std::int64_t real = lengths_->length(r, width);
    if (real == width) continue;
    for (std::int64_t c = 0; c < channels_; ++c) {
      float* line = v + r * cols + c * width;
      std::fill(line + real, line + width, 0.0f);
    }
  }
}

void MaskedLayer::forward(const Tensor& x, Tensor& y) {
  inner_->forward(x, y);
  zero_padding(y);
}

void MaskedLayer::backward(const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx,
                           std::span<Tensor> grads) {
  zero_padding(dy);
  inner_->backward(x, y, dy, dx, grads);
}

GlobalPoolLayer::GlobalPoolLayer(GlobalPoolKind kind, const BlockShape& out, std::int64_t width,
                                 std::shared_ptr<const SequenceLengths> lengths)
    : kind_(kind),
      channels_(out.cols),
      width_(width),
      in_(plain_shape(out.rows, out.cols * width)),
      out_(out),
      lengths_(std::move(lengths)) {}

std::int64_t GlobalPoolLayer::at(std::int64_t row, std::int64_t channel) const {
  return out_.block_offset(row / out_.brow, channel / out_.bcol) + (row % out_.brow) * out_.bcol +
         channel % out_.bcol;
}

std::string GlobalPoolLayer::name() const {
  return kind_ == GlobalPoolKind::avg ? "global-avg-pool" : "global-max-pool";
}

kernels::LayerCost GlobalPoolLayer::cost() const {
  const double elems = double(in_.rows) * double(in_.cols);
  return {elems, elems, 0, kind_ == GlobalPoolKind::max ? in_.rows * in_.cols * std::int64_t(sizeof(float)) : 0};
}

void GlobalPoolLayer::forward(const Tensor& x, Tensor& y) {
  const float* xv = x.data.data();
  float* yv = y.data.data();
  const std::int64_t n = in_.rows;
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int64_t real = lengths_->length(r, width_);
    for (std::int64_t c = 0; c < channels_; ++c) {
      const float* line = xv + r * in_.cols + c * width_;
      if (kind_ == GlobalPoolKind::max) {
        yv[at(r, c)] = *std::max_element(line, line + real);
      } else {
        yv[at(r, c)] = kernels::row_sum(line, real) / float(real);
      }
    }
  }
  kernels::zero_padding(y);  // the loop writes the logical rows and channels only
}

void GlobalPoolLayer::backward(const Tensor& x, const Tensor&, Tensor& dy, Tensor* dx,
                               std::span<Tensor>) {
  if (dx == nullptr) return;
  const float* xv = x.data.data();
  const float* g = dy.data.data();
  float* d = dx->data.data();
  const std::int64_t n = in_.rows;
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int64_t real = lengths_->length(r, width_);
    for (std::int64_t c = 0; c < channels_; ++c) {
      float* line = d + r * in_.cols + c * width_;
      const float gc = g[at(r, c)];
      if (kind_ == GlobalPoolKind::max) {
        std::fill(line, line + width_, 0.0f);
        const float* xl = xv + r * in_.cols + c * width_;
        line[std::max_element(xl, xl + real) - xl] = gc;
      } else {
        std::fill(line, line + real, gc / float(real));
        std::fill(line + real, line + width_, 0.0f);
      }
    }
  }
}

}  // namespace rematch::autodiff
