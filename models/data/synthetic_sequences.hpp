#pragma once
// Synthetic labelled sequences for demos and tests (docs/sequences.md): every class has a motif,
// a fixed random pattern of `motif_length` positions x `channels`, planted in uniform random
// background noise, once per `motif_every` positions (at least once) at random places; a
// classifier or a siamese encoder has to find the motif wherever it sits. Lengths follow a
// Pareto (long-tailed) law, P(length > l) = (min_length / l)^tail, cut at max_length. Labels
// cycle through the classes, so every class has n / classes sequences.
//
// Only std::mt19937_64's raw output is used (no standard distributions, whose results differ
// between library implementations): the same options give the same data everywhere.
#include <cstdint>
#include <vector>

namespace rematch::data {

struct SyntheticSequenceOptions {
  std::int64_t sequences = 1000;
  std::int64_t channels = 4;
  std::int64_t classes = 4;
  std::int64_t min_length = 32, max_length = 1024;
  double tail = 1.2;
  std::int64_t motif_length = 8;
  std::int64_t motif_every = 256;
  float noise = 1.0f;        // background uniform in [-noise, noise]
  float motif_scale = 2.0f;  // motif values uniform in [-motif_scale, motif_scale]
  std::uint64_t seed = 1;
};

struct SequenceSet {
  std::int64_t channels = 0;
  std::vector<std::vector<float>> sequences;  // each length x channels, channels last
  std::vector<std::int64_t> labels;
};

// Throws std::invalid_argument for options out of range (counts < 1, min_length below the
// motif length, max_length < min_length, tail <= 0, noise or scale < 0).
SequenceSet synthesize_sequences(const SyntheticSequenceOptions& options);

}  // namespace rematch::data
