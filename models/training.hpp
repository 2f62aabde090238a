// A training run of a zoo model or a model file within a memory budget: what `rematch train`
// drives. The session profiles the model, plans the schedule for the budget (refusing an
// infeasible one with the least feasible budget before anything trains), opens the data
// (Fashion-MNIST, or .npy files in one of the layouts of models/data/source.hpp), draws seeded
// batches, steps, evaluates on the held-out set, and saves or resumes weights (.npz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "autodiff/trainer.hpp"
#include "models/data/fashion_mnist.hpp"
#include "models/data/source.hpp"
#include "models/evaluation.hpp"
#include "models/model_file.hpp"
#include "models/zoo.hpp"

namespace rematch::models {

struct TrainConfig {
  ModelConfig model;       // model.model: a zoo name (sized by the other fields) or a model file
  std::size_t memory = 0;  // activation budget, bytes
  std::string solver = "optimal";
  autodiff::OptimizerConfig optimizer;
  std::string data_dir = data::kFashionMnistDir;  // Fashion-MNIST, used when `data` names no files
  data::DataFiles data;    // training samples (.npy); none: Fashion-MNIST's training set
  data::DataFiles test;    // held-out samples; none: Fashion-MNIST's test set, or `split`
  double split = 0;        // > 0: hold out this fraction of `data` instead
  std::uint64_t data_seed = 7;
  int eval_batches = 4;    // held-out batches of model.batch for the metrics
  autodiff::ProfileOptions profile;
  // What steps keep between ops: fp32, or bf16 at half the bytes (autodiff/stored.hpp).
  autodiff::Precision activations = autodiff::Precision::fp32;
  std::string resume;      // weight file to start from
  // Data parallelism: this process trains on slice `shard` of `shards` equal slices of every
  // global batch (model.batch samples, the same batches as a one-process run with the seed), and
  // `exchange` (not owned) averages the gradients over the processes.
  int shard = 0, shards = 1;
  autodiff::GradientExchange* exchange = nullptr;
};

class TrainingSession {
 public:
  // Throws InfeasibleBudget, data::DataError, CheckpointError, ModelFileError or
  // std::invalid_argument.
  explicit TrainingSession(const TrainConfig& config);

  const autodiff::Trainer& trainer() const { return *trainer_; }
  autodiff::JoinModel& model() { return *model_; }
  const ModelDescription& description() const { return description_; }
  const Graph& graph() const { return trainer_->graph(); }
  const Solution& plan() const { return trainer_->plan(); }
  std::size_t parameter_bytes() { return parameters_.in_use(); }
  // Floating-point work of this process's share of a step without recomputation (forward and
  // backward of every branch): the "useful" flops that GFLOP/s figures count.
  double step_flops() const { return step_flops_; }
  // The same with the plan's recomputed forwards counted again: what the machine runs per step.
  double executed_step_flops() const { return executed_step_flops_; }
  // Store-all's makespan and peak on the profiled graph, for overhead figures.
  double store_all_makespan() const { return store_all_makespan_; }
  double store_all_peak() const { return store_all_peak_; }
  bool has_test_set() const { return test_.has_value(); }

  autodiff::StepResult step();
  Evaluation evaluate();  // on the held-out set (has_test_set())
  // The mean training loss on fixed held-out batches (has_test_set()): eval_batches batches of
  // model.batch drawn from the held-out set as training draws its batches, from the same seed at
  // every call, so successive calls differ only by the weights: a run's loss curve without the
  // batch-to-batch spread of the per-step losses. Inference (no dropout); leaves the training
  // batches' sequence as it was.
  double held_out_loss();
  void save(const std::string& path);

 private:
  autodiff::Batch next_batch();
  // The next global batch of `batches`, rows [first, first + n) of it.
  autodiff::Batch drawn(data::Batches& batches, std::int64_t first, std::int64_t n);
  // Branch `branch`'s encoder on a global batch, embedded in slices of this process's batch.
  std::vector<float> embed_global(int branch, std::span<const float> inputs);
  int shard_rows() const { return config_.model.batch / config_.shards; }

  // In construction order: the plan is made (and an infeasible budget refused) before the
  // data is read.
  TrainConfig config_;
  ModelDescription description_;
  std::vector<std::string> names_;  // of the parameter tensors, in the weight files
  autodiff::Arena parameters_{"parameters"};
  std::unique_ptr<autodiff::JoinModel> model_;
  std::unique_ptr<autodiff::Trainer> trainer_;
  data::Source train_;
  std::optional<data::Source> test_;
  std::vector<InputFeed> feeds_;  // per branch: how a sample becomes its input
  data::Batches batches_;
  double step_flops_ = 0, executed_step_flops_ = 0, store_all_makespan_ = 0, store_all_peak_ = 0;
};

}  // namespace rematch::models
