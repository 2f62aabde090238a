// What a model is fed and how it is scored, shared by training sessions and `rematch evaluate`.
//
// Inputs: Fashion-MNIST images reach a branch through to_input (784 features, or 28 channels x
// 28 for a sequence branch); .npy samples are fed as stored, so their shape must be the branch's
// input exactly: (features,) or (channels, length), channel-major.
// Scores: pair and triplet models by verification over pairs (ROC AUC of the distances, accuracy
// at the best threshold); classifiers by top-1 accuracy.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "autodiff/model.hpp"
#include "models/data/source.hpp"
#include "models/model_file.hpp"
#include "models/zoo.hpp"

namespace rematch::models {

struct Evaluation {
  double auc = 0;       // ROC AUC of pair distances (same class = positive); 0 for a classifier
  double accuracy = 0;  // verification accuracy at the best distance threshold, or top-1 accuracy
  double threshold = 0;
  std::int64_t pairs = 0;  // pairs scored, or samples classified
};

// The sample shape a branch reads: (features,) or (channels, length).
std::vector<std::int64_t> input_shape(const TensorDims& dims);

// How a batch of samples becomes a branch's input: a Fashion-MNIST image layout (to_input), or
// none: the samples as stored. to_branch_input rewrites n samples in place as the input.
using InputFeed = std::optional<InputLayout>;
void to_branch_input(const InputFeed& feed, std::span<float> samples, std::int64_t n);

// Per branch, the feed of `source`'s samples. `fashion`: the source is Fashion-MNIST's images;
// otherwise the .npy arrays the branches read must have their input's shape (DataError naming
// the file otherwise). Also refuses a layout the task cannot use (a classifier on pairs, a
// triplet model on pairs).
std::vector<InputFeed> input_feeds(const ModelDescription& model, const data::Source& source, bool fashion);

// Branch `branch`'s encoder on exactly `batch` rows of input: its output rows.
using EmbedFn = std::function<std::vector<float>(int branch, std::span<const float> inputs)>;

// The loss `loss` (its kind and margin; `targets` in place of its own) gives `batch` rows of
// plain branch outputs, one row-major batch x values vector per branch: what a training step
// on the same outputs reports.
double batch_loss(const autodiff::LossHead& loss, const std::vector<std::vector<float>>& outputs,
                  std::vector<float> targets, std::int64_t batch);

// Scores `model` on `test`. Labelled sets for pair and triplet models: `batches` batches of
// pairs sampled by class with `seed` (batches <= 0: as many pairs as samples). Explicit pairs or triplets, and classifiers: the rows in
// file order, all of them, or the first batches * batch when batches > 0.
Evaluation evaluate(const ModelDescription& description, const autodiff::JoinModel& model,
                    const std::vector<InputFeed>& feeds, const data::Source& test, std::int64_t batch,
                    int batches, std::uint64_t seed, const EmbedFn& embed);

}  // namespace rematch::models
