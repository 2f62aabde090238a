#include "cli/train.hpp"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <new>
#include <streambuf>
#include <nlohmann/json.hpp>

#include "autodiff/profiler.hpp"
#include "cli/apply.hpp"
#include "cli/curve.hpp"
#include "cli/exit_status.hpp"
#include "cli/memory_size.hpp"
#include "cli/output.hpp"
#include "cli/report.hpp"
#include "distributed/communicator.hpp"
#include "distributed/ordered_sum.hpp"
#include "models/budget.hpp"
#include "models/checkpoint.hpp"
#include "models/model_file.hpp"
#include "scheduler/io/graph_io.hpp"
#include "scheduler/resolution.hpp"

namespace rematch::cli {
namespace {

using autodiff::format_bytes;
using nlohmann::json;

struct DiscardBuffer : std::streambuf {
  int overflow(int c) override { return traits_type::not_eof(c); }
};

// Puts a stream's buffer back when it goes out of scope.
class RestoredBuffer {
 public:
  explicit RestoredBuffer(std::ostream& stream) : stream_(stream), buffer_(stream.rdbuf()) {}
  ~RestoredBuffer() { stream_.rdbuf(buffer_); }
  RestoredBuffer(const RestoredBuffer&) = delete;
  RestoredBuffer& operator=(const RestoredBuffer&) = delete;

 private:
  std::ostream& stream_;
  std::streambuf* buffer_;
};

std::size_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return std::size_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

// The exit status and one-line message of the exception being handled.
distributed::Outcome current_failure() {
  try {
    throw;
  } catch (const InfeasibleBudget& e) {
    return {exit_infeasible, std::string(e.what()) + " (least feasible budget " +
                                 format_bytes(e.min_memory) + " = " +
                                 std::to_string(std::size_t(e.min_memory)) + " bytes)"};
  } catch (const autodiff::ArenaExhausted& e) {
    return {exit_out_of_memory, e.what()};
  } catch (const models::NoRoom& e) {
    return {exit_out_of_memory, e.what()};
  } catch (const std::bad_alloc&) {
    return {exit_out_of_memory, "out of memory (is the process memory limit below what the plan needs?)"};
  } catch (const std::exception& e) {
    return {exit_bad_input, e.what()};
  }
}

// A setup failure every process agreed on.
struct AgreedFailure {
  distributed::Outcome outcome;
};

// Runs `setup` on every process; when any of them fails, all throw the lowest failing rank's
// error, so the job ends the same way everywhere instead of hanging in the first exchange.
template <class F>
void agreed(const distributed::Communicator& comm, F&& setup) {
  distributed::Outcome local;
  try {
    setup();
  } catch (...) {
    local = current_failure();
  }
  const distributed::Outcome all = comm.agree(local);
  if (all.status != 0) throw AgreedFailure{all};
}

void write_report(const std::string& path, const json& report) {
  write_file_atomically(path, report.dump(2) + "\n");
}

// Numeric flags CLI11 reads as any float, "nan" and "inf" included.
void require_finite(double value, const char* flag, bool positive) {
  if (!std::isfinite(value)) throw InputError(std::string(flag) + " must be a finite number");
  if (value < 0 || (positive && value == 0))
    throw InputError(std::string(flag) + " must be " + (positive ? "positive" : "non-negative") + " (got " +
                     std::to_string(value) + ")");
}

void check_eval_every(const TrainArgs& args) {
  if (args.eval_every < 0) throw InputError("--eval-every must be non-negative (got " + std::to_string(args.eval_every) + ")");
  if (args.eval_every == 0) return;
  if (args.no_eval) throw InputError("--eval-every evaluates on the held-out set: not with --no-eval");
  if (!args.sequences.offsets.empty()) throw InputError("--eval-every is not available for sequences (--offsets)");
}

// The held-out loss curve (--eval-every): before the first step, every eval_every steps and
// after the last, from rank 0 alone (the other processes go on; they wait at the next exchange).
class HeldOutCurve {
 public:
  HeldOutCurve(const TrainArgs& args, bool root) : every_(root ? args.eval_every : 0), steps_(args.steps) {}

