#include "models/training.hpp"

#include "models/checkpoint.hpp"
#include "models/data/metrics.hpp"

namespace rematch::models {
namespace {

std::unique_ptr<autodiff::JoinModel> built(const TrainConfig& c, autodiff::Arena& parameters) {
  auto model = build_model(c.model, parameters);
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
  const ModelConfig& c = config_.model;
  autodiff::Batch batch;
  if (model_->branches() == 3) {
    data::TripletBatch t = sampler_.triplets(c.batch);
    for (auto* images : {&t.anchor, &t.positive, &t.negative}) {
      batch.inputs.push_back(to_input(InputLayout::pixels, std::move(*images), c.batch));
    }
    return batch;
  }
  data::PairBatch p = sampler_.pairs(c.batch);
  batch.inputs.push_back(to_input(input_layout(c, 0), std::move(p.left), c.batch));
  batch.inputs.push_back(to_input(input_layout(c, 1), std::move(p.right), c.batch));
  batch.targets = p.similar;
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
  for (int b = 0; b < config_.eval_batches; ++b) {
    data::PairBatch p = sampler.pairs(c.batch);
    const auto left = trainer_->embed(0, to_input(input_layout(c, 0), std::move(p.left), c.batch));
    const auto right = trainer_->embed(
        right_branch, to_input(input_layout(c, right_branch), std::move(p.right), c.batch));
    const auto d = model_->loss().distances(left, right, c.embedding);
    distances.insert(distances.end(), d.begin(), d.end());
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
