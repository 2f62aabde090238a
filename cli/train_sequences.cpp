#include "cli/train_sequences.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/memory_size.hpp"
#include "cli/train.hpp"
#include "models/checkpoint.hpp"
#include "cli/output.hpp"
#include "models/sequence_data.hpp"

namespace rematch::cli {
namespace {

using autodiff::format_bytes;
using nlohmann::json;

json read_document(const std::string& path) {
  models::parse_model_file(path);  // every problem of the file named as for fixed-size models
  std::ifstream in(path);
  return json::parse(in);
}

void write_json(const std::string& path, const json& j) { write_file_atomically(path, j.dump(2) + "\n"); }

}  // namespace

void add_sequence_options(CLI::App* cmd, SequenceArgs& a) {
  cmd->add_option("--offsets", a.offsets,
                  "ragged sequences: OFFSETS.npy (n + 1 integers) for each values file of --data, --pairs or "
                  "--triplets (docs/sequences.md)")
      ->expected(1, 3);
  cmd->add_option("--buckets", a.buckets, "ragged sequences: length buckets at the quantiles of the lengths")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--bucket-edges", a.bucket_edges, "ragged sequences: bucket upper edges instead, e.g. 64,256,1024");
  cmd->add_option("--epochs", a.epochs, "ragged sequences: epochs to train (instead of --steps)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
}

int train_sequences(const TrainArgs& args, const models::TrainConfig& config) {
  const SequenceArgs& s = args.sequences;
  if (models::is_zoo_name(config.model.model)) {
    throw InputError("--offsets needs a model file with a global_avg_pool or global_max_pool (--model FILE.json)");
  }
  if (!data_files(args.test, "test-").arrays.empty() || config.split > 0) {
    throw InputError("--offsets trains on ragged sequences without a held-out set (no --test-* or --split)");
  }
  const std::size_t memory = std::size_t(parse_memory_size(args.memory, "--memory"));
  const data::DataFiles files = data_files(args.data);
  if (files.arrays.empty()) throw InputError("--offsets needs --data, --pairs or --triplets (the values files)");
  if (files.arrays.size() != s.offsets.size()) {
    throw InputError("--offsets: " + std::to_string(s.offsets.size()) + " offsets files for " +
                     std::to_string(files.arrays.size()) + " values files");
  }
  if (!args.checkpoint.empty()) check_writable(args.checkpoint, "--checkpoint");
  const models::SequenceData data =
      models::SequenceData::open({files.layout, files.arrays, s.offsets, files.labels});
  const std::vector<std::int64_t> edges =
      s.bucket_edges.empty() ? models::quantile_edges(data.lengths(), s.buckets) : models::parse_edges(s.bucket_edges);

  models::SequenceTrainerOptions options;
  options.activation_budget = memory;
  options.solve.solver = config.solver;
  options.optimizer = config.optimizer;
  options.profile = config.profile;
  options.activations = config.activations;
  const json document = read_document(config.model.model);
  std::ostringstream list;
  for (std::size_t b = 0; b < edges.size(); ++b) list << (b ? "," : "") << edges[b];
  std::cout << "model      " << config.model.model << ", batch " << config.model.batch << " per branch, "
            << data.tuples() << " " << data::layout_name(data.layout) << " sequences, buckets up to " << list.str()
            << "\nactivations " << autodiff::to_string(config.activations) << " between ops (layers compute in fp32)"
            << "\nprofiling and planning every bucket for " << format_bytes(double(memory)) << " ...\n"
            << std::flush;
  models::SequenceTrainer trainer(document, config.model.model, edges, config.model.batch, config.model.seed, options);
  models::SequenceEpochs epochs(data, trainer.description(), edges, config.model.batch, config.data_seed);
  for (int b = 0; b < trainer.buckets(); ++b) {
    const models::BucketPlan& p = trainer.bucket(b);
    char line[256];
    std::snprintf(line, sizeof line,
                  "bucket %6lld  plan %.4f s (store-all %.4f s, overhead %.1f %%), peak %s, times %s (error %.1f %%)",
                  (long long)p.length, p.plan.makespan, p.graph.store_all_time(),
                  100 * (p.plan.makespan / p.graph.store_all_time() - 1), format_bytes(p.plan.peak).c_str(),
                  p.fitted ? "measured and fitted" : "fitted, checked", 100 * p.fit_error);
    std::cout << line << "\n";
  }

  const bool tty = isatty(STDOUT_FILENO);
  json report_epochs = json::array();
  std::size_t arena_peak = 0;
  for (int e = 1; e <= s.epochs; ++e) {
    const auto epoch = epochs.next_epoch();
    const models::EpochPrediction prediction = models::predict_epoch(trainer, epochs, epoch);
    std::cout << "epoch " << e << "    predicted " << prediction.seconds << " s, peak " << format_bytes(prediction.peak)
              << " (" << epoch.size() << " batches; representative buckets:";
    for (const auto& r : prediction.representatives) {
      std::cout << " " << trainer.bucket(r.bucket).length << " x" << r.weight;
    }
    std::cout << ")\n" << std::flush;
    double measured = 0, loss = 0;
    std::size_t epoch_peak = 0;
    for (std::size_t k = 0; k < epoch.size(); ++k) {
      const auto start = std::chrono::steady_clock::now();
      const autodiff::StepResult r = trainer.step(epoch[k].bucket, epochs.load(epoch[k]));
      measured += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      epoch_peak = std::max(epoch_peak, r.arena_peak);
      loss += r.loss;
      char line[200];
      std::snprintf(line, sizeof line, "step %zu/%zu  bucket %lld  loss %.5f  %.3f s  arena peak %s", k + 1,
                    epoch.size(), (long long)trainer.bucket(epoch[k].bucket).length, r.loss, r.seconds,
                    format_bytes(double(r.arena_peak)).c_str());
      std::cout << (tty ? "\r" : "") << line << (tty && k + 1 < epoch.size() ? "" : "\n") << std::flush;
    }
    arena_peak = std::max(arena_peak, epoch_peak);
    std::cout << "epoch " << e << "    measured " << measured << " s (prediction "
              << (measured > 0 ? 100 * (prediction.seconds / measured - 1) : 0.0) << " %), arena peak "
              << format_bytes(double(epoch_peak)) << " of " << format_bytes(double(memory)) << ", mean loss "
              << loss / double(epoch.size()) << "\n";
    report_epochs.push_back({{"batches", epoch.size()}, {"predicted_epoch_s", prediction.seconds},
                             {"predicted_peak", prediction.peak}, {"measured_epoch_s", measured},
                             {"arena_peak", epoch_peak}, {"mean_loss", loss / double(epoch.size())}});
  }
  if (!args.checkpoint.empty()) {
    models::save_weights(args.checkpoint, models::parameter_names(trainer.description()), trainer.model(0));
    std::cout << "weights    saved to " << args.checkpoint << "\n";
  }
  if (!args.report.empty()) {
    json buckets = json::array();
    for (int b = 0; b < trainer.buckets(); ++b) {
      const auto& p = trainer.bucket(b);
      buckets.push_back({{"length", p.length}, {"predicted_makespan", p.plan.makespan},
                         {"store_all_makespan", p.graph.store_all_time()}, {"predicted_peak", p.plan.peak},
                         {"fitted", p.fitted}, {"fit_error_pct", 100 * p.fit_error}});
    }
    write_json(args.report, {{"model", config.model.model}, {"batch", config.model.batch}, {"budget", memory},
                             {"activations", autodiff::to_string(config.activations)},
                             {"buckets", buckets}, {"epochs", report_epochs}, {"arena_peak", arena_peak}});
  }
  return 0;
}

void add_synth_options(CLI::App* cmd, SynthArgs& a) {
  data::SyntheticSequenceOptions& o = a.options;
  cmd->add_option("--output-dir,-o", a.dir, "directory for values.npy, offsets.npy, labels.npy")->required();
  cmd->add_option("--sequences", o.sequences, "how many")->capture_default_str();
  cmd->add_option("--channels", o.channels, "values per position")->capture_default_str();
  cmd->add_option("--classes", o.classes, "classes (one motif each)")->capture_default_str();
  cmd->add_option("--min-length", o.min_length, "shortest length")->capture_default_str();
  cmd->add_option("--max-length", o.max_length, "longest length (the tail is cut here)")->capture_default_str();
  cmd->add_option("--tail", o.tail, "Pareto shape: P(length > l) = (min_length / l)^tail")->capture_default_str();
  cmd->add_option("--motif-length", o.motif_length, "positions of a motif")->capture_default_str();
  cmd->add_option("--motif-every", o.motif_every, "one motif planted per this many positions")->capture_default_str();
  cmd->add_option("--noise", o.noise, "background uniform in [-noise, noise]")->capture_default_str();
  cmd->add_option("--motif-scale", o.motif_scale, "motif values uniform in [-scale, scale]")->capture_default_str();
  cmd->add_option("--seed", o.seed, "generator seed")->capture_default_str();
}

int run_synth_sequences(const SynthArgs& a) {
  try {
    const data::SequenceSet set = data::synthesize_sequences(a.options);
    const std::string dir = a.dir.empty() ? "." : a.dir;
    data::write_ragged(dir + "/values.npy", dir + "/offsets.npy", set.channels, set.sequences);
    data::write_npy_integers(dir + "/labels.npy", set.labels);
    std::int64_t total = 0;
    for (const auto& q : set.sequences) total += std::int64_t(q.size()) / set.channels;
    std::cout << "wrote " << dir << "/values.npy (" << total << " x " << set.channels << "), " << dir
              << "/offsets.npy, " << dir << "/labels.npy (" << set.labels.size() << " sequences)\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "rematch synth-sequences: " << e.what() << "\n";
    return 3;
  }
}

}  // namespace rematch::cli
