// Runtime benchmark (issue: executor within budget, at the predicted speed): an FC chain
// (cross-entropy head) and a siamese pair of the same FC encoder (contrastive loss, shared
// weights), one FC+ReLU layer per stage. The model is profiled on the real kernels, then for
// budgets from the least feasible one to store-all's peak and for the solvers optimal, store-all
// (at its own peak), recompute-all, segments:2, segments:4 and sqrt, each schedule is executed
// in a fresh arena of exactly that budget (one warm-up step, then --repeats timed steps, median;
// each after a store-all step that measures the machine's speed of the moment).
// Reports measured vs predicted (simulator on the profiled graph) time and peak, whether the
// weight gradients are bitwise those of store-all, and the store-all overhead over the bare
// kernel calls. --json FILE writes the figures.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "autodiff/arena.hpp"
#include "autodiff/executor.hpp"
#include "autodiff/layers.hpp"
#include "autodiff/model.hpp"
#include "autodiff/profiler.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"

namespace {

using namespace rematch;
using namespace rematch::autodiff;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double mib(double bytes) { return bytes / double(1 << 20); }

// Minor page faults of the process so far (first touches of fresh pages).
long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

struct Options {
  int stages = 16;
  std::int64_t width = 1024, batch = 256;
  int repeats = 5;
  int budgets = 5;
  int profile_repeats = 5;
  std::vector<std::string> models = {"chain", "siamese"};
  std::string json_path;
};

// One model and what the bench needs around it: the encoder's layers (the model owns them; the
// pointers stay valid), the profiled graph, one batch.
struct Setup {
  std::string name;
  Arena parameters{"parameters"};
  std::unique_ptr<JoinModel> model;
  std::vector<Layer*> layers;  // the (single, possibly shared) encoder's layers, stage order
  Graph graph;
  std::vector<std::vector<float>> inputs;  // per branch, plain batch x width
  std::vector<float> targets;
};

std::unique_ptr<Setup> build(const std::string& kind, const Options& o) {
  auto s = std::make_unique<Setup>();
  s->name = kind;
  std::vector<std::unique_ptr<Layer>> layers;
  std::vector<int> ends;
  for (int i = 0; i < o.stages; ++i) {
    kernels::FcDesc d;
    d.n = o.batch;
    d.c = o.width;
    d.k = o.width;
    d.activation = kernels::Activation::relu;
    layers.push_back(std::make_unique<FcLayer>(d, s->parameters));
    s->layers.push_back(layers.back().get());
    ends.push_back(i + 1);
  }
  auto encoder = std::make_unique<Encoder>("fc" + std::to_string(o.stages), std::move(layers), ends);
  encoder->initialize(42);
  std::vector<std::unique_ptr<Encoder>> encoders;
  encoders.push_back(std::move(encoder));
  const bool chain = kind == "chain";
  s->model = std::make_unique<JoinModel>(
      kind, std::move(encoders), chain ? std::vector<int>{0} : std::vector<int>{0, 0},
      chain ? LossHead(LossKind::cross_entropy, 0) : LossHead(LossKind::contrastive, 1.0f));

  s->graph = profile(*s->model, {.repeats = o.profile_repeats});

  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (int j = 0; j < s->model->branches(); ++j) {
    std::vector<float> x(std::size_t(o.batch * o.width));
    for (float& v : x) v = normal(rng);
    s->inputs.push_back(std::move(x));
  }
  for (std::int64_t r = 0; r < o.batch; ++r) {
    s->targets.push_back(chain ? float(r % o.width) : float(r % 2));
  }
  s->model->loss().set_targets(s->targets);
  return s;
}

struct Run {
  double seconds = 0;         // median of the timed steps
  double fastest = 0;         // the fastest timed step
  std::size_t peak = 0;       // largest arena high-water mark over every step
  double faults = 0;          // median minor page faults per timed step
  double pace = 0;            // median of the store-all steps run alongside (0: none)
  double paced = 0;           // median over the timed steps of step / the store-all step before it
  float loss = 0;
  std::vector<Gradients> grads;  // per branch, after the last step
};

// Steps of one schedule in a fresh arena of exactly `budget` bytes.
class Execution {
 public:
  Execution(Setup& s, const Schedule& ops, std::size_t budget)
      : s_(s), ops_(ops), arena_("activations", budget), executor_(*s.model, s.graph, arena_) {
    executor_.check(ops);
    for (int j = 0; j < s.model->branches(); ++j) {
      run_.grads.push_back(s.model->encoder_of(j).make_gradients(kernels::heap_allocator()));
    }
  }

