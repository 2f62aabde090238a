// Epochs of ragged sequence data (models/data/ragged.hpp) as batches of length buckets, for the
// SequenceTrainer (docs/sequences.md). The layouts are those of .npy samples (data/source.hpp):
//   labelled  one ragged array with classes: pairs and triplets are drawn by class, each
//             sequence anchoring one tuple per epoch (a pair is similar with probability 1/2);
//             a classifier reads each sequence once per epoch;
//   pairs     two ragged arrays and 1/0 labels;   triplets  three ragged arrays (A, P, N).
// A tuple belongs to the bucket of its longest member. Each epoch shuffles every bucket's tuples,
// cuts them into batches (a bucket's last, incomplete batch is filled with tuples drawn again
// from the same bucket) and shuffles the order of the batches; all draws are seeded.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "models/data/ragged.hpp"
#include "models/data/source.hpp"
#include "models/model_file.hpp"
#include "models/sequences.hpp"

namespace rematch::models {

struct SequenceDataFiles {
  data::Layout layout = data::Layout::labelled;
  std::vector<std::string> values, offsets;  // one pair per array, in data::DataFiles' order
  std::string labels;                        // labelled: classes; pairs: 1/0; triplets: none
};

struct SequenceData {
  data::Layout layout = data::Layout::labelled;
  std::vector<data::RaggedArray> arrays;
  std::vector<std::int64_t> labels;

  // Opens and checks the files (equal sequence counts and channels, one label per tuple, pair
  // labels 0 or 1); throws data::DataError naming the file and the problem.
  static SequenceData open(const SequenceDataFiles& files);
  std::int64_t tuples() const { return arrays.front().sequences(); }
  std::vector<std::int64_t> lengths() const;  // of every sequence of every array
};

struct PlannedBatch {
  int bucket = 0;
  std::vector<std::vector<std::int64_t>> rows;  // [branch][row]: sequence index in its array
  std::vector<float> targets;
};

class SequenceEpochs {
 public:
  // Throws std::invalid_argument when the layout does not suit the task (or the model's input
  // channels), or a sequence is longer than the last edge.
  SequenceEpochs(const SequenceData& data, const ModelDescription& model,
                 std::vector<std::int64_t> edges, std::int64_t batch, std::uint64_t seed);
  SequenceEpochs(SequenceData&&, const ModelDescription&, std::vector<std::int64_t>, std::int64_t,
                 std::uint64_t) = delete;  // would dangle

  const std::vector<std::int64_t>& edges() const { return edges_; }
  std::vector<PlannedBatch> next_epoch();
  // The batch's values, padded to its bucket's length, with the rows' lengths.
  SequenceBatch load(const PlannedBatch& planned) const;

 private:
  std::int64_t draw(std::int64_t n);  // uniform in [0, n)
  std::vector<std::int64_t> tuple(std::int64_t i, std::vector<float>& target);

  const SequenceData& data_;
  Task task_;
  bool cosine_;
  int branches_;
  std::vector<std::int64_t> edges_;
  std::int64_t batch_;
  std::mt19937_64 rng_;
  std::vector<std::vector<std::int64_t>> by_class_;
};

// How many of an epoch's batches fall in each bucket.
std::vector<std::int64_t> batches_per_bucket(const std::vector<PlannedBatch>& epoch, int buckets);

// The epoch's time and peak predicted before it runs: at most `most` representative buckets
// (representatives()), each timed over `rounds` rounds (one batch of each per round, in turn, so
// they see the caches a mixed epoch leaves; the median is kept) on a batch of the epoch itself,
// loaded as the epoch loads it, without the optimizer update; the prediction is the
// batch-weighted sum. The peak is the largest planned peak over the epoch's buckets.
struct EpochPrediction {
  std::vector<Representative> representatives;
  std::vector<double> step_seconds;  // per representative
  double seconds = 0;
  double peak = 0;  // bytes
};
EpochPrediction predict_epoch(SequenceTrainer& trainer, const SequenceEpochs& epochs,
                              const std::vector<PlannedBatch>& epoch, int most = 10, int rounds = 3);

}  // namespace rematch::models
