#pragma once
// Seeded pair and triplet batches for metric learning.
//
// Reproducible across machines and standard libraries: the only randomness is
// std::mt19937_64 (whose output sequence the standard fixes) fed through our
// own bounded draw, never std::uniform_int_distribution (implementation-defined).
// Same dataset + seed + call sequence -> the same batches everywhere.
#include <cstdint>
#include <initializer_list>
#include <random>
#include <span>
#include <vector>

#include "models/data/fashion_mnist.hpp"

namespace rematch::data {

// Uniform in [0, bound), unbiased (rejection of the short top range); bound > 0.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound);

// Sample indices grouped by label, built once per dataset.
class ClassIndex {
 public:
  explicit ClassIndex(std::span<const std::int32_t> labels);  // labels must be >= 0

  std::int64_t samples() const { return samples_; }
  std::int64_t label_slots() const { return std::ssize(members_); }     // max label + 1
  std::int64_t nonempty_classes() const { return nonempty_; }
  const std::vector<std::int64_t>& members(std::int32_t label) const { return members_[label]; }
  std::int64_t position(std::int64_t sample) const { return position_[sample]; }  // within its class

 private:
  std::vector<std::vector<std::int64_t>> members_;
  std::vector<std::int64_t> position_;
  std::int64_t samples_ = 0, nonempty_ = 0;
};

// The rows [first, first + count) of a drawn batch: the part of every global batch one of
// several processes keeps ({0, batch}: all of it).
struct RowRange {
  std::int64_t first = 0, count = 0;
  bool contains(std::int64_t row) const { return row >= first && row < first + count; }
};

// Throws std::invalid_argument unless `keep` lies within a batch of `batch` rows and every span
// of `out` holds keep.count samples of `dim` floats.
void check_output(std::int64_t batch, RowRange keep, std::int64_t dim,
                  std::initializer_list<std::span<float>> out);

// Which samples a batch's kept rows are (indices into the rows drawn from) and their targets.
// The samples themselves are row-major rows x dim (dim = the sample size): written into storage
// the caller passes (the drawing calls that take a RowRange, so a training step can take that
// storage as its input as it is), or held by the *Batch the other calls return.
struct PairDraw {
  std::int64_t batch = 0, dim = 0;  // rows kept, floats per sample
  std::vector<float> similar;       // 1 = same class, 0 = different classes
  std::vector<std::int64_t> left_index, right_index;
};
struct PairBatch : PairDraw {
  std::vector<float> left, right;
};

struct TripletDraw {
  std::int64_t batch = 0, dim = 0;
  // positive: same class, other sample; negative: other class
  std::vector<std::int64_t> anchor_index, positive_index, negative_index;
};
struct TripletBatch : TripletDraw {
  std::vector<float> anchor, positive, negative;
};

// Holds the RNG state, so successive calls give fresh batches. Keeps references
// to the samples and labels, which must outlive it.
class Sampler {
 public:
  // labels: one class per sample, each >= 0.
  Sampler(const Rows& rows, std::span<const std::int32_t> labels, std::uint64_t seed);
  Sampler(const Dataset& data, std::uint64_t seed);
  Sampler(Dataset&&, std::uint64_t) = delete;  // would dangle

  // Exactly round(similar_fraction * batch) similar pairs, at shuffled positions.
  // Anchors are uniform over the samples that can form the requested kind of pair;
  // a dissimilar partner is uniform over all samples of the other classes.
  // Draws all `batch` pairs (the state advances as for the whole batch) and keeps rows `keep`:
  // their samples written to `left` and `right`.
  PairDraw pairs(std::int64_t batch, RowRange keep, std::span<float> left, std::span<float> right,
                 double similar_fraction = 0.5);
  PairBatch pairs(std::int64_t batch, double similar_fraction = 0.5);  // all of it
  TripletDraw triplets(std::int64_t batch, RowRange keep, std::span<float> anchor,
                       std::span<float> positive, std::span<float> negative);
  TripletBatch triplets(std::int64_t batch);

  const ClassIndex& index() const { return index_; }

 private:
  std::int64_t draw_anchor_with_partner();
  std::int64_t draw_positive(std::int64_t anchor);
  std::int64_t draw_negative(std::int64_t anchor);

  const Rows& rows_;
  std::span<const std::int32_t> labels_;
  ClassIndex index_;
  std::int64_t pairable_ = 0;  // samples whose class has at least two members
  std::mt19937_64 rng_;
};

// One-off batches from a fresh Sampler(data, seed). Training loops should keep
// a Sampler instead: these rebuild the class index on every call.
PairBatch sample_pairs(const Dataset& data, std::int64_t batch, std::uint64_t seed,
                       double similar_fraction = 0.5);
TripletBatch sample_triplets(const Dataset& data, std::int64_t batch, std::uint64_t seed);

}  // namespace rematch::data
