#include "models/data/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace rematch::data {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::invalid_argument("rematch::data metrics: " + what);
}

void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

void validate(std::span<const float> values, std::span<const float> labels) {
  if (values.size() != labels.size()) {
    fail("scores and labels differ in length (" + std::to_string(values.size()) + " vs " +
         std::to_string(labels.size()) + ")");
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) fail("score " + std::to_string(i) + " is not finite");
    if (labels[i] != 0.0f && labels[i] != 1.0f) fail("label " + std::to_string(i) + " is not 0 or 1");
  }
}

// Indices ordered by ascending value.
std::vector<std::size_t> ascending(std::span<const float> values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::ranges::sort(order, [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  return order;
}

}  // namespace

double roc_auc(std::span<const float> scores, std::span<const float> labels) {
  validate(scores, labels);
  const auto order = ascending(scores);
  // Walk groups of tied scores upwards. Each positive beats every negative
  // below its group and ties with the negatives inside it; counting in halves
  // keeps the sum an exact integer.
  std::int64_t negatives_below = 0, positives = 0, twice_wins = 0;
  for (std::size_t g = 0; g < order.size();) {
    std::size_t end = g;
    std::int64_t pos = 0, neg = 0;
    for (; end < order.size() && scores[order[end]] == scores[order[g]]; ++end) {
      (labels[order[end]] != 0.0f ? pos : neg) += 1;
    }
    twice_wins += pos * (2 * negatives_below + neg);
    negatives_below += neg;
    positives += pos;
    g = end;
  }
  require(positives > 0 && negatives_below > 0, "AUC needs at least one positive and one negative");
  return static_cast<double>(twice_wins) / (2.0 * static_cast<double>(positives) *
                                            static_cast<double>(negatives_below));
}

double distance_auc(std::span<const float> distances, std::span<const float> similar) {
  std::vector<float> scores(distances.size());
  std::ranges::transform(distances, scores.begin(), [](float d) { return -d; });
  return roc_auc(scores, similar);
}

Verification best_threshold_accuracy(std::span<const float> distances, std::span<const float> similar) {
  validate(distances, similar);
  require(!distances.empty(), "accuracy needs at least one pair");
  const auto order = ascending(distances);
  const auto n = static_cast<std::int64_t>(distances.size());
  // Start with nothing called similar (all negatives right), then move the cut
  // past one group of tied distances at a time.
  std::int64_t correct = std::ranges::count(similar, 0.0f);
  Verification best{static_cast<double>(correct) / static_cast<double>(n),
                    -std::numeric_limits<double>::infinity()};
  std::int64_t best_correct = correct;
  for (std::size_t g = 0; g < order.size();) {
    std::size_t end = g;
    for (; end < order.size() && distances[order[end]] == distances[order[g]]; ++end) {
      correct += similar[order[end]] != 0.0f ? 1 : -1;
    }
    if (correct > best_correct) {
      best_correct = correct;
      best = {static_cast<double>(correct) / static_cast<double>(n), distances[order[g]]};
    }
    g = end;
  }
  return best;
}

}  // namespace rematch::data
