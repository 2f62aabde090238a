// Training on sequences of varying length within one activation budget (docs/sequences.md).
//
// Sequences are grouped into length buckets; a batch holds sequences of one bucket, padded (with
// zeros, masked: autodiff/sequence_mask.hpp) to the bucket's upper edge. Each bucket has its own
// runtime model (the model file's inputs at the bucket's length, every bucket sharing one set of
// weights), its own measured sizes, and its own schedule under the same budget, solved once when
// the trainer is made. Stage times are measured at a few bucket lengths and fitted as linear
// functions of the length (what conv1d costs); the fit's error at the other buckets is reported.
//
// Representative iterations (after SeqPoints, Pati et al.): from how many batches of an epoch
// fall in each bucket, at most `most` buckets with weights stand for the epoch; timing one step
// of each predicts the epoch's time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autodiff/arena.hpp"
#include "autodiff/executor.hpp"
#include "autodiff/optimizer.hpp"
#include "autodiff/profiler.hpp"
#include "models/model_file.hpp"
#include "scheduler/solver.hpp"

namespace rematch::models {

// Bucket upper edges at the quantiles k / buckets (k = 1..buckets) of `lengths`, without
// repeats; the last edge is the longest length. Throws std::invalid_argument for no lengths or
// buckets < 1.
std::vector<std::int64_t> quantile_edges(std::vector<std::int64_t> lengths, int buckets);
// "64,128,512": increasing positive edges; throws std::invalid_argument naming the problem.
std::vector<std::int64_t> parse_edges(const std::string& text);
// The first bucket whose edge is >= length, or -1 when the length exceeds the last edge.
int bucket_of(std::span<const std::int64_t> edges, std::int64_t length);

// The model file's document with every sequence input at `length` positions, parsed.
ModelDescription at_length(const nlohmann::json& document, const std::string& source,
                           std::int64_t length);
// Throws ModelFileError (naming the layer) unless the model takes sequences of any length to
// embeddings of one size with padding masked exactly: inputs are sequences; until a
// global_avg_pool / global_max_pool, only conv1d with 'same' padding, relu, gelu and residual
// blocks of those (no pooling window, flatten, layer norm or dropout, which would mix padding
// in); after it, any feature layer.
void require_varying_length(const ModelDescription& model);

// t(length) = a + b * length, least squares.
struct LinearFit {
  double a = 0, b = 0;
  double at(double length) const { return a + b * length; }
};
LinearFit fit_line(std::span<const double> x, std::span<const double> y);

// Per-stage times of a model as functions of the length.
struct LengthFit {
  std::vector<std::int64_t> lengths;          // where the times were measured
  std::vector<std::vector<LinearFit>> fw, bw;  // [branch][stage]
  LinearFit loss;
  // `sizes` (a graph measured at `length`) with the fitted times at that length.
  Graph at(Graph sizes, std::int64_t length) const;
};
LengthFit fit_lengths(std::span<const std::int64_t> lengths, std::span<const Graph> graphs);

// One batch of a bucket: per branch, batch x channels x length values (NCW rows, zero past each
// row's length) and each row's real length; the loss targets.
struct SequenceBatch {
  std::vector<std::vector<float>> inputs;
  std::vector<std::vector<std::int64_t>> lengths;
  std::vector<float> targets;
};

struct SequenceTrainerOptions {
  std::size_t activation_budget = 0;  // bytes
  SolveOptions solve;
  autodiff::OptimizerConfig optimizer;
  autodiff::ProfileOptions profile;   // every bucket is profiled with these
  autodiff::Precision activations = autodiff::Precision::fp32;  // what steps keep between ops
  int fit_points = 3;                 // bucket lengths the times are measured and fitted at
  // Profiles per fitted length, keeping each time's minimum: a timing is only ever lengthened by
  // other work on the machine, and one slow stage would tilt the whole line.
  int fit_rounds = 2;
};

// A bucket's plan, and how well the fit predicted its measured times.
struct BucketPlan {
  std::int64_t length = 0;
  Graph measured;        // profiled at this length
  Graph graph;           // measured sizes, fitted times: what the plan was solved on
  Solution plan;
  bool fitted = false;   // one of the fit's lengths
  double fit_error = 0;  // |fitted - measured| / measured store-all step time
};

class SequenceTrainer {
 public:
  // bucket_lengths: increasing. Throws ModelFileError (require_varying_length), or
  // InfeasibleBudget naming the shortest bucket that does not fit, whose min_memory is the
  // least budget every bucket fits in, before any step.
  SequenceTrainer(const nlohmann::json& document, const std::string& source,
                  std::vector<std::int64_t> bucket_lengths, std::int64_t batch, std::uint64_t seed,
                  const SequenceTrainerOptions& options);
  ~SequenceTrainer();

  const ModelDescription& description() const { return description_; }
  std::int64_t batch() const { return batch_; }
  int buckets() const { return static_cast<int>(plans_.size()); }
  const BucketPlan& bucket(int b) const { return plans_[std::size_t(b)]; }
  const LengthFit& fit() const { return fit_; }
  autodiff::JoinModel& model(int b) { return *models_[std::size_t(b)]; }
  autodiff::Arena& activations() { return activations_; }
  autodiff::Arena& parameters() { return parameters_; }

  // Forward, loss and backward of bucket b's batch by `schedule` (its plan unless given);
  // gradients() then holds, per branch, the parameter gradients. No update.
  autodiff::StepResult compute(int b, SequenceBatch batch, const Schedule* schedule = nullptr);
  // compute by the plan with the optimizer update, each stage's parameters updated right after
  // the backward that completes their gradients (autodiff/stage_updates.hpp), as Trainer::step.
  autodiff::StepResult step(int b, SequenceBatch batch);
  std::vector<autodiff::Gradients>& gradients() { return grads_; }
  // Branch `branch`'s embeddings of bucket b's batch (rows of the inputs with their lengths).
  std::vector<float> embed(int b, int branch, std::span<const float> inputs,
                           std::vector<std::int64_t> lengths);

 private:
  class SharedParameters;
  autodiff::StepResult run(int b, SequenceBatch batch, const Schedule* schedule, bool update);
  ModelDescription description_;
  std::int64_t batch_;
  autodiff::Arena parameters_{"parameters"};
  autodiff::Arena activations_;
  std::shared_ptr<autodiff::SequenceLengths> lengths_;
  std::vector<std::unique_ptr<SharedParameters>> sources_;  // outlive the models
  std::vector<std::unique_ptr<autodiff::JoinModel>> models_;
  std::vector<BucketPlan> plans_;
  std::vector<std::unique_ptr<autodiff::Executor>> executors_;
  LengthFit fit_;
  std::vector<autodiff::Gradients> grads_;
  std::vector<autodiff::Optimizer> optimizers_;
  std::int64_t steps_ = 0;
};

// A bucket standing for `weight` batches of an epoch.
struct Representative {
  int bucket = 0;
  double weight = 0;
};
// At most `most` representatives of an epoch with batches[b] batches in bucket b (lengths
// increasing): every bucket with batches when they are few enough; otherwise the buckets are cut
// into `most` consecutive groups of about equal batch counts, each represented by its bucket
// nearest the group's batch-weighted mean length, with the group's batch count as weight.
std::vector<Representative> representatives(std::span<const std::int64_t> batches,
                                            std::span<const std::int64_t> lengths, int most = 10);

}  // namespace rematch::models
