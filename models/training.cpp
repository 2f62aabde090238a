#include "models/training.hpp"

#include <algorithm>

#include "models/checkpoint.hpp"
#include "models/data/metrics.hpp"

namespace rematch::models {
namespace {

// Fashion-MNIST images feed a branch reading 784 features (the pixels row by row) or a
// sequence of the 28 rows (28 channels x 28).
std::vector<InputLayout> fashion_layouts(const ModelDescription& m) {
  std::vector<InputLayout> out;
  for (int j = 0; j < int(m.branches.size()); ++j) {
    const TensorDims in = m.input(j);
    if (in == TensorDims{.features = kImageSide * kImageSide}) {
      out.push_back(InputLayout::pixels);
    } else if (in == TensorDims{.channels = kImageSide, .length = kImageSide}) {
      out.push_back(InputLayout::rows_as_sequence);
    } else {
      throw ModelFileError(m.source + ": branches[" + std::to_string(j) + "].input: Fashion-MNIST " +
                           "supplies 784 features or 28 channels x 28, the model reads " + to_string(in));
    }
  }
  return out;
}

std::unique_ptr<autodiff::JoinModel> built(const TrainConfig& c, const ModelDescription& m,
                                           autodiff::Arena& parameters) {
  auto model = build(m, c.model.batch, c.model.seed, parameters);
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
      description_(load_model(config.model.model, config.model)),
      layouts_(fashion_layouts(description_)),
      model_(built(config, description_, parameters_)),
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
  if (description_.task == Task::triplets) {
    data::TripletBatch t = sampler_.triplets(c.batch);
    int j = 0;
    for (auto* images : {&t.anchor, &t.positive, &t.negative}) {
      batch.inputs.push_back(to_input(layouts_[j++], std::move(*images), c.batch));
    }
    return batch;
  }
  data::PairBatch p = sampler_.pairs(c.batch);
  if (description_.task == Task::classifier) {
    for (std::int64_t s : p.left_index) batch.targets.push_back(float(train_.labels[s]));
    batch.inputs.push_back(to_input(layouts_[0], std::move(p.left), c.batch));
    return batch;
  }
  batch.inputs.push_back(to_input(layouts_[0], std::move(p.left), c.batch));
  batch.inputs.push_back(to_input(layouts_[1], std::move(p.right), c.batch));
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
  if (description_.task == Task::classifier) return evaluate_classifier(sampler);
  const int right_branch = model_->branches() == 3 ? 0 : 1;
  std::vector<float> distances, similar;
  for (int b = 0; b < config_.eval_batches; ++b) {
    data::PairBatch p = sampler.pairs(c.batch);
    const auto left = trainer_->embed(0, to_input(layouts_[0], std::move(p.left), c.batch));
    const auto right = trainer_->embed(
        right_branch, to_input(layouts_[right_branch], std::move(p.right), c.batch));
    const auto d = model_->loss().distances(left, right, description_.embedding().features);
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

Evaluation TrainingSession::evaluate_classifier(data::Sampler& sampler) {
  const ModelConfig& c = config_.model;
  const std::int64_t classes = description_.classes;
  std::int64_t correct = 0, total = 0;
  for (int b = 0; b < config_.eval_batches; ++b) {
    data::PairBatch p = sampler.pairs(c.batch);
    const auto logits = trainer_->embed(0, to_input(layouts_[0], std::move(p.left), c.batch));
    for (std::int64_t s = 0; s < c.batch; ++s) {
      const float* row = logits.data() + s * classes;
      const auto top = std::max_element(row, row + classes) - row;
      correct += top == test_.labels[p.left_index[s]];
      ++total;
    }
  }
  Evaluation e;
  e.pairs = total;
  e.accuracy = total > 0 ? double(correct) / double(total) : 0.0;
  return e;
}

void TrainingSession::save(const std::string& path) { save_weights(path, config_.model, *model_); }

}  // namespace rematch::models