  // One step; `timed` steps enter the run's figures (the peak counts every step).
  StepResult step(bool timed) {
    const long faults_before = minor_faults();
    std::vector<Tensor> inputs;
    for (int j = 0; j < s_.model->branches(); ++j) {
      inputs.emplace_back(s_.model->encoder_of(j).input_shape(0), false, arena_);
      kernels::pack_into(s_.inputs[j], inputs.back());
    }
    StepResult step = executor_.run(ops_, std::move(inputs), run_.grads);
    run_.peak = std::max(run_.peak, step.arena_peak);
    run_.loss = step.loss;
    if (timed) {
      times_.push_back(step.seconds);
      faults_.push_back(double(minor_faults() - faults_before));
    }
    return step;
  }

  Run finish() {
    run_.seconds = median(times_);
    run_.fastest = *std::min_element(times_.begin(), times_.end());
    run_.faults = median(faults_);
    return std::move(run_);
  }

 private:
  Setup& s_;
  const Schedule& ops_;
  Arena arena_;
  Executor executor_;
  Run run_;
  std::vector<double> times_, faults_;
};

// One warm-up step, then `repeats` timed ones, each right after a step of `pace` (store-all):
// a shared cloud host's speed drifts by +-10% over minutes, and a store-all step taken alongside
// measures the speed of the moment.
Run execute(Setup& s, const Schedule& ops, std::size_t budget, int repeats, Execution& pace) {
  Execution execution(s, ops, budget);
  std::vector<double> pace_times, ratios;
  for (int r = 0; r <= repeats; ++r) {
    const double paced = pace.step(false).seconds;
    const double seconds = execution.step(r > 0).seconds;
    if (r > 0) {
      pace_times.push_back(paced);
      ratios.push_back(seconds / paced);
    }
  }
  Run run = execution.finish();
  run.pace = median(pace_times);
  run.paced = median(ratios);
  return run;
}

bool bitwise_equal(const std::vector<Gradients>& a, const std::vector<Gradients>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t j = 0; j < a.size(); ++j) {
    for (std::size_t l = 0; l < a[j].size(); ++l) {
      for (std::size_t p = 0; p < a[j][l].size(); ++p) {
        const Tensor &x = a[j][l][p], &y = b[j][l][p];
        if (x.data.size() != y.data.size() ||
            std::memcmp(x.data.data(), y.data.data(), x.data.size() * sizeof(float)) != 0) {
          return false;
        }
      }
    }
  }
  return true;
}

// The profile's stage times replaced by those of executed store-all steps (after a warm-up
// step), as autodiff::Trainer does with its plan (profiler.hpp: calibrate).
Graph calibrated(Setup& s, int repeats) {
  const Solution plan = solve(s.graph, 1e300, {.solver = "store-all"});
  Execution execution(s, plan.ops, std::size_t(plan.peak));
  std::vector<std::vector<double>> op_seconds;
  for (int r = 0; r <= repeats; ++r) {
    StepResult step = execution.step(false);
    if (r > 0) op_seconds.push_back(std::move(step.op_seconds));
  }
  return calibrate(s.graph, *s.model, plan.ops, op_seconds);
}

struct Bare {
  double kernels = 0;  // sum of the timed calls
  double forward = 0, backward = 0, loss = 0;  // its parts
};

// The bare kernel calls of one store-all step, each timed on its own, no executor: every
// buffer allocated once up front and reused (the kernels overwrite their outputs), kernel
// scratch from an unlimited arena that caches it (what the executor's arena does in steady
// state).
class BareKernels {
 public:
  explicit BareKernels(Setup& s)
      : s_(s), k_(s.model->branches()), n_(static_cast<int>(s.layers.size())), x_(k_), dy_(k_) {
    kernels::Allocator& heap = kernels::heap_allocator();
    for (int j = 0; j < k_; ++j) {
      for (int i = 0; i <= n_; ++i) {
        const BlockShape& shape = i < n_ ? s.layers[i]->input_shape() : s.layers[n_ - 1]->output_shape();
        x_[j].emplace_back(shape, false, heap);
        dy_[j].emplace_back(shape, false, heap);
      }
      kernels::pack_into(s.inputs[j], x_[j][0]);
      grads_.push_back(s.model->encoder_of(j).make_gradients(heap));
    }
  }

