// The loss node of a join model: reads every branch output x^j_n and writes every y^j_n in one
// op (docs/model.md `loss`). Embeddings are unpacked to plain rows for the loss kernels and the
// gradients packed back; those plain copies are the loss's transient memory.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "autodiff/layer.hpp"

namespace rematch::autodiff {

enum class LossKind {
  contrastive,  // 2 inputs; targets: 1 similar pair, 0 dissimilar
  triplet,      // 3 inputs (anchor, positive, negative); no targets
  cosine,       // 2 inputs; targets: +1 similar, -1 dissimilar
  cross_entropy,  // 1 input (logits) of a chain; targets: class indices
};

class LossHead {
 public:
  LossHead(LossKind kind, float margin);

  LossKind kind() const { return kind_; }
  int inputs() const;
  std::string name() const;
  // Per-sample targets of the next batch (ignored by the triplet loss).
  void set_targets(std::vector<float> targets) { targets_ = std::move(targets); }
  const std::vector<float>& targets() const { return targets_; }

  // Mean loss over the batch; grads[j] (allocated by the caller with outputs[j]'s shape) gets
  // d loss / d outputs[j]. Scratch comes from `scratch`.
  float run(std::span<const Tensor* const> outputs, std::span<Tensor> grads,
            kernels::Allocator& scratch) const;
  // Per-sample distance between two batches of plain n x dim embeddings, in the geometry the loss
  // trains (1 - cosine for the cosine loss, else Euclidean): the verification score of a pair.
  std::vector<float> distances(std::span<const float> a, std::span<const float> b,
                               std::int64_t dim) const;

 private:
  LossKind kind_;
  float margin_;
  std::vector<float> targets_;
};

}  // namespace rematch::autodiff
