#include "models/training.hpp"

#include "models/budget.hpp"
#include "models/checkpoint.hpp"

namespace rematch::models {
namespace {

// This process's slice of the global batch: the batch its model is built for.
std::int64_t shard_batch(const TrainConfig& c) {
  if (c.shards < 1 || c.shard < 0 || c.shard >= c.shards) {
    throw std::invalid_argument("shard " + std::to_string(c.shard) + " of " + std::to_string(c.shards));
  }
  if (c.model.batch % c.shards != 0) {
    throw std::invalid_argument("--batch " + std::to_string(c.model.batch) +
                                " is not a multiple of the " + std::to_string(c.shards) +
                                " processes");
  }
  return c.model.batch / c.shards;
}

std::unique_ptr<autodiff::JoinModel> built(const TrainConfig& c, const ModelDescription& m,
                                           const std::vector<std::string>& names, autodiff::Arena& parameters) {
  auto model = build(m, shard_batch(c), c.model.seed, parameters);
  if (!c.resume.empty()) load_weights(c.resume, names, *model);
  return model;
}

std::unique_ptr<autodiff::Trainer> planned(const TrainConfig& c, autodiff::JoinModel& model,
                                           autodiff::Arena& parameters) {
  autodiff::TrainerOptions options;
  options.activation_budget = c.memory;
  options.solve.solver = c.solver;
  options.solve.table_budget_bytes =
      planning_table_budget(c, double(parameters.in_use()), options.solve.table_budget_bytes);
  options.optimizer = c.optimizer;
  options.profile = c.profile;
  options.activations = c.activations;
  options.exchange = c.exchange;
  return std::make_unique<autodiff::Trainer>(model, parameters, options);
}

bool fashion(const TrainConfig& c) { return c.data.arrays.empty(); }

std::int64_t label_limit(const ModelDescription& m) { return m.task == Task::classifier ? m.classes : 0; }

data::Source training_source(const TrainConfig& c, const ModelDescription& m) {
  if (fashion(c)) {
    if (!c.test.arrays.empty() || c.split > 0) throw data::DataError("--test-* and --split need --data (or --pairs, --triplets)");
    return data::Source::labelled(std::make_shared<const data::Dataset>(data::load_fashion_mnist(c.data_dir, data::Split::train)));
  }
  if (!c.test.arrays.empty() && c.split > 0) throw data::DataError("give a held-out set (--test-*) or --split, not both");
  data::Source all = data::Source::open(c.data, label_limit(m));
  return c.split > 0 ? all.split(c.split, c.data_seed + 2).first : std::move(all);
}

std::optional<data::Source> held_out(const TrainConfig& c, const ModelDescription& m) {
  if (fashion(c)) {
    return data::Source::labelled(std::make_shared<const data::Dataset>(data::load_fashion_mnist(c.data_dir, data::Split::test)));
  }
  // The same seeded split as the training part, so the parts are complementary.
  if (c.split > 0) return data::Source::open(c.data, label_limit(m)).split(c.split, c.data_seed + 2).second;
  if (!c.test.arrays.empty()) return data::Source::open(c.test, label_limit(m));
  return std::nullopt;
}

}  // namespace

TrainingSession::TrainingSession(const TrainConfig& config)
    : config_(config),
      description_(load_model(config.model.model, config.model)),
      names_(parameter_names(description_)),
      model_(built(config, description_, names_, parameters_)),
      trainer_(planned(config, *model_, parameters_)),
      train_(training_source(config, description_)),
      test_(held_out(config, description_)),
      feeds_(input_feeds(description_, train_, fashion(config))),
      batches_(train_, config.data_seed) {
  if (test_) input_feeds(description_, *test_, fashion(config));
  for (int j = 0; j < model_->branches(); ++j) {
    const autodiff::Encoder& e = model_->encoder_of(j);
    for (int i = 0; i < e.stages(); ++i) step_flops_ += e.forward_flops(i) + e.backward_flops(i);
  }
  executed_step_flops_ = autodiff::executed_flops(*model_, plan().ops);
  const Solution store_all = solve(graph(), 1e300, {.solver = "store-all"});
  store_all_makespan_ = store_all.makespan;
  store_all_peak_ = store_all.peak;
}

autodiff::Batch TrainingSession::next_batch() {
  // Every process draws the whole global batch (so the sampler's state stays that of a
  // one-process run) and keeps its slice.
  const std::int64_t n = shard_rows();
  return drawn(batches_, std::int64_t(config_.shard) * n, n);
}

// The sampler writes each input's rows once, into the aligned storage a step takes as its input
// tensor (autodiff::InputRows), and the feed rewrites them there.
autodiff::Batch TrainingSession::drawn(data::Batches& batches, std::int64_t first, std::int64_t n) {
  const std::int64_t global = config_.model.batch;
  const data::RowRange keep{first, n};
  autodiff::Batch batch;
  for (int j = 0; j < model_->branches(); ++j) {
    batch.inputs.emplace_back(std::size_t(n * description_.input(j).values()), kernels::heap_allocator(),
                              kernels::Uninitialised{});
  }
  auto in = [&](int j) { return batch.inputs[std::size_t(j)].span(); };
  if (description_.task == Task::classifier) {
    const data::ClassDraw c = batches.classes(global, keep, in(0));
    batch.targets.assign(c.labels.begin(), c.labels.end());
  } else if (description_.task == Task::triplets) {
    batches.triplets(global, keep, in(0), in(1), in(2));
  } else {
    batch.targets = batches.pairs(global, keep, in(0), in(1)).similar;
    if (model_->loss().kind() == autodiff::LossKind::cosine) {
      for (float& t : batch.targets) t = t > 0 ? 1.0f : -1.0f;
    }
  }
  for (int j = 0; j < model_->branches(); ++j) to_branch_input(feeds_[std::size_t(j)], in(j), n);
  return batch;
}

autodiff::StepResult TrainingSession::step() { return trainer_->step(next_batch()); }

std::vector<float> TrainingSession::embed_global(int branch, std::span<const float> inputs) {
  const std::size_t slice = inputs.size() / std::size_t(config_.model.batch / shard_rows());
  std::vector<float> out;
  for (std::size_t first = 0; first < inputs.size(); first += slice) {
    const std::vector<float> part = trainer_->embed(branch, inputs.subspan(first, slice));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

Evaluation TrainingSession::evaluate() {
  // Fixed pairs of the held-out set: the same seed every evaluation, so runs compare, and the
  // same whatever the number of processes: batches of the global size, embedded in slices of
  // the size this process's model takes.
  const EmbedFn embed = [&](int branch, std::span<const float> inputs) { return embed_global(branch, inputs); };
  return models::evaluate(description_, *model_, feeds_, *test_, config_.model.batch, config_.eval_batches,
                          config_.data_seed + 1, embed);
}

double TrainingSession::held_out_loss() {
  const std::int64_t global = config_.model.batch;
  const std::int64_t count = config_.eval_batches > 0 ? config_.eval_batches : (test_->samples() + global - 1) / global;
  data::Batches held_out(*test_, config_.data_seed + 1);
  double sum = 0;
  for (std::int64_t b = 0; b < count; ++b) {
    autodiff::Batch batch = drawn(held_out, 0, global);
    std::vector<std::vector<float>> outputs;
    for (int j = 0; j < model_->branches(); ++j) outputs.push_back(embed_global(j, batch.inputs[std::size_t(j)].span()));
    sum += batch_loss(model_->loss(), outputs, std::move(batch.targets), global);
  }
  return sum / double(count);
}

void TrainingSession::save(const std::string& path) { save_weights(path, names_, *model_); }

}  // namespace rematch::models
