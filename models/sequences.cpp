#include "models/sequences.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <stdexcept>

#include "autodiff/stage_updates.hpp"
#include "autodiff/trainer.hpp"
#include "kernels/tensor.hpp"
#include "scheduler/simulator.hpp"

namespace rematch::models {

std::vector<std::int64_t> quantile_edges(std::vector<std::int64_t> lengths, int buckets) {
  if (lengths.empty()) throw std::invalid_argument("length buckets: no sequences");
  if (buckets < 1) throw std::invalid_argument("length buckets: the count must be >= 1");
  std::sort(lengths.begin(), lengths.end());
  const auto n = static_cast<std::int64_t>(lengths.size());
  std::vector<std::int64_t> edges;
  for (int k = 1; k <= buckets; ++k) {
    const std::int64_t at = (std::int64_t(k) * n + buckets - 1) / buckets - 1;
    const std::int64_t e = lengths[std::size_t(std::clamp<std::int64_t>(at, 0, n - 1))];
    if (edges.empty() || e > edges.back()) edges.push_back(e);
  }
  if (edges.back() != lengths.back()) edges.push_back(lengths.back());
  return edges;
}

std::vector<std::int64_t> parse_edges(const std::string& text) {
  std::vector<std::int64_t> edges;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v <= 0) {
      throw std::invalid_argument("bucket edges: expected positive integers separated by commas, got '" + item + "'");
    }
    if (!edges.empty() && v <= edges.back()) {
      throw std::invalid_argument("bucket edges must increase, got " + std::to_string(v) + " after " +
                                  std::to_string(edges.back()));
    }
    edges.push_back(v);
  }
  if (edges.empty()) throw std::invalid_argument("bucket edges: expected at least one edge");
  return edges;
}

int bucket_of(std::span<const std::int64_t> edges, std::int64_t length) {
  const auto it = std::lower_bound(edges.begin(), edges.end(), length);
  return it == edges.end() ? -1 : int(it - edges.begin());
}

ModelDescription at_length(const nlohmann::json& document, const std::string& source,
                           std::int64_t length) {
  nlohmann::json d = document;
  if (d.is_object() && d.contains("branches") && d["branches"].is_array()) {
    for (auto& b : d["branches"]) {
      if (b.is_object() && b.contains("input") && b["input"].is_object() && b["input"].contains("channels")) {
        b["input"]["length"] = length;
      }
    }
  }
  return parse_model_document(d, source);
}

namespace {

// Whether `layers` keep every position's value a function of the real positions only.
void require_masked(const ModelDescription& m, const std::vector<LayerSpec>& layers, bool& pooled) {
  for (const LayerSpec& s : layers) {
    if (pooled) return;
    switch (s.kind) {
      case LayerKind::conv1d:
        if (s.padding != kernels::Padding::same) {
          throw ModelFileError(m.source + ": " + s.path + ": sequences of varying length need 'same' padding");
        }
        break;
      case LayerKind::relu:
      case LayerKind::gelu: break;
      case LayerKind::residual: require_masked(m, s.body, pooled); break;
      case LayerKind::global_avg_pool:
      case LayerKind::global_max_pool: pooled = true; break;
      default:
        throw ModelFileError(m.source + ": " + s.path + ": " + to_string(s.kind) +
                             " before the global pool mixes padding into sequences of varying "
                             "length (expected conv1d, relu, gelu or residual until a "
                             "global_avg_pool or global_max_pool)");
    }
  }
}

}  // namespace

void require_varying_length(const ModelDescription& m) {
  for (const EncoderSpec& e : m.encoders) {
    if (!e.input.is_sequence()) {
      throw ModelFileError(m.source + ": encoders." + e.name + ": sequences of varying length need a "
                           "sequence input ({\"channels\": C, \"length\": L})");
    }
    bool pooled = false;
    require_masked(m, e.layers, pooled);
    if (!pooled) {
      throw ModelFileError(m.source + ": encoders." + e.name + ".layers: sequences of varying length "
                           "need a global_avg_pool or global_max_pool (the embedding must not depend "
                           "on the length)");
    }
  }
}

