#include "models/data/synthetic_sequences.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace rematch::data {
namespace {

// Uniform in [0, 1) from the top 53 bits.
double uniform(std::mt19937_64& g) { return double(g() >> 11) * 0x1.0p-53; }

float symmetric(std::mt19937_64& g, float scale) { return float((2 * uniform(g) - 1) * scale); }

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("synthetic sequences: " + what);
}

}  // namespace

SequenceSet synthesize_sequences(const SyntheticSequenceOptions& o) {
  require(o.sequences >= 1 && o.channels >= 1 && o.classes >= 1, "sequences, channels and classes must be >= 1");
  require(o.motif_length >= 1 && o.motif_every >= 1, "motif length and spacing must be >= 1");
  require(o.min_length >= o.motif_length, "the shortest length must hold a motif (min_length >= motif_length)");
  require(o.max_length >= o.min_length, "max_length must be >= min_length");
  require(o.tail > 0 && std::isfinite(o.tail), "tail must be positive");
  require(o.noise >= 0 && o.motif_scale >= 0, "noise and motif scale must be >= 0");

  std::mt19937_64 g(o.seed);
  std::vector<std::vector<float>> motifs(std::size_t(o.classes));
  for (auto& m : motifs) {
    m.resize(std::size_t(o.motif_length * o.channels));
    for (float& v : m) v = symmetric(g, o.motif_scale);
  }
  SequenceSet set;
  set.channels = o.channels;
  for (std::int64_t i = 0; i < o.sequences; ++i) {
    const double u = 1 - uniform(g);  // (0, 1]
    const double l = double(o.min_length) * std::pow(u, -1.0 / o.tail);
    const std::int64_t length = l >= double(o.max_length) ? o.max_length : std::int64_t(l);
    const std::int64_t label = i % o.classes;
    std::vector<float> s(std::size_t(length * o.channels));
    for (float& v : s) v = symmetric(g, o.noise);
    const auto& motif = motifs[std::size_t(label)];
    const std::int64_t plants = std::max<std::int64_t>(1, length / o.motif_every);
    for (std::int64_t p = 0; p < plants; ++p) {
      const auto at = std::int64_t(uniform(g) * double(length - o.motif_length + 1));
      std::copy(motif.begin(), motif.end(), s.begin() + at * o.channels);
    }
    set.sequences.push_back(std::move(s));
    set.labels.push_back(label);
  }
  return set;
}

}  // namespace rematch::data
