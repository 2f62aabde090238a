#pragma once
// Training and evaluation data in one of three layouts, from .npy files or Fashion-MNIST:
//   labelled  X (n x sample shape) with classes y (n): pairs and triplets are sampled by class,
//             classifiers read the samples with their classes;
//   pairs     X1, X2 (n x shape each) with labels (n): 1 = same, 0 = different;
//   triplets  A, P, N (n x shape each): anchor, positive (same), negative (different).
// Samples are read from the files batch by batch, never whole (labels are held in memory), so a
// data file larger than the process may map or allocate is usable. See docs/data.md.
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "models/data/fashion_mnist.hpp"
#include "models/data/rows.hpp"
#include "models/data/sampling.hpp"

namespace rematch::data {

enum class Layout { labelled, pairs, triplets };
const char* layout_name(Layout l);

struct DataFiles {
  Layout layout = Layout::labelled;
  std::vector<std::string> arrays;  // labelled: {X}; pairs: {X1, X2}; triplets: {A, P, N}
  std::string labels;               // labelled: classes; pairs: 1/0; triplets: none
};

// Class labels must lie below this (and below a classifier's class count): the class index
// holds one slot per label value.
inline constexpr std::int64_t kMaxClasses = std::int64_t{1} << 20;

class Source {
 public:
  // Opens and checks the files: .npy samples (<f4, <f2, |u1) with equal sample counts (and
  // shapes, for pairs and triplets), labels in [0, classes) (classes 0: below kMaxClasses) or
  // in {0, 1} for pairs. Throws DataError naming the file and the problem.
  static Source open(const DataFiles& files, std::int64_t classes = 0);
  // A labelled source over an in-memory data set.
  static Source labelled(std::shared_ptr<const Dataset> data);

  Layout layout() const { return layout_; }
  std::int64_t samples() const { return arrays_[0]->samples(); }  // rows, pairs or triplets
  int arrays() const { return static_cast<int>(arrays_.size()); }
  const Rows& array(int k) const { return *arrays_[std::size_t(k)]; }
  std::span<const std::int32_t> labels() const { return labels_; }

  // Requires array k's samples to have `shape` (the input of the branch that reads it).
  void require_shape(int k, std::span<const std::int64_t> shape) const;

  // {kept, held out}: round(fraction * samples()) rows (pairs, triplets) held out, chosen by a
  // seeded shuffle, 0 < fraction < 1, both parts non-empty.
  std::pair<Source, Source> split(double fraction, std::uint64_t seed) const;

 private:
  Layout layout_ = Layout::labelled;
  std::vector<std::shared_ptr<const Rows>> arrays_;
  std::vector<std::string> names_;  // the files, for messages
  std::vector<std::int32_t> labels_;
};

// Samples with their classes (labelled sets, for classifiers).
struct ClassDraw {
  std::int64_t batch = 0, dim = 0;  // rows kept, floats per sample
  std::vector<std::int32_t> labels;
};
struct ClassBatch : ClassDraw {
  std::vector<float> samples;
};

// Seeded batches from a Source, which must outlive it. From a labelled set pairs and triplets
// are sampled by class (the Sampler); everything else walks the rows in a fresh seeded order
// each epoch. pairs() from triplets gives (anchor, positive, 1) and (anchor, negative, 0).
// As with the Sampler, the calls that take a RowRange draw the whole batch and write the kept
// rows' samples into the caller's storage; the others return all of it.
class Batches {
 public:
  Batches(const Source& source, std::uint64_t seed);
  Batches(Source&&, std::uint64_t) = delete;  // would dangle

  // labelled, pairs or triplets
  PairDraw pairs(std::int64_t batch, RowRange keep, std::span<float> left, std::span<float> right);
  PairBatch pairs(std::int64_t batch);
  // labelled or triplets
  TripletDraw triplets(std::int64_t batch, RowRange keep, std::span<float> anchor, std::span<float> positive,
                       std::span<float> negative);
  TripletBatch triplets(std::int64_t batch);
  // labelled
  ClassDraw classes(std::int64_t batch, RowRange keep, std::span<float> samples);
  ClassBatch classes(std::int64_t batch);

 private:
  std::int64_t next();  // the next row of the epoch order

  const Source& source_;
  std::optional<Sampler> sampler_;
  std::mt19937_64 rng_;
  std::vector<std::int64_t> order_;
  std::size_t at_ = 0;
};

}  // namespace rematch::data