LinearFit fit_line(std::span<const double> x, std::span<const double> y) {
  const double n = double(x.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  const double det = n * sxx - sx * sx;
  if (x.size() < 2 || det <= 0) return {sy / std::max(n, 1.0), 0};
  const double b = (n * sxy - sx * sy) / det;
  return {(sy - b * sx) / n, b};
}

LengthFit fit_lengths(std::span<const std::int64_t> lengths, std::span<const Graph> graphs) {
  LengthFit f;
  f.lengths.assign(lengths.begin(), lengths.end());
  std::vector<double> x(lengths.begin(), lengths.end()), y(lengths.size());
  auto fit = [&](auto value) {
    for (std::size_t k = 0; k < graphs.size(); ++k) y[k] = value(graphs[k]);
    return fit_line(x, y);
  };
  const Graph& g0 = graphs.front();
  for (int j = 0; j < g0.num_branches(); ++j) {
    f.fw.emplace_back();
    f.bw.emplace_back();
    for (int i = 0; i < g0.branches[j].stages(); ++i) {
      f.fw.back().push_back(fit([&](const Graph& g) { return g.branches[j].fw[i]; }));
      f.bw.back().push_back(fit([&](const Graph& g) { return g.branches[j].bw[i]; }));
    }
  }
  f.loss = fit([](const Graph& g) { return g.loss.time; });
  return f;
}

Graph LengthFit::at(Graph g, std::int64_t length) const {
  // A fitted time is never taken below a small positive floor: the solver needs times > 0.
  auto positive = [](double t) { return std::max(t, 1e-9); };
  for (int j = 0; j < g.num_branches(); ++j) {
    for (int i = 0; i < g.branches[j].stages(); ++i) {
      g.branches[j].fw[i] = positive(fw[j][i].at(double(length)));
      g.branches[j].bw[i] = positive(bw[j][i].at(double(length)));
    }
  }
  g.loss.time = positive(loss.at(double(length)));
  return g;
}

namespace {

// `a` with every time replaced by the smaller of a's and b's (the same model measured twice).
Graph fastest(Graph a, const Graph& b) {
  for (int j = 0; j < a.num_branches(); ++j) {
    for (int i = 0; i < a.branches[j].stages(); ++i) {
      a.branches[j].fw[i] = std::min(a.branches[j].fw[i], b.branches[j].fw[i]);
      a.branches[j].bw[i] = std::min(a.branches[j].bw[i], b.branches[j].bw[i]);
    }
  }
  a.loss.time = std::min(a.loss.time, b.loss.time);
  return a;
}

}  // namespace

// Every bucket model's parameters are the first model's: the first records its allocations, the
// others are handed the same blocks in the same order (the builder allocates a model's parameters
// in a fixed order whose sizes do not depend on the length).
class SequenceTrainer::SharedParameters final : public kernels::Allocator {
 public:
  struct Blocks {
    std::vector<std::pair<void*, std::size_t>> list;
  };
  SharedParameters(kernels::Allocator& owner, std::shared_ptr<Blocks> blocks, bool records)
      : owner_(owner), blocks_(std::move(blocks)), records_(records) {}

  void* allocate(std::size_t bytes) override {
    if (records_) {
      void* p = owner_.allocate(bytes);
      blocks_->list.emplace_back(p, bytes);
      return p;
    }
    if (next_ >= blocks_->list.size() || blocks_->list[next_].second != bytes) {
      throw std::logic_error("sequence models: a bucket's parameters differ from the first bucket's");
    }
    return blocks_->list[next_++].first;
  }
  void deallocate(void* p, std::size_t bytes) noexcept override {
    if (records_) owner_.deallocate(p, bytes);
  }

 private:
  kernels::Allocator& owner_;
  std::shared_ptr<Blocks> blocks_;
  bool records_;
  std::size_t next_ = 0;
};

SequenceTrainer::~SequenceTrainer() {
  // Models before the allocators their tensors release into.
  executors_.clear();
  models_.clear();
}

SequenceTrainer::SequenceTrainer(const nlohmann::json& document, const std::string& source,
                                 std::vector<std::int64_t> bucket_lengths, std::int64_t batch,
                                 std::uint64_t seed, const SequenceTrainerOptions& options)
    : batch_(batch),
      activations_("activations", options.activation_budget),
      lengths_(std::make_shared<autodiff::SequenceLengths>()) {
  if (options.activation_budget == 0) throw InputError("the activation budget must be positive");
  if (bucket_lengths.empty() || !std::is_sorted(bucket_lengths.begin(), bucket_lengths.end()) ||
      std::adjacent_find(bucket_lengths.begin(), bucket_lengths.end()) != bucket_lengths.end()) {
    throw std::invalid_argument("bucket lengths must be a non-empty increasing list");
  }
  description_ = at_length(document, source, bucket_lengths.front());
  require_varying_length(description_);

  auto blocks = std::make_shared<SharedParameters::Blocks>();
  for (std::size_t b = 0; b < bucket_lengths.size(); ++b) {
    sources_.push_back(std::make_unique<SharedParameters>(parameters_, blocks, b == 0));
    models_.push_back(build(at_length(document, source, bucket_lengths[b]), batch, seed,
                            *sources_.back(), lengths_));
  }

  // Times measured at fit_points lengths spread over the buckets, sizes at every bucket.
  const int n = int(bucket_lengths.size());
  const int points = std::clamp(options.fit_points, 1, n);
  std::vector<bool> fitted(std::size_t(n), false);
  for (int k = 0; k < points; ++k) fitted[std::size_t(points == 1 ? n - 1 : k * (n - 1) / (points - 1))] = true;
  std::vector<std::int64_t> fit_at;
  std::vector<Graph> fit_graphs;
  plans_.resize(std::size_t(n));
  for (int b = 0; b < n; ++b) {
    BucketPlan& p = plans_[std::size_t(b)];
    p.length = bucket_lengths[std::size_t(b)];
    p.fitted = fitted[std::size_t(b)];
    models_[std::size_t(b)]->set_activation_precision(options.activations);
    p.measured = autodiff::profile(*models_[std::size_t(b)], options.profile);
    for (int round = 1; p.fitted && round < options.fit_rounds; ++round) {
      p.measured = fastest(p.measured, autodiff::profile(*models_[std::size_t(b)], options.profile));
    }
    if (p.fitted) {
      fit_at.push_back(p.length);
      fit_graphs.push_back(p.measured);
    }
  }
  fit_ = fit_lengths(fit_at, fit_graphs);

  double least = 0;
  int first_infeasible = -1;
  for (int b = 0; b < n; ++b) {
    BucketPlan& p = plans_[std::size_t(b)];
    p.graph = fit_.at(p.measured, p.length);
    const double measured = p.measured.store_all_time();
    p.fit_error = std::abs(p.graph.store_all_time() - measured) / measured;
    try {
      p.plan = solve(p.graph, double(options.activation_budget), options.solve);
    } catch (const InfeasibleBudget& e) {
      least = std::max(least, e.min_memory);
      if (first_infeasible < 0) first_infeasible = b;
    }
  }
  // Sizes grow with the length, so the infeasible buckets are the longest ones.
  if (first_infeasible >= 0) {
    throw InfeasibleBudget(
        "the length bucket " + std::to_string(plans_[std::size_t(first_infeasible)].length) +
            " (and every longer one) does not fit in " +
            autodiff::format_bytes(double(options.activation_budget)) + "; the least budget all " +
            std::to_string(n) + " buckets fit in is " + autodiff::format_bytes(least),
        least);
  }
  for (int b = 0; b < n; ++b) {
    executors_.push_back(std::make_unique<autodiff::Executor>(*models_[std::size_t(b)],
                                                              plans_[std::size_t(b)].graph, activations_));
    executors_.back()->check(plans_[std::size_t(b)].plan.ops);
  }
  autodiff::JoinModel& first = *models_.front();
  for (int j = 0; j < first.branches(); ++j) grads_.push_back(first.encoder_of(j).make_gradients(parameters_));
  for (int e = 0; e < first.encoders(); ++e) {
    optimizers_.emplace_back(options.optimizer, first.encoder(e).parameters(), parameters_);
  }
}

autodiff::StepResult SequenceTrainer::compute(int b, SequenceBatch batch, const Schedule* schedule) {
  return run(b, std::move(batch), schedule, false);
}

autodiff::StepResult SequenceTrainer::run(int b, SequenceBatch batch, const Schedule* schedule, bool update) {
  if (b < 0 || b >= buckets()) throw std::invalid_argument("no bucket " + std::to_string(b));
  autodiff::JoinModel& m = *models_[std::size_t(b)];
  const std::int64_t length = plans_[std::size_t(b)].length;
  if (int(batch.inputs.size()) != m.branches() || int(batch.lengths.size()) != m.branches()) {
    throw std::invalid_argument("sequence batch: one input and one length list per branch expected");
  }
  std::vector<autodiff::Tensor> inputs;
  for (int j = 0; j < m.branches(); ++j) {
    const autodiff::BlockShape& shape = m.encoder_of(j).input_shape(0);
    if (std::int64_t(batch.inputs[j].size()) != shape.rows * shape.cols ||
        std::int64_t(batch.lengths[j].size()) != batch_) {
      throw std::invalid_argument("sequence batch: branch " + std::to_string(j) + " does not hold " +
                                  std::to_string(batch_) + " rows of the bucket's length");
    }
    for (std::int64_t l : batch.lengths[j]) {
      if (l < 1 || l > length) {
        throw std::invalid_argument("sequence batch: a row of length " + std::to_string(l) +
                                    " in the bucket of length " + std::to_string(length));
      }
    }
    inputs.emplace_back(shape, false, activations_, kernels::Uninitialised{});
    kernels::pack_into(batch.inputs[j], inputs.back());
    batch.inputs[j] = {};
  }
  lengths_->rows = std::move(batch.lengths);
  m.loss().set_targets(std::move(batch.targets));
  m.set_step(steps_);
  const Schedule& ops = schedule != nullptr ? *schedule : plans_[std::size_t(b)].plan.ops;
  autodiff::StepResult result =
      executors_[std::size_t(b)]->run(ops, std::move(inputs), grads_,
                                      update ? autodiff::stage_updates(ops, m, grads_, optimizers_)
                                             : std::function<void(std::size_t)>{});
  lengths_->rows.clear();
  return result;
}

autodiff::StepResult SequenceTrainer::step(int b, SequenceBatch batch) {
  autodiff::StepResult result = run(b, std::move(batch), nullptr, true);
  ++steps_;
  return result;
}

std::vector<float> SequenceTrainer::embed(int b, int branch, std::span<const float> inputs,
                                          std::vector<std::int64_t> lengths) {
  autodiff::JoinModel& m = *models_.at(std::size_t(b));
  autodiff::Encoder& encoder = m.encoder_of(branch);
  const autodiff::BlockShape& in = encoder.input_shape(0);
  if (std::int64_t(inputs.size()) != in.rows * in.cols || std::int64_t(lengths.size()) != in.rows) {
    throw std::invalid_argument("embed: a batch of the bucket's shape expected");
  }
  lengths_->rows.assign(std::size_t(m.branches()), {});
  lengths_->rows[std::size_t(branch)] = std::move(lengths);
  m.select_branch(branch);
  m.set_scratch_allocator(&activations_.transient());
  m.set_step(autodiff::Layer::kInference);
  autodiff::Tensor x(in, false, activations_, kernels::Uninitialised{});
  kernels::pack_into(inputs, x);
  x = encoder.forward_all(std::move(x), activations_);
  m.set_scratch_allocator(nullptr);
  lengths_->rows.clear();
  std::vector<float> plain(std::size_t(x.shape.rows * x.shape.cols));
  kernels::unpack(x, plain);
  return plain;
}

std::vector<Representative> representatives(std::span<const std::int64_t> batches,
                                            std::span<const std::int64_t> lengths, int most) {
  std::vector<int> used;
  std::int64_t total = 0;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    if (batches[b] > 0) used.push_back(int(b));
    total += batches[b];
  }
  std::vector<Representative> out;
  if (int(used.size()) <= most) {
    for (int b : used) out.push_back({b, double(batches[std::size_t(b)])});
    return out;
  }
  // Consecutive groups, each closed once it holds its share of the batches.
  std::size_t at = 0;
  for (int g = 0; g < most && at < used.size(); ++g) {
    const double target = double(total) * double(g + 1) / double(most);
    std::int64_t count = 0;
    double weighted = 0;
    const std::size_t begin = at;
    double so_far = 0;
    for (std::size_t k = 0; k < begin; ++k) so_far += double(batches[std::size_t(used[k])]);
    // Leave at least one bucket for each group still to come.
    const std::size_t last = used.size() - std::size_t(most - g - 1);
    while (at < last && (at == begin || so_far + double(count) < target)) {
      const std::int64_t c = batches[std::size_t(used[at])];
      count += c;
      weighted += double(c) * double(lengths[std::size_t(used[at])]);
      ++at;
    }
    if (g == most - 1) {
      while (at < used.size()) {
        const std::int64_t c = batches[std::size_t(used[at])];
        count += c;
        weighted += double(c) * double(lengths[std::size_t(used[at])]);
        ++at;
      }
    }
    const double mean = weighted / double(count);
    int best = used[begin];
    for (std::size_t k = begin; k < at; ++k) {
      if (std::abs(double(lengths[std::size_t(used[k])]) - mean) <
          std::abs(double(lengths[std::size_t(best)]) - mean)) {
        best = used[k];
      }
    }
    out.push_back({best, double(count)});
  }
  return out;
}

}  // namespace rematch::models