  Bare step() {
    s_.model->set_scratch_allocator(&scratch_);
    Bare t;
    for (int j = 0; j < k_; ++j) {
      for (int i = 0; i < n_; ++i) {
        const auto start = Clock::now();
        s_.layers[i]->forward(x_[j][i], x_[j][i + 1]);
        t.forward += seconds_since(start);
      }
    }
    std::vector<const Tensor*> outputs;
    std::vector<Tensor> d;
    for (int j = 0; j < k_; ++j) {
      outputs.push_back(&x_[j][n_]);
      d.push_back(std::move(dy_[j][n_]));
    }
    const auto start = Clock::now();
    (void)s_.model->loss().run(outputs, d, scratch_);
    t.loss = seconds_since(start);
    for (int j = 0; j < k_; ++j) dy_[j][n_] = std::move(d[j]);
    for (int j = k_ - 1; j >= 0; --j) {
      for (int i = n_ - 1; i >= 0; --i) {
        const auto start = Clock::now();
        s_.layers[i]->backward(x_[j][i], x_[j][i + 1], dy_[j][i + 1], i > 0 ? &dy_[j][i] : nullptr,
                               grads_[j][i]);
        t.backward += seconds_since(start);
      }
    }
    s_.model->set_scratch_allocator(nullptr);
    t.kernels = t.forward + t.loss + t.backward;
    return t;
  }

 private:
  Setup& s_;
  const int k_, n_;
  Arena scratch_{"bare-scratch"};
  std::vector<std::vector<Tensor>> x_, dy_;
  std::vector<Gradients> grads_;
};

// Store-all through the executor and the bare kernels, one step of each in turn (after one
// warm-up step of each), so that a slow phase of the machine hits both alike. Medians; the
// overhead is taken pair by pair.
struct Reference {
  Run store_all;
  Bare bare;
  double overhead = 0;  // median over the pairs of store-all step / bare step, minus 1
};

Reference store_all_and_bare(Setup& s, const Schedule& ops, std::size_t budget, int repeats) {
  Execution execution(s, ops, budget);
  BareKernels bare(s);
  std::vector<double> total, fw, bw, ls, ratios;
  for (int r = 0; r <= repeats; ++r) {
    const double seconds = execution.step(r > 0).seconds;
    const Bare t = bare.step();
    if (r > 0) {
      ratios.push_back(seconds / t.kernels);
      total.push_back(t.kernels);
      fw.push_back(t.forward);
      bw.push_back(t.backward);
      ls.push_back(t.loss);
    }
  }
  Reference ref;
  ref.store_all = execution.finish();
  ref.bare = {median(total), median(fw), median(bw), median(ls)};
  ref.overhead = median(ratios) - 1;
  return ref;
}

struct Row {
  std::string model, solver;
  double budget = 0;
  bool feasible = false;
  std::string note;  // why not run
  double predicted_peak = 0, predicted_time = 0;
  double measured_peak = 0, measured_time = 0;
  bool grads_equal = false;
  double solve_seconds = 0;
  bool exact = false;
  double faults = 0;
  double fastest = 0;
  double pace = 0;   // store-all steps alongside
  double paced = 0;  // Run::paced
  double predicted_store_all = 0;

  double time_diff() const { return measured_time / predicted_time - 1; }
  // The same comparison at the speed of the moment: both times as multiples of store-all's.
  // None for the store-all reference itself, which is the unit.
  bool has_pace() const { return paced > 0; }
  double paced_time_diff() const { return paced / (predicted_time / predicted_store_all) - 1; }
};

