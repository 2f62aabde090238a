#include "autodiff/loss_head.hpp"

#include <cmath>
#include <stdexcept>

#include "kernels/losses.hpp"
#include "kernels/op_timing.hpp"

namespace rematch::autodiff {

LossHead::LossHead(LossKind kind, float margin) : kind_(kind), margin_(margin) {}

int LossHead::inputs() const {
  switch (kind_) {
    case LossKind::triplet: return 3;
    case LossKind::cross_entropy: return 1;
    default: return 2;
  }
}

std::string LossHead::name() const {
  switch (kind_) {
    case LossKind::contrastive: return "contrastive";
    case LossKind::triplet: return "triplet-margin";
    case LossKind::cosine: return "cosine-embedding";
    case LossKind::cross_entropy: return "softmax-cross-entropy";
  }
  return "?";
}

float LossHead::run(std::span<const Tensor* const> outputs, std::span<Tensor> grads,
                    kernels::Allocator& scratch) const {
  const kernels::OpScope scope(kernels::OpKind::loss);
  const int k = inputs();
  if (static_cast<int>(outputs.size()) != k || static_cast<int>(grads.size()) != k) {
    throw std::invalid_argument(name() + " loss reads " + std::to_string(k) + " branch outputs");
  }
  const std::int64_t n = outputs[0]->shape.rows, dim = outputs[0]->shape.cols;
  for (const Tensor* t : outputs) {
    if (t->shape.rows != n || t->shape.cols != dim) {
      throw std::invalid_argument(name() + " loss: branch outputs differ in shape");
    }
  }
  if (kind_ != LossKind::triplet && static_cast<std::int64_t>(targets_.size()) != n) {
    throw std::invalid_argument(name() + " loss: " + std::to_string(targets_.size()) +
                                " targets for a batch of " + std::to_string(n));
  }
  const auto elems = static_cast<std::size_t>(n * dim);
  std::vector<kernels::AlignedBuffer<float>> plain, dplain;
  for (int j = 0; j < k; ++j) {
    plain.emplace_back(elems, scratch, kernels::Uninitialised{});
    kernels::unpack(*outputs[j], plain.back().span());
  }
  // Every loss writes each of its gradient values.
  for (int j = 0; j < k; ++j) dplain.emplace_back(elems, scratch, kernels::Uninitialised{});
  float loss = 0;
  switch (kind_) {
    case LossKind::contrastive:
      loss = kernels::contrastive_loss(plain[0].span(), plain[1].span(), targets_, n, dim, margin_,
                                       dplain[0].span(), dplain[1].span());
      break;
    case LossKind::triplet:
      loss = kernels::triplet_margin_loss(plain[0].span(), plain[1].span(), plain[2].span(), n, dim,
                                          margin_, dplain[0].span(), dplain[1].span(),
                                          dplain[2].span());
      break;
    case LossKind::cosine:
      loss = kernels::cosine_embedding_loss(plain[0].span(), plain[1].span(), targets_, n, dim,
                                            margin_, dplain[0].span(), dplain[1].span());
      break;
    case LossKind::cross_entropy: {
      std::vector<std::int32_t> labels(targets_.begin(), targets_.end());
      loss = kernels::softmax_cross_entropy(plain[0].span(), labels, n, dim, dplain[0].span());
      break;
    }
  }
  for (int j = 0; j < k; ++j) kernels::pack_into(dplain[j].span(), grads[j]);
  return loss;
}

std::vector<float> LossHead::distances(std::span<const float> pa, std::span<const float> pb,
                                       std::int64_t dim) const {
  if (dim <= 0 || pa.size() != pb.size() || pa.size() % std::size_t(dim) != 0) {
    throw std::invalid_argument("distances: two batches of the same number of dim-sized rows");
  }
  const auto n = static_cast<std::int64_t>(pa.size()) / dim;
  std::vector<float> out(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    double dot = 0, na = 0, nb = 0, sq = 0;
    for (std::int64_t c = 0; c < dim; ++c) {
      const double u = pa[r * dim + c], v = pb[r * dim + c];
      sq += (u - v) * (u - v);
      dot += u * v;
      na += u * u;
      nb += v * v;
    }
    // Cosine models are trained on angles: their score is 1 - cos, the others Euclidean.
    out[r] = kind_ == LossKind::cosine ? float(1 - dot / std::sqrt(na * nb + kernels::kDistanceEps))
                                       : float(std::sqrt(sq + kernels::kDistanceEps));
  }
  return out;
}

}  // namespace rematch::autodiff
