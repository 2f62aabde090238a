#pragma once
// Losses for join (siamese/triplet) networks and classification heads.
// Inputs are plain row-major n x dim embeddings (or n x classes logits).
// Each function returns the mean loss over the batch and, when gradient spans
// are non-empty, writes d(loss)/d(input) for every input (forward and gradient
// in one sweep, since both need the same distances).
//
// Per-sample terms are computed in double in parallel and summed serially in
// sample order, so results are bitwise identical for any thread count.
// Distances are sqrt(sum of squares + kDistanceEps), which keeps gradients
// finite when two embeddings coincide.
#include <cstdint>
#include <span>

#include "kernels/cost.hpp"

namespace rematch::kernels {

inline constexpr double kDistanceEps = 1e-12;

// 0.5 * mean( y d^2 + (1 - y) max(0, margin - d)^2 ), d = |a - b|, y = 1 for similar pairs.
float contrastive_loss(std::span<const float> a, std::span<const float> b,
                       std::span<const float> similar, std::int64_t n, std::int64_t dim,
                       float margin, std::span<float> da, std::span<float> db);

// mean( max(0, |a - p| - |a - q| + margin) ) with anchor a, positive p, negative q.
float triplet_margin_loss(std::span<const float> anchor, std::span<const float> positive,
                          std::span<const float> negative, std::int64_t n, std::int64_t dim,
                          float margin, std::span<float> d_anchor, std::span<float> d_positive,
                          std::span<float> d_negative);

// mean( y = +1: 1 - cos(a, b);  y = -1: max(0, cos(a, b) - margin) ).
float cosine_embedding_loss(std::span<const float> a, std::span<const float> b,
                            std::span<const float> target, std::int64_t n, std::int64_t dim,
                            float margin, std::span<float> da, std::span<float> db);

// mean( logsumexp(logits) - logits[label] ); labels in [0, classes).
float softmax_cross_entropy(std::span<const float> logits, std::span<const std::int32_t> labels,
                            std::int64_t n, std::int64_t classes, std::span<float> dlogits);

// inputs: number of n x dim tensors the loss reads (2 for pairs, 3 for triplets).
LayerCost loss_cost(std::int64_t n, std::int64_t dim, std::int64_t inputs);

}  // namespace rematch::kernels