void print_row(const Row& r) {
  if (!r.feasible) {
    std::printf("%-8s %-14s %9.2f  %s\n", r.model.c_str(), r.solver.c_str(), mib(r.budget), r.note.c_str());
    return;
  }
  char paced[16] = "       -";
  if (r.has_pace()) std::snprintf(paced, sizeof paced, "%+7.1f%%", 100 * r.paced_time_diff());
  std::printf("%-8s %-14s %9.2f %9.2f %9.2f %4s %9.4f %9.4f %+7.1f%% %8s %5s %7.0f\n", r.model.c_str(),
              r.solver.c_str(), mib(r.budget), mib(r.predicted_peak), mib(r.measured_peak),
              r.measured_peak <= r.budget && r.measured_peak <= r.predicted_peak ? "ok" : "OVER",
              r.predicted_time, r.measured_time, 100 * r.time_diff(), paced, r.grads_equal ? "yes" : "NO",
              r.faults);
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

int usage() {
  std::fprintf(stderr,
               "usage: bench_runtime [--quick] [--stages N] [--width W] [--batch B] [--repeats R]\n"
               "                     [--budgets K] [--profile-repeats P] [--model chain|siamese|both]\n"
               "                     [--json FILE]\n");
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Options o;
  try {
    for (int a = 1; a < argc; ++a) {
      const std::string arg = argv[a];
      auto value = [&]() -> std::string {
        if (a + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++a];
      };
      if (arg == "--quick") o.stages = 8, o.width = 256, o.batch = 64, o.repeats = 2, o.profile_repeats = 3;
      else if (arg == "--stages") o.stages = std::stoi(value());
      else if (arg == "--width") o.width = std::stoll(value());
      else if (arg == "--batch") o.batch = std::stoll(value());
      else if (arg == "--repeats") o.repeats = std::stoi(value());
      else if (arg == "--budgets") o.budgets = std::stoi(value());
      else if (arg == "--profile-repeats") o.profile_repeats = std::stoi(value());
      else if (arg == "--json") o.json_path = value();
      else if (arg == "--model") {
        const std::string m = value();
        if (m == "both") o.models = {"chain", "siamese"};
        else if (m == "chain" || m == "siamese") o.models = {m};
        else return usage();
      } else return usage();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_runtime: %s\n", e.what());
    return usage();
  }
  if (o.stages < 2 || o.width < 2 || o.batch < 2 || o.repeats < 1 || o.budgets < 1 || o.profile_repeats < 1) {
    return usage();
  }

  std::printf("bench_runtime: FC stages (FC %lld->%lld + bias + ReLU, one layer per stage), fp32\n",
              (long long)o.width, (long long)o.width);
  std::printf("  models: chain (softmax cross-entropy head, k=1), siamese (two branches, one shared encoder, "
              "contrastive loss)\n");
  std::printf("  stages %d, width %lld, batch %lld, OpenMP threads %d, %d timed steps after 1 warm-up "
              "(median), profile: median of %d\n",
              o.stages, (long long)o.width, (long long)o.batch, omp_get_max_threads(), o.repeats,
              o.profile_repeats);
  std::printf("  load average at start: %s\n", load_average().c_str());

  nlohmann::json results = nlohmann::json::array();
  struct Summary {
    std::string model;
    double overhead = 0;  // store-all over the bare kernels
    int rows = 0, within_budget = 0, within_prediction = 0, within10 = 0, paced_rows = 0, paced_within10 = 0,
        grads_equal = 0;
    double worst_dt = 0, worst_paced_dt = 0;
  };
  std::vector<Summary> summaries;

  for (const std::string& kind : o.models) {
    const auto t0 = Clock::now();
    auto s = build(kind, o);
    const double profiled_store_all = s->graph.store_all_time();
    s->graph = calibrated(*s, o.repeats);
    const double profile_seconds = seconds_since(t0);
    const Graph& g = s->graph;
    const Branch& br = g.branches[0];
    const double store_all_peak = solve(g, 1e300, {.solver = "store-all"}).peak;
    const double least = min_feasible_memory(g);
    std::vector<double> budgets;
    for (int b = 0; b < o.budgets; ++b) {
      const double f = o.budgets == 1 ? 1.0 : double(b) / (o.budgets - 1);
      budgets.push_back(std::floor(least + f * (store_all_peak - least)));
    }
    budgets.back() = store_all_peak;

    std::printf("\n== %s: %d branch(es) x %d stages, profiled and calibrated in %.1f s (store-all %.4f s "
                "by the profile's sweeps, %.4f s calibrated on executed steps)\n",
                kind.c_str(), g.num_branches(), br.stages(), profile_seconds, profiled_store_all,
                g.store_all_time());
    double fw_sum = 0, bw_sum = 0;
    for (double v : br.fw) fw_sum += v;
    for (double v : br.bw) bw_sum += v;
    std::printf("  per branch: fw %.4f s (stage 1: %.5f s), bw %.4f s (stage 1: %.5f s, stage 0: %.5f s); "
                "loss %.5f s, tmp %.3f MiB\n",
                fw_sum, br.fw[std::min(1, br.stages() - 1)], bw_sum, br.bw[std::min(1, br.stages() - 1)], br.bw[0],
                g.loss.time, mib(g.loss.tmp));
    std::printf("  sizes: cw %.3f MiB, cbw %.3f MiB, ftmp %.3f MiB, btmp %.3f MiB (stage 1), btmp[0] %.3f MiB\n",
                mib(br.cw[1]), mib(br.cbw[1]), mib(br.ftmp[std::min(1, br.stages() - 1)]),
                mib(br.btmp[std::min(1, br.stages() - 1)]), mib(br.btmp[0]));
    std::printf("  budgets (MiB):");
    for (double b : budgets) std::printf(" %.2f", mib(b));
    std::printf("  (least feasible %.2f, store-all peak %.2f); predicted store-all time %.4f s\n", mib(least),
                mib(store_all_peak), g.store_all_time());

    // Reference: store-all at its own peak, its steps alternating with the bare kernels'.
    const Solution ref_plan = solve(g, store_all_peak, {.solver = "store-all"});
    const Reference ref = store_all_and_bare(*s, ref_plan.ops, std::size_t(store_all_peak), std::max(o.repeats, 5));
    const Run& reference = ref.store_all;
    const Bare& bare = ref.bare;
    Execution pace(*s, ref_plan.ops, std::size_t(store_all_peak));
    const double predicted_store_all = g.store_all_time();

    std::vector<Row> rows;
    auto add = [&](const std::string& solver, double budget, const Run* ran, const Solution* plan,
                   double solve_seconds, const std::string& note) {
      Row r;
      r.model = kind;
      r.solver = solver;
      r.budget = budget;
      r.note = note;
      if (ran != nullptr) {
        r.feasible = true;
        const SimulationResult sim = simulate(g, plan->ops, budget);
        r.predicted_peak = sim.peak;
        r.predicted_time = sim.makespan;
        r.measured_peak = double(ran->peak);
        r.measured_time = ran->seconds;
        r.grads_equal = bitwise_equal(ran->grads, reference.grads) && ran->loss == reference.loss;
        r.solve_seconds = solve_seconds;
        r.exact = plan->exact;
        r.faults = ran->faults;
        r.fastest = ran->fastest;
        r.pace = ran->pace;
        r.paced = ran->paced;
        r.predicted_store_all = predicted_store_all;
      }
      print_row(r);
      rows.push_back(r);
    };

    std::printf("\n%-8s %-14s %9s %9s %9s %4s %9s %9s %8s %8s %5s %7s\n", "model", "solver", "budget", "pred_pk",
                "meas_pk", "fits", "pred_s", "meas_s", "diff", "paced", "grads", "faults");
    std::printf("%-8s %-14s %9s %9s %9s %4s %9s %9s %8s %8s %5s %7s\n", "", "", "MiB", "MiB", "MiB", "", "", "", "",
                "diff", "=SA", "/step");
    add("store-all", store_all_peak, &reference, &ref_plan, 0, "");
    const std::vector<std::string> solvers = {"optimal", "recompute-all", "segments:2", "segments:4", "sqrt"};
    for (double budget : budgets) {
      for (const std::string& solver : solvers) {
        Solution plan;
        const auto start = Clock::now();
        try {
          plan = solve(g, budget, {.solver = solver});
        } catch (const InfeasibleBudget& e) {
          char note[64];
          std::snprintf(note, sizeof note, "infeasible (needs %.2f MiB)", mib(e.min_memory));
          add(solver, budget, nullptr, nullptr, 0, note);
          continue;
        }
        const double solve_seconds = seconds_since(start);
        const Run ran = execute(*s, plan.ops, std::size_t(budget), o.repeats, pace);
        add(solver, budget, &ran, &plan, solve_seconds, "");
      }
    }

    const double overhead = 100 * ref.overhead;
    std::printf("\n  bare kernels (one store-all step's kernel calls, timed one by one, no executor): %.4f s "
                "(forward %.4f, loss %.5f, backward %.4f)\n",
                bare.kernels, bare.forward, bare.loss, bare.backward);
    std::printf("  store-all through the executor: %.4f s, overhead over bare kernels %+.2f%% (median of step-by-step ratios; target < 5%%)\n",
                reference.seconds, overhead);
    std::printf("  prediction (profile) of store-all: %.4f s, %+.1f%% off the bare kernels\n", g.store_all_time(),
                100 * (g.store_all_time() / bare.kernels - 1));

    Summary sum;
    sum.model = kind;
    sum.overhead = ref.overhead;
    for (const Row& r : rows) {
      if (!r.feasible) continue;
      ++sum.rows;
      sum.within_budget += r.measured_peak <= r.budget;
      sum.within_prediction += r.measured_peak <= r.predicted_peak;
      const double dt = r.time_diff();
      sum.within10 += std::abs(dt) <= 0.10;
      if (std::abs(dt) > std::abs(sum.worst_dt)) sum.worst_dt = dt;
      if (r.has_pace()) {
        const double paced_dt = r.paced_time_diff();
        ++sum.paced_rows;
        sum.paced_within10 += std::abs(paced_dt) <= 0.10;
        if (std::abs(paced_dt) > std::abs(sum.worst_paced_dt)) sum.worst_paced_dt = paced_dt;
      }
      sum.grads_equal += r.grads_equal;
      results.push_back({{"model", r.model},
                         {"solver", r.solver},
                         {"budget", r.budget},
                         {"predicted_peak", r.predicted_peak},
                         {"measured_peak", r.measured_peak},
                         {"predicted_time", r.predicted_time},
                         {"measured_time", r.measured_time},
                         {"grads_equal_store_all", r.grads_equal},
                         {"exact", r.exact},
                         {"solve_seconds", r.solve_seconds},
                         {"measured_time_min", r.fastest},
                         {"page_faults_per_step", r.faults},
                         {"store_all_time_alongside", r.pace},
                         {"paced_time_diff", r.has_pace() ? nlohmann::json(r.paced_time_diff()) : nullptr}});
    }
    summaries.push_back(sum);
    results.push_back({{"model", kind},
                       {"solver", "bare-kernels"},
                       {"budget", nullptr},
                       {"predicted_peak", nullptr},
                       {"measured_peak", nullptr},
                       {"predicted_time", g.store_all_time()},
                       {"measured_time", bare.kernels},
                       {"grads_equal_store_all", nullptr},
                       {"store_all_time", reference.seconds},
                       {"store_all_overhead", ref.overhead},
                       {"stages", o.stages},
                       {"width", o.width},
                       {"batch", o.batch},
                       {"threads", omp_get_max_threads()}});
  }

  std::printf("\nsummary (load average at end: %s)\n", load_average().c_str());
  bool all_fit = true;
  for (const Summary& s : summaries) {
    std::printf("  %-8s %d runs: measured peak <= budget %d/%d, <= predicted peak %d/%d; time within 10%% of "
                "prediction %d/%d (worst %+.1f%%), paced %d/%d (worst %+.1f%%); grads bitwise = store-all %d/%d; "
                "store-all overhead over bare kernels %+.2f%%\n",
                s.model.c_str(), s.rows, s.within_budget, s.rows, s.within_prediction, s.rows, s.within10, s.rows,
                100 * s.worst_dt, s.paced_within10, s.paced_rows, 100 * s.worst_paced_dt, s.grads_equal, s.rows,
                100 * s.overhead);
    all_fit = all_fit && s.within_budget == s.rows && s.within_prediction == s.rows && s.grads_equal == s.rows;
  }
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << results.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "bench_runtime: cannot write %s\n", o.json_path.c_str());
      return 1;
    }
    std::printf("wrote %s\n", o.json_path.c_str());
  }
  // Memory and gradients are hard guarantees (exit 1 when broken); timings are reported only.
  return all_fit ? 0 : 1;
}