  // After step `step` (0: before the first); `open_line`: a progress line awaits its newline.
  void after(int step, models::TrainingSession& session, bool open_line) {
    if (every_ <= 0 || (step % every_ != 0 && step != steps_)) return;
    const double loss = session.held_out_loss();
    points_.push_back(json::array({step, loss}));
    char line[96];
    std::snprintf(line, sizeof line, "held-out   step %d  loss %.5f", step, loss);
    std::cout << (open_line ? "\n" : "") << line << "\n" << std::flush;
  }
  const json& points() const { return points_; }

 private:
  int every_, steps_;
  json points_ = json::array();
};

models::Budget budget_of(const TrainArgs& args) {
  if (args.memory.empty() && args.max_overhead.empty())
    throw InputError("--memory (bytes, a share such as 60%, or auto) or --max-overhead is required");
  models::Budget budget = args.memory.empty() ? models::Budget::automatic()
                                               : models::parse_budget(args.memory, "--memory", [](const std::string& t) {
                                                   return parse_memory_size(t, "--memory");
                                                 });
  if (!args.max_overhead.empty()) budget.max_overhead_pct = models::parse_percent(args.max_overhead, "--max-overhead");
  return budget;
}

int train(const TrainArgs& args, const distributed::Communicator& comm) {
  // Progress, plan and report come from rank 0 alone: the others print into a sink that accepts
  // everything (a null buffer would fail the stream, which main() reports as a failed write).
  DiscardBuffer sink;
  const RestoredBuffer restore(std::cout);  // before `sink` goes: main() flushes std::cout last
  if (!comm.root()) std::cout.rdbuf(&sink);
  models::TrainConfig config = args.config;
  std::unique_ptr<distributed::OrderedGradientSum> exchange;
  std::unique_ptr<models::TrainingSession> started;
  bool plan_only_done = false, sequences = false;
  agreed(comm, [&] {
    config.optimizer.kind = autodiff::optimizer_kind(args.optimizer);
    config.activations = autodiff::parse_precision(args.activations);
    require_finite(args.lr, "--lr", false);  // 0: the optimizer's default
    require_finite(config.optimizer.momentum, "--momentum", false);
    require_finite(config.model.margin, "--margin", false);
    if (args.checkpoint_every < 0) throw InputError("--checkpoint-every must be non-negative");
    config.optimizer.lr = args.lr > 0 ? args.lr
                          : config.optimizer.kind == autodiff::OptimizerConfig::Kind::adam ? 1e-3f
                                                                                            : 0.05f;
    if (args.steps < 0) throw InputError("--steps must be non-negative");
    check_eval_every(args);
    if (!(args.comm_timeout > 0)) throw InputError("--comm-timeout must be positive");
    if (!args.sequences.offsets.empty()) {
      if (comm.size() > 1) throw InputError("--offsets (sequences) trains in one process, not under mpirun");
      sequences = true;
      return;
    }
    // Outputs written after training are checked before it starts (by the process that writes them).
    if (comm.root() && !args.checkpoint.empty()) check_writable(args.checkpoint, "--checkpoint");
    if (comm.root() && !args.report.empty()) check_writable(args.report, "--report");
    config.data = data_files(args.data);
    config.test = data_files(args.test, "test-");
    const models::BudgetChoice budget = models::choose_budget(config, budget_of(args), args.show_curve);
    config.memory = budget.bytes;
    for (const std::string& line : budget.lines) std::cout << line << "\n";
    if (args.show_curve) std::cout << "time-memory curve of the profiled model (bytes, seconds)\n" << curve_text(*budget.curve);
    if (args.plan_only && args.show_curve) {
      plan_only_done = true;
      return;
    }
    config.shard = comm.rank();
    config.shards = comm.size();
    if (comm.size() > 1) {
      exchange = std::make_unique<distributed::OrderedGradientSum>(
          comm, std::chrono::duration<double>(args.comm_timeout));
      config.exchange = exchange.get();
    }
    std::cout << "model      " << config.model.model;
    if (models::is_zoo_name(config.model.model)) {
      std::cout << ": depth " << config.model.depth << ", width " << config.model.width << ", embedding "
                << config.model.embedding;
    }
    std::cout << ", batch " << config.model.batch << " per branch\n"
              << "profiling and planning for " << format_bytes(double(config.memory)) << " ...\n"
              << std::flush;
    started = std::make_unique<models::TrainingSession>(config);
    if (args.eval_every > 0 && !started->has_test_set())
      throw InputError("--eval-every needs a held-out set (--test-data, --test-pairs, --test-triplets or --split)");
  });
  if (plan_only_done) return 0;
  if (sequences) {
    config.memory = std::size_t(parse_memory_size(args.memory, "--memory"));
    return train_sequences(args, config);
  }
  models::TrainingSession& session = *started;
  const Solution& plan = session.plan();
  const double overhead = 100.0 * (plan.makespan / session.store_all_makespan() - 1);
  std::cout << "plan       " << plan.solver << (plan.exact ? " (exact)" : "") << ", " << plan.ops.size()
            << " ops: predicted step " << plan.makespan << " s (store-all " << session.store_all_makespan()
            << " s, recompute overhead " << overhead << " %)\n"
            << "memory     predicted peak " << format_bytes(plan.peak) << " of budget "
            << format_bytes(double(config.memory)) << " (store-all needs "
            << format_bytes(session.store_all_peak()) << "); weights, gradients and optimizer state "
            << format_bytes(double(session.parameter_bytes())) << "\n"
            << "activations " << autodiff::to_string(config.activations)
            << " between ops (layers compute in fp32)\n";
  if (plan.slots_reduced) {
    std::cout << "slots      " << plan.slots << " memory slots of " << format_bytes(plan.memory_limit / plan.slots)
              << ", fewer than the default " << default_slots
              << " so that the planner's tables fit the memory this process may use (sizes rounded up to whole "
                 "slots: a coarser discretisation of the budget)\n";
  }
  const std::size_t exchange_bytes = session.trainer().exchange_bytes();
  std::size_t gradient_bytes = 0;  // what each process exchanges per step
  for (int e = 0; e < session.model().encoders(); ++e) {
    for (const autodiff::Tensor* p : session.model().encoder(e).parameters()) gradient_bytes += p->data.bytes();
  }
  if (comm.size() > 1) {
    std::cout << "processes  " << comm.size() << ", " << config.model.batch / comm.size()
              << " samples of each global batch per process; gradient exchange buffers "
              << format_bytes(double(exchange_bytes)) << " in the arena (buckets of "
              << format_bytes(double(exchange->bucket_floats() * sizeof(float)))
              << "), the schedule planned in the remaining "
              << format_bytes(double(config.memory - exchange_bytes)) << "\n";
  }
  if (args.plan_only) return 0;

  // Under mpirun the launcher forwards the output: no carriage-return overwriting.
  const bool tty = !comm.joined() && isatty(STDOUT_FILENO);
  const double global_flops = session.step_flops() * comm.size();
  std::vector<double> times, exposed;
  double first_loss = 0, last_loss = 0;
  std::size_t arena_peak = 0;
  HeldOutCurve held_out(args, comm.root());
  held_out.after(0, session, false);
  for (int s = 1; s <= args.steps; ++s) {
    const autodiff::StepResult r = session.step();
    if (s == 1) first_loss = r.loss;
    last_loss = r.loss;
    times.push_back(r.seconds);
    exposed.push_back(r.exposed_communication);
    arena_peak = std::max(arena_peak, r.arena_peak);
    const double rate = double(config.model.batch) / r.seconds;
    char line[256];
    std::snprintf(line, sizeof line,
                  "step %d/%d  loss %.5f  %.3f s/step  %.0f samples/s  %.1f GFLOP/s  arena peak %s",
                  s, args.steps, r.loss, r.seconds, rate, global_flops / r.seconds * 1e-9,
                  format_bytes(double(r.arena_peak)).c_str());
    std::cout << (tty ? "\r" : "") << line;
    if (comm.size() > 1) std::cout << "  exposed comm " << r.exposed_communication << " s";
    std::cout << (tty && s < args.steps ? "" : "\n") << std::flush;
    held_out.after(s, session, tty && s < args.steps);
    if (comm.root() && !args.checkpoint.empty() && args.checkpoint_every > 0 &&
        s % args.checkpoint_every == 0) {
      session.save(args.checkpoint);
    }
  }
  if (comm.root() && !args.checkpoint.empty()) {
    session.save(args.checkpoint);
    std::cout << "weights    saved to " << args.checkpoint << "\n";
  }
  models::Evaluation eval;
  const bool evaluated = comm.root() && !args.no_eval && session.has_test_set();
  if (!args.no_eval && !session.has_test_set()) {
    std::cout << "test       no held-out set (--test-data, --test-pairs, --test-triplets or --split)\n";
  } else if (evaluated) {
    eval = session.evaluate();
    std::cout << "test       " << evaluation_line(session.description(), eval) << "\n";
  }
  double total = 0;
  for (double t : times) total += t;
  const std::size_t rss = peak_rss_bytes();
  std::cout << "peak RSS   " << format_bytes(double(rss)) << "\n";
  if (comm.root() && !args.report.empty()) {
    const bool classifier = session.description().task == models::Task::classifier;
    const double steps = double(times.size());
    write_report(args.report,
                 json{{"model", config.model.model},
                      {"depth", config.model.depth},
                      {"width", config.model.width},
                      {"batch", config.model.batch},
                      {"solver", plan.solver},
                      {"activations", autodiff::to_string(config.activations)},
                      {"exact", plan.exact},
                      {"slots", plan.slots},
                      {"slots_reduced", plan.slots_reduced},
                      {"budget", config.memory},
                      {"predicted_makespan", plan.makespan},
                      {"predicted_peak", plan.peak},
                      {"store_all_makespan", session.store_all_makespan()},
                      {"store_all_peak", session.store_all_peak()},
                      {"predicted_overhead_pct", overhead},
                      {"arena_peak", arena_peak},
                      {"parameter_bytes", session.parameter_bytes()},
                      {"ranks", comm.size()},
                      {"exchange_buffer_bytes", exchange_bytes},
                      {"gradient_bytes", gradient_bytes},
                      {"exposed_communication_seconds", exposed},
                      {"peak_rss", rss},
                      {"steps", times.size()},
                      {"step_seconds", times},
                      {"samples_per_s", total > 0 ? steps * config.model.batch / total : 0.0},
                      {"gflops", total > 0 ? steps * global_flops / total * 1e-9 : 0.0},
                      {"executed_gflops",
                       total > 0 ? steps * session.executed_step_flops() * comm.size() / total * 1e-9 : 0.0},
                      {"first_loss", first_loss},
                      {"last_loss", last_loss},
                      {"test_metric", !evaluated ? json(nullptr) : json(classifier ? eval.accuracy : eval.auc)},
                      {"test_metric_name", classifier ? "top1_accuracy" : "roc_auc"},
                      {"test_accuracy", !evaluated ? json(nullptr) : json(eval.accuracy)},
                      {"eval_losses", held_out.points()}});
  }
  return 0;
}

}  // namespace

void add_model_options(CLI::App* cmd, models::ModelConfig& m) {
  std::string names;
  for (const auto& n : models::model_names()) names += (names.empty() ? "" : " | ") + n;
  cmd->add_option("--model", m.model, names + " | a model file (FILE.json, docs/model-files.md)")
      ->capture_default_str();
  cmd->add_option("--depth", m.depth, "layers per encoder")->capture_default_str();
  cmd->add_option("--width", m.width, "hidden features (MLP) or channels (conv)")->capture_default_str();
  cmd->add_option("--batch", m.batch, "samples per branch and step")->capture_default_str();
  cmd->add_option("--embedding", m.embedding, "output features")->capture_default_str();
  cmd->add_option("--layers-per-stage", m.layers_per_stage, "layers the scheduler treats as one stage")
      ->capture_default_str();
  cmd->add_option("--margin", m.margin, "margin of the loss")->capture_default_str();
  cmd->add_option("--seed", m.seed, "weight initialisation seed")->capture_default_str();
}

void add_train_options(CLI::App* cmd, TrainArgs& a) {
  add_model_options(cmd, a.config.model);
  cmd->add_option("--memory,-m", a.memory, "activation budget: bytes (2GiB), a share of what is free (60%), or auto");
  cmd->add_option("--max-overhead", a.max_overhead, "the least budget whose predicted recompute overhead is at most this (10%)");
  cmd->add_flag("--plan-only", a.plan_only, "profile and plan, print the plan, do not train");
  cmd->add_flag("--curve", a.show_curve, "print the time-memory curve of the profiled model (with --plan-only: only it)");
  cmd->add_option("--steps", a.steps, "training steps")->capture_default_str();
  cmd->add_option("--solver", a.config.solver, solver_choices())
      ->capture_default_str();
  cmd->add_option("--optimizer", a.optimizer, "sgd (with momentum) | adam")->capture_default_str();
  cmd->add_option("--activations", a.activations, "fp32 | bf16: precision of the activations kept between ops")
      ->capture_default_str();
  cmd->add_option("--lr", a.lr, "learning rate (default: Adam 1e-3, SGD 0.05)");
  cmd->add_option("--momentum", a.config.optimizer.momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--checkpoint", a.checkpoint, "write the weights here (atomically)");
  cmd->add_option("--checkpoint-every", a.checkpoint_every, "also every N steps");
  cmd->add_option("--resume", a.config.resume, "start from these weights");
  cmd->add_option("--report", a.report, "write a JSON summary");
  cmd->add_option("--fashion-mnist", a.config.data_dir, "Fashion-MNIST directory (without --data, --pairs, --triplets)")
      ->capture_default_str();
  add_data_options(cmd, a.data);
  add_data_options(cmd, a.test, "test-");
  add_sequence_options(cmd, a.sequences);
  cmd->add_option("--split", a.config.split, "hold out this fraction of the data for the metrics")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--data-seed", a.config.data_seed, "pair sampling seed")->capture_default_str();
  cmd->add_option("--eval-batches", a.config.eval_batches, "held-out batches for the metrics")
      ->capture_default_str();
  cmd->add_flag("--no-eval", a.no_eval, "skip the test-set evaluation");
  cmd->add_option("--eval-every", a.eval_every,
                  "also the loss on fixed held-out batches before training and every N steps (report: eval_losses)");
  cmd->add_option("--comm-timeout", a.comm_timeout,
                  "under mpirun: seconds to wait for the other processes' gradients before giving up")
      ->capture_default_str();
  cmd->add_option("--profile-repeats", a.config.profile.repeats, "timed profiling sweeps (after one warm-up)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
}

// Every step reads a new batch into host buffers of a few MiB and frees them. glibc's defaults
// hand such buffers back to the system (mmap, or trimming the heap) as soon as they are freed, so
// every step would fault their pages in afresh; kept in the heap they are reused. Buffers above
// 32 MiB (huge batches) are still mapped apart and given back when freed.
void keep_batch_buffers_in_heap() {
  (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
  (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int run_train(TrainArgs args) {
  keep_batch_buffers_in_heap();
  const distributed::Communicator comm;
  try {
    return train(args, comm);
  } catch (const AgreedFailure& e) {
    if (comm.root()) std::cerr << "rematch train: " << e.outcome.message << "\n";
    return e.outcome.status;
  } catch (...) {
    const distributed::Outcome failure = current_failure();
    std::cerr << "rematch train: "
              << (comm.size() > 1 ? "rank " + std::to_string(comm.rank()) + ": " : "")
              << failure.message << "\n";
    // The other processes may be waiting for this one's gradients: end them too.
    if (comm.size() > 1) comm.abort(failure.status);
    return failure.status;
  }
}

int run_profile(const models::ModelConfig& model, const std::string& activations,
                const std::string& out_path) {
  try {
    const autodiff::Precision precision = autodiff::parse_precision(activations);
    check_writable(out_path, "--output");
    autodiff::Arena parameters("parameters");
    auto m = models::build(models::load_model(model.model, model), model.batch, model.seed, parameters);
    m->set_activation_precision(precision);
    const Graph graph = autodiff::profile(*m);
    write_file_atomically(out_path, graph_to_json(graph, false) + "\n");
    std::cout << "wrote " << out_path << " (" << graph.num_branches() << " branches of "
              << graph.branches[0].stages() << " stages; sizes in bytes, times in seconds)\n";
    return 0;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::length_error&) {
    throw;
  } catch (const std::exception& e) {
    std::cerr << "rematch profile: " << e.what() << "\n";
    return exit_bad_input;
  }
}

}  // namespace rematch::cli
