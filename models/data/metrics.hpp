#pragma once
// Verification metrics for pairs.
//
// Labels are the PairBatch::similar convention: 1 = positive (same class),
// 0 = negative. All functions reject mismatched lengths, labels other than
// 0/1 and non-finite scores with std::invalid_argument.
#include <span>

namespace rematch::data {

// Exact ROC AUC, where a HIGHER score means "more likely positive": the
// probability that a random positive outscores a random negative, ties
// counting one half (the average-rank / Mann-Whitney statistic). O(n log n).
// Needs at least one positive and one negative.
double roc_auc(std::span<const float> scores, std::span<const float> labels);

// The same for distances, where a LOWER distance means "similar".
double distance_auc(std::span<const float> distances, std::span<const float> similar);

struct Verification {
  double accuracy = 0;  // fraction of pairs classified correctly
  // Pairs with distance <= threshold are called similar. It is one of the
  // distances (or -infinity: call nothing similar); the smallest best one.
  double threshold = 0;
};

// Accuracy at the best threshold, over every distinct cut. O(n log n).
Verification best_threshold_accuracy(std::span<const float> distances, std::span<const float> similar);

}  // namespace rematch::data
