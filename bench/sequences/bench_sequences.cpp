// Sequences of varying length (docs/sequences.md): the epoch time predicted from at most ten
// representative buckets against the measured epoch and against a prediction from one
// average-length batch; the peak of every step against the budget; the recompute overhead of
// per-bucket schedules against one schedule sized for the longest bucket.
//
//   bench_sequences [--json FILE] [--sequences N] [--batch B] [--buckets K] [--channels C]
//                   [--min-length L] [--max-length L] [--width W] [--budget-factor F] [--seed S]
//
// The data are the synthetic sequences of models/data/synthetic_sequences.hpp, written as ragged
// .npy files and read back as users' data are. The budget is F times the least budget every
// bucket fits in (F = 1.3 by default, so the longest buckets recompute).
#include <omp.h>
#include <libxsmm.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bench/host.hpp"
#include "scheduler/io/atomic_file.hpp"
#include "models/data/ragged.hpp"
#include "models/data/synthetic_sequences.hpp"
#include "models/sequence_data.hpp"
#include "scheduler/simulator.hpp"

namespace {

using namespace rematch;
using nlohmann::json;

struct Options {
  std::string json_path;
  std::int64_t sequences = 2048, batch = 8, channels = 4, min_length = 32, max_length = 1024, width = 32;
  int buckets = 8;
  double budget_factor = 1.3;
  std::uint64_t seed = 1;
};

json model_document(const Options& o) {
  json conv = json::array();
  for (int d : {1, 2, 4, 8, 1, 2}) {
    conv.push_back({{"type", "conv1d"}, {"out", o.width}, {"taps", 3}, {"dilation", d}});
    conv.push_back({{"type", "relu"}});
  }
  conv.push_back({{"type", "global_avg_pool"}});
  conv.push_back({{"type", "linear"}, {"out", 16}});
  return {{"name", "bench-sequences"},
          {"branches", json::array({{{"name", "left"}, {"input", {{"channels", o.channels}, {"length", o.min_length}}}, {"encoder", "tcn"}},
                                    {{"name", "right"}, {"input", {{"channels", o.channels}, {"length", o.min_length}}}, {"encoder", "tcn"}}})},
          {"encoders", {{"tcn", {{"layers", conv}, {"layers_per_stage", 2}}}}},
          {"loss", {{"type", "contrastive"}, {"margin", 1.0}}}};
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Recompute overhead (percent over store-all) of the epoch's batches, bucket b running `ops(b)`,
// on the fitted graphs.
template <class Ops>
double overhead_pct(models::SequenceTrainer& t, const std::vector<std::int64_t>& counts, Ops ops) {
  double planned = 0, store_all = 0;
  for (int b = 0; b < t.buckets(); ++b) {
    if (counts[std::size_t(b)] == 0) continue;
    const Graph& g = t.bucket(b).graph;
    const SimulationResult r = simulate(g, ops(b), double(t.activations().budget()));
    if (!r.valid) throw std::runtime_error("a schedule does not replay on bucket " + std::to_string(t.bucket(b).length) + ": " + r.reason);
    planned += double(counts[std::size_t(b)]) * r.makespan;
    store_all += double(counts[std::size_t(b)]) * g.store_all_time();
  }
  return 100 * (planned / store_all - 1);
}

int run(const Options& o) {
  std::printf("bench_sequences: CPU %s, ISA %s, OpenMP threads %d\n", rematch::bench::cpu_model().c_str(),
              libxsmm_get_target_arch(), omp_get_max_threads());
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("bench_sequences_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  data::SyntheticSequenceOptions so;
  so.sequences = o.sequences;
  so.channels = o.channels;
  so.min_length = o.min_length;
  so.max_length = o.max_length;
  so.tail = 0.8;
  so.seed = o.seed;
  const data::SequenceSet set = data::synthesize_sequences(so);
  const std::string x = (dir / "x.npy").string(), off = (dir / "off.npy").string(), y = (dir / "y.npy").string();
  data::write_ragged(x, off, set.channels, set.sequences);
  data::write_npy_integers(y, set.labels);
  const models::SequenceData data = models::SequenceData::open({data::Layout::labelled, {x}, {off}, y});
  const auto lengths = data.lengths();
  const auto edges = models::quantile_edges(lengths, o.buckets);
  const json doc = model_document(o);

  models::SequenceTrainerOptions to;
  to.profile.repeats = 5;
  to.activation_budget = 1;
  double least = 0;
  try {
    models::SequenceTrainer probe(doc, "bench", edges, o.batch, o.seed, to);
  } catch (const InfeasibleBudget& e) {
    least = e.min_memory;
  }
  to.activation_budget = std::size_t(std::ceil(least * o.budget_factor));
  const auto setup = std::chrono::steady_clock::now();
  models::SequenceTrainer trainer(doc, "bench", edges, o.batch, o.seed, to);
  const double setup_s = seconds_since(setup);
  models::SequenceEpochs epochs(data, trainer.description(), edges, o.batch, o.seed + 1);
  const auto epoch = epochs.next_epoch();
  const auto counts = models::batches_per_bucket(epoch, trainer.buckets());
  std::printf("  %lld sequences of %lld..%lld positions (%.0fx), %d buckets, batch %lld pairs, %zu batches, budget %s "
              "(%.2fx the least every bucket fits in), setup (profile, fit, solve) %.2f s\n",
              (long long)o.sequences, (long long)*std::min_element(lengths.begin(), lengths.end()),
              (long long)*std::max_element(lengths.begin(), lengths.end()),
              double(*std::max_element(lengths.begin(), lengths.end())) / double(*std::min_element(lengths.begin(), lengths.end())),
              trainer.buckets(), (long long)o.batch, epoch.size(),
              autodiff::format_bytes(double(to.activation_budget)).c_str(), o.budget_factor, setup_s);
  json buckets = json::array();
  for (int b = 0; b < trainer.buckets(); ++b) {
    const auto& p = trainer.bucket(b);
    std::printf("  bucket %5lld: %3lld batches, plan %.3f ms (store-all %.3f ms), peak %s, fit %s error %.1f%%\n",
                (long long)p.length, (long long)counts[std::size_t(b)], 1e3 * p.plan.makespan,
                1e3 * p.graph.store_all_time(), autodiff::format_bytes(p.plan.peak).c_str(),
                p.fitted ? "point," : "check,", 100 * p.fit_error);
    buckets.push_back({{"length", p.length}, {"batches", counts[std::size_t(b)]}, {"fitted", p.fitted},
                       {"fit_error_pct", 100 * p.fit_error}, {"plan_makespan_s", p.plan.makespan},
                       {"store_all_makespan_s", p.graph.store_all_time()}, {"plan_peak", p.plan.peak}});
  }

  // Warm every bucket once (kernels JIT-compiled, pages touched), as the first epoch would not.
  for (int b = 0; b < trainer.buckets(); ++b) {
    const auto planned = std::find_if(epoch.begin(), epoch.end(), [&](const auto& p) { return p.bucket == b; });
    if (planned != epoch.end()) trainer.compute(b, epochs.load(*planned));
  }
  const models::EpochPrediction prediction = models::predict_epoch(trainer, epochs, epoch);
  std::printf("  predicted epoch: %.3f s from %zu representative buckets, peak %s\n", prediction.seconds,
              prediction.representatives.size(), autodiff::format_bytes(prediction.peak).c_str());

  // One batch at the average sequence length, its time times the number of batches.
  const double mean = std::accumulate(lengths.begin(), lengths.end(), 0.0) / double(lengths.size());
  const auto avg_length = std::int64_t(std::llround(mean));
  double one_batch_s = 0;
  {
    models::SequenceTrainer avg(doc, "bench", {avg_length}, o.batch, o.seed, to);
    std::vector<double> t;
    for (int k = 0; k < 4; ++k) {
      models::SequenceBatch zeros;
      for (int j = 0; j < 2; ++j) {
        zeros.inputs.emplace_back(std::size_t(o.batch * o.channels * avg_length), 0.0f);
        zeros.lengths.emplace_back(std::size_t(o.batch), avg_length);
      }
      zeros.targets.assign(std::size_t(o.batch), 1.0f);
      const auto start = std::chrono::steady_clock::now();
      avg.compute(0, std::move(zeros));
      if (k > 0) t.push_back(seconds_since(start));
    }
    std::sort(t.begin(), t.end());
    one_batch_s = t[t.size() / 2] * double(epoch.size());
  }
  std::printf("  one average-length (%lld) batch predicts %.3f s\n", (long long)avg_length, one_batch_s);

  double measured = 0, worst = 0;
  for (const auto& p : epoch) {
    const auto start = std::chrono::steady_clock::now();
    const autodiff::StepResult r = trainer.step(p.bucket, epochs.load(p));
    measured += seconds_since(start);
    worst = std::max(worst, double(r.arena_peak) / double(to.activation_budget));
  }
  const double per_bucket = overhead_pct(trainer, counts, [&](int b) { return trainer.bucket(b).plan.ops; });
  const Schedule& longest = trainer.bucket(trainer.buckets() - 1).plan.ops;
  const double longest_only = overhead_pct(trainer, counts, [&](int) { return longest; });
  std::printf("  measured epoch: %.3f s (representatives %+.1f%%, one batch %+.1f%%), largest arena peak / budget %.3f\n",
              measured, 100 * (prediction.seconds / measured - 1), 100 * (one_batch_s / measured - 1), worst);
  std::printf("  recompute overhead over the epoch: per-bucket schedules %.2f%%, the longest bucket's schedule everywhere %.2f%%\n",
              per_bucket, longest_only);
  std::filesystem::remove_all(dir);

  if (!o.json_path.empty()) {
    json reps = json::array();
    for (std::size_t k = 0; k < prediction.representatives.size(); ++k) {
      reps.push_back({{"length", trainer.bucket(prediction.representatives[k].bucket).length},
                      {"weight", prediction.representatives[k].weight}, {"step_s", prediction.step_seconds[k]}});
    }
    const json out = {{"cpu", rematch::bench::cpu_model()}, {"isa", libxsmm_get_target_arch()}, {"threads", omp_get_max_threads()},
                      {"sequences", o.sequences}, {"batch", o.batch}, {"batches", epoch.size()},
                      {"budget", to.activation_budget}, {"buckets", buckets}, {"representatives", reps},
                      {"predicted_epoch_s", prediction.seconds}, {"predicted_peak", prediction.peak},
                      {"measured_epoch_s", measured}, {"one_batch_predicted_epoch_s", one_batch_s},
                      {"average_length", avg_length}, {"max_arena_peak_over_budget", worst},
                      {"per_bucket_overhead_pct", per_bucket}, {"longest_bucket_schedule_overhead_pct", longest_only}};
    try {
      io::write_file_atomically(o.json_path, out.dump(2) + "\n");
    } catch (const io::WriteError& e) {
      std::fprintf(stderr, "bench_sequences: %s\n", e.what());
      return 3;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (i + 1 >= argc) throw std::invalid_argument("missing value after " + a);
      const std::string v = argv[++i];
      if (a == "--json") o.json_path = v;
      else if (a == "--sequences") o.sequences = std::stoll(v);
      else if (a == "--batch") o.batch = std::stoll(v);
      else if (a == "--buckets") o.buckets = std::stoi(v);
      else if (a == "--channels") o.channels = std::stoll(v);
      else if (a == "--min-length") o.min_length = std::stoll(v);
      else if (a == "--max-length") o.max_length = std::stoll(v);
      else if (a == "--width") o.width = std::stoll(v);
      else if (a == "--budget-factor") o.budget_factor = std::stod(v);
      else if (a == "--seed") o.seed = std::stoull(v);
      else throw std::invalid_argument("unknown option " + a);
    }
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sequences: %s\n", e.what());
    return 3;
  }
}
