#include "models/training.hpp"

#include "models/checkpoint.hpp"
#include "models/data/metrics.hpp"

namespace rematch::models {
namespace {

// The model of one process: its slice of the global batch.
ModelConfig shard_model(const TrainConfig& c) {
  if (c.shards < 1 || c.shard < 0 || c.shard >= c.shards) {
    throw std::invalid_argument("shard " + std::to_string(c.shard) + " of " + std::to_string(c.shards));
  }
  if (c.model.batch % c.shards != 0) {
    throw std::invalid_argument("--batch " + std::to_string(c.model.batch) +
                                " is not a multiple of the " + std::to_string(c.shards) +
                                " processes");
  }
  ModelConfig m = c.model;
  m.batch /= c.shards;
  return m;
}

// Rows [first, first + count) of a row-major matrix of `cols` columns.
std::vector<float> rows(const std::vector<float>& m, std::int64_t cols, std::int64_t first,
                        std::int64_t count) {
  return {m.begin() + first * cols, m.begin() + (first + count) * cols};
}

std::unique_ptr<autodiff::JoinModel> built(const TrainConfig& c, autodiff::Arena& parameters) {
  auto model = build_model(shard_model(c), parameters);
  if (!c.resume.empty()) load_weights(c.resume, c.model, *model);
  return model;
}

std::unique_ptr<autodiff::Trainer> planned(const TrainConfig& c, autodiff::JoinModel& model,
                                           autodiff::Arena& parameters) {
  autodiff::TrainerOptions options;
  options.activation_budget = c.memory;
  options.solve.solver = c.solver;
  options.optimizer = c.optimizer;
  options.profile = c.profile;
  options.exchange = c.exchange;
  return std::make_unique<autodiff::Trainer>(model, parameters, options);
}

}  // namespace

TrainingSession::TrainingSession(const TrainConfig& config)
    : config_(config),
      model_(built(config, parameters_)),
      trainer_(planned(config, *model_, parameters_)),
      train_(data::load_fashion_mnist(config.data_dir, data::Split::train)),
      test_(data::load_fashion_mnist(config.data_dir, data::Split::test)),
      sampler_(train_, config.data_seed) {
  for (int j = 0; j < model_->branches(); ++j) {
    const autodiff::Encoder& e = model_->encoder_of(j);
    for (int i = 0; i < e.stages(); ++i) step_flops_ += e.forward_flops(i) + e.backward_flops(i);
  }
  const Solution store_all = solve(graph(), 1e300, {.solver = "store-all"});
  store_all_makespan_ = store_all.makespan;
  store_all_peak_ = store_all.peak;
}

autodiff::Batch TrainingSession::next_batch() {
  // Every process draws the whole global batch (so the sampler's state stays that of a
  // one-process run) and keeps its slice.
  const ModelConfig& c = config_.model;
  const std::int64_t n = shard_rows(), first = std::int64_t(config_.shard) * n;
  autodiff::Batch batch;
  if (model_->branches() == 3) {
    data::TripletBatch t = sampler_.triplets(c.batch);
    for (auto* images : {&t.anchor, &t.positive, &t.negative}) {
      batch.inputs.push_back(to_input(InputLayout::pixels, rows(*images, t.dim, first, n), n));
    }
    return batch;
  }
  data::PairBatch p = sampler_.pairs(c.batch);
  batch.inputs.push_back(to_input(input_layout(c, 0), rows(p.left, p.dim, first, n), n));
  batch.inputs.push_back(to_input(input_layout(c, 1), rows(p.right, p.dim, first, n), n));
  batch.targets = rows(p.similar, 1, first, n);
  if (model_->loss().kind() == autodiff::LossKind::cosine) {
    for (float& t : batch.targets) t = t > 0 ? 1.0f : -1.0f;
  }
  return batch;
}

autodiff::StepResult TrainingSession::step() { return trainer_->step(next_batch()); }

Evaluation TrainingSession::evaluate() {
  const ModelConfig& c = config_.model;
  // Fixed pairs of the test set: the same seed every evaluation, so runs compare.
  data::Sampler sampler(test_, config_.data_seed + 1);
  // A pair's right side goes through the second encoder (cross-modal) or the shared one.
  const int right_branch = model_->branches() == 3 ? 0 : 1;
  std::vector<float> distances, similar;
  // The same test pairs whatever the number of processes: batches of the global size, embedded
  // in slices of the size this process's model takes.
  const std::int64_t n = shard_rows();
  for (int b = 0; b < config_.eval_batches; ++b) {
    data::PairBatch p = sampler.pairs(c.batch);
    for (std::int64_t first = 0; first < c.batch; first += n) {
      const auto left =
          trainer_->embed(0, to_input(input_layout(c, 0), rows(p.left, p.dim, first, n), n));
      const auto right = trainer_->embed(
          right_branch, to_input(input_layout(c, right_branch), rows(p.right, p.dim, first, n), n));
      const auto d = model_->loss().distances(left, right, c.embedding);
      distances.insert(distances.end(), d.begin(), d.end());
    }
    similar.insert(similar.end(), p.similar.begin(), p.similar.end());
  }
  Evaluation e;
  e.pairs = static_cast<std::int64_t>(distances.size());
  e.auc = data::distance_auc(distances, similar);
  const data::Verification v = data::best_threshold_accuracy(distances, similar);
  e.accuracy = v.accuracy;
  e.threshold = v.threshold;
  return e;
}

void TrainingSession::save(const std::string& path) { save_weights(path, config_.model, *model_); }

}  // namespace rematch::models
