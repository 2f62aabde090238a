// A training run of a zoo model on Fashion-MNIST within a memory budget: what `rematch train`
// drives. The session profiles the model, plans the schedule for the budget (refusing an
// infeasible one with the least feasible budget before anything trains), samples seeded pair or
// triplet batches, steps, evaluates on the test set, and saves or resumes weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autodiff/trainer.hpp"
#include "models/data/fashion_mnist.hpp"
#include "models/data/sampling.hpp"
#include "models/zoo.hpp"

namespace rematch::models {

struct TrainConfig {
  ModelConfig model;
  std::size_t memory = 0;  // activation budget, bytes
  std::string solver = "optimal";
  autodiff::OptimizerConfig optimizer;
  std::string data_dir = data::kFashionMnistDir;
  std::uint64_t data_seed = 7;
  int eval_batches = 4;    // test batches of model.batch pairs for the verification metrics
  autodiff::ProfileOptions profile;
  std::string resume;      // weight file to start from
  // Data parallelism: this process trains on slice `shard` of `shards` equal slices of every
  // global batch (model.batch samples, the same batches as a one-process run with the seed), and
  // `exchange` (not owned) averages the gradients over the processes.
  int shard = 0, shards = 1;
  autodiff::GradientExchange* exchange = nullptr;
};

struct Evaluation {
  double auc = 0;       // ROC AUC of pair distances (same class = positive)
  double accuracy = 0;  // verification accuracy at the best distance threshold
  double threshold = 0;
  std::int64_t pairs = 0;
};

class TrainingSession {
 public:
  // Throws InfeasibleBudget, data::DataError, CheckpointError or std::invalid_argument.
  explicit TrainingSession(const TrainConfig& config);

  const autodiff::Trainer& trainer() const { return *trainer_; }
  autodiff::JoinModel& model() { return *model_; }
  const Graph& graph() const { return trainer_->graph(); }
  const Solution& plan() const { return trainer_->plan(); }
  std::size_t parameter_bytes() { return parameters_.in_use(); }
  // Floating-point work of this process's share of a step without recomputation (forward and
  // backward of every branch): the "useful" flops that GFLOP/s figures count.
  double step_flops() const { return step_flops_; }
  // Store-all's makespan and peak on the profiled graph, for overhead figures.
  double store_all_makespan() const { return store_all_makespan_; }
  double store_all_peak() const { return store_all_peak_; }

  autodiff::StepResult step();
  Evaluation evaluate();
  void save(const std::string& path);

 private:
  autodiff::Batch next_batch();
  int shard_rows() const { return config_.model.batch / config_.shards; }

  // In construction order: the plan is made (and an infeasible budget refused) before the
  // data is read.
  TrainConfig config_;
  autodiff::Arena parameters_{"parameters"};
  std::unique_ptr<autodiff::JoinModel> model_;
  std::unique_ptr<autodiff::Trainer> trainer_;
  data::Dataset train_, test_;
  data::Sampler sampler_;
  double step_flops_ = 0, store_all_makespan_ = 0, store_all_peak_ = 0;
};

}  // namespace rematch::models
