// Whole training steps against the machine's peak: store-all steps of zoo models (siamese-mlp
// of a few shapes) through autodiff::Trainer, their useful GFLOP/s as a share of the fp32 FMA
// peak measured in the same run, and where a step's time goes (kernels/op_timing.hpp).
//
//   bench_step [--quick] [--threads 1,2] [--shapes wide,deep,narrow,narrow-huge] [--steps N]
//              [--cpu-time] [--json FILE]
//   bench_step --peak-only [--threads T]     # the peak alone, one JSON line per thread count
//
// Shapes (siamese-mlp: two branches, one shared encoder 784 -> width ... -> 64, contrastive loss):
//   wide         depth 8, width 2048, batch 512
//   deep         depth 32, width 512, batch 8192
//   narrow       depth 4, width 128, batch 32768
//   narrow-huge  depth 4, width 128, batch 262144, 2 layers per stage (the beyond-RAM layers)
// A step is Trainer::step on a store-all plan: forward, loss, backward, the branch sum of the
// shared gradients and the SGD update, each stage's right after its last backward (the step
// `rematch train` reports).
// Useful FLOPs are the model's forward and backward FLOPs without recomputation. The step time is
// the median of --steps steps after one warm-up; the breakdown comes from one more step.
// Each timed step is followed by the passes of one hidden stage alone (its forward and backward on
// buffers of their own, reused from run to run), once as they are left in cache and once with the
// caches evicted before each pass: the rates of that stage's ops inside the step next to the same
// passes alone, at the same moment. A shared host changes speed by a third from one minute to the
// next, and cache- and memory-bound passes lose more than the register-only peak loop, so a step's
// share of the peak alone does not tell a loss in the step's context (in-step rates below the
// alone ones) from a slow host (all low); the evicted rates show what reading the operands from
// memory costs.
// --cpu-time times steps and the peak by the process's CPU time per thread instead of the wall
// clock (as bench_kernels --cpu-time): on a machine shared with other work a step then costs only
// what it ran, but threads waiting at a barrier count as busy.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "autodiff/trainer.hpp"
#include "bench/host.hpp"
#include "scheduler/io/atomic_file.hpp"
#include "kernels/brgemm.hpp"
#include "kernels/op_timing.hpp"
#include "models/zoo.hpp"

namespace {

using namespace rematch;
bool g_cpu_time = false;  // --cpu-time

double clock_now() { return rematch::bench::run_clock(omp_get_max_threads(), g_cpu_time); }

struct Shape {
  std::string name;
  int depth, width, batch, layers_per_stage;
};
const std::vector<Shape> kShapes = {{"wide", 8, 2048, 512, 1},
                                    {"deep", 32, 512, 8192, 1},
                                    {"narrow", 4, 128, 32768, 1},
                                    {"narrow-huge", 4, 128, 262144, 2}};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

struct Measured {
  double step = 0, executor = 0, flops = 0;
  std::map<std::string, double> breakdown;  // seconds by kind, "other" the rest of the step
  int hidden_stage = 0;
  // GFLOP/s of the hidden stage's forward and backward ops inside the steps (every stage of
  // that shape, both branches) and of the same passes alone, cached and from memory; medians over
  // the timed steps.
  struct Rates {
    double forward = 0, backward = 0;
  };
  Rates in_step, cached, from_memory;
};

// A blocked tensor of `shape` with uniform values in [lo, hi) (zero padding kept).
autodiff::Tensor random_tensor(const kernels::BlockShape& shape, kernels::Allocator& allocator, std::uint32_t seed,
                               float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(lo, hi);
  std::vector<float> plain(std::size_t(shape.rows * shape.cols));
  for (float& v : plain) v = value(rng);
  autodiff::Tensor t(shape, false, allocator);
  kernels::pack_into(plain, t);
  return t;
}

// One stage of branch 0's encoder run alone: its taped forward, then its backward, as a store-all
// step runs them, on an input and an output gradient of its own in an arena of its own (kernel
// scratch from it too, as in a step). With `evict`, a write over a buffer several times the size
// of a last-level cache precedes each pass, so the pass reads its operands from memory.
class StageAlone {
 public:
  StageAlone(autodiff::JoinModel& model, int stage)
      : model_(model), encoder_(model.encoder_of(0)), stage_(stage), grads_(encoder_.make_gradients(arena_)),
        forward_flops_(encoder_.forward_flops(stage)), backward_flops_(encoder_.backward_flops(stage)) {
    // Inputs of a hidden stage are ReLU outputs: non-negative.
    x_ = encoder_.store(random_tensor(encoder_.input_shape(stage), arena_, 11, 0.0f, 1.0f), arena_);
    dy_ = random_tensor(encoder_.output_shape(stage), arena_, 13, -1.0f, 1.0f);
  }
  // GFLOP/s of the forward and of the backward.
  Measured::Rates run(bool evict) {
    autodiff::Tensor dy(dy_.shape, false, arena_, kernels::Uninitialised{});
    std::copy(dy_.data.span().begin(), dy_.data.span().end(), dy.data.span().begin());
    autodiff::Stored stored_dy = encoder_.store(std::move(dy), arena_);
    model_.set_scratch_allocator(&arena_.transient());
    model_.select_branch(0);
    if (evict) evict_caches();
    const double start = clock_now();
    autodiff::Saved xbar = encoder_.forward_taped(stage_, x_, arena_);
    const double forward_end = clock_now();
    if (evict) evict_caches();
    const double backward_start = clock_now();
    const autodiff::Stored dx = encoder_.backward(stage_, x_, std::move(xbar), std::move(stored_dy), true, arena_, grads_);
    const double end = clock_now();
    model_.set_scratch_allocator(nullptr);
    return {forward_flops_ / (forward_end - start) * 1e-9, backward_flops_ / (end - backward_start) * 1e-9};
  }

 private:
  autodiff::JoinModel& model_;
  autodiff::Encoder& encoder_;
  int stage_;
  autodiff::Arena arena_{"stage alone"};
  autodiff::Gradients grads_;
  autodiff::Stored x_;
  autodiff::Tensor dy_;
  double forward_flops_, backward_flops_;
  // 256 MiB: more than the last-level cache of any CPU the benches run on.
  std::vector<unsigned char> eviction_ = std::vector<unsigned char>(std::size_t{256} << 20);
  unsigned char fill_ = 0;

  void evict_caches() {
    std::memset(eviction_.data(), ++fill_, eviction_.size());
  }
};

Measured run_shape(const Shape& s, int steps) {
  models::ModelConfig config;
  config.model = "siamese-mlp";
  config.depth = s.depth;
  config.width = s.width;
  config.batch = s.batch;
  config.layers_per_stage = s.layers_per_stage;
  autodiff::Arena parameters("parameters");
  auto model = models::build_model(config, parameters);
  autodiff::TrainerOptions options;
  options.activation_budget = std::size_t{1} << 42;  // store-all needs no limit
  options.solve.solver = "store-all";
  options.profile.repeats = 1;
  options.calibrate = false;
  autodiff::Trainer trainer(*model, parameters, options);

  Measured m;
  for (int j = 0; j < model->branches(); ++j) {
    const autodiff::Encoder& e = model->encoder_of(j);
    for (int i = 0; i < e.stages(); ++i) m.flops += e.forward_flops(i) + e.backward_flops(i);
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  autodiff::Batch batch;
  for (int j = 0; j < model->branches(); ++j) {
    const auto& in = model->encoder_of(j).input_shape(0);
    autodiff::InputRows x(std::size_t(in.rows * in.cols));
    for (float& v : x.span()) v = pixel(rng);
    batch.inputs.push_back(std::move(x));
  }
  for (int r = 0; r < s.batch; ++r) batch.targets.push_back(float(r % 2));

  // The hidden stage compared alone and in the step, and the ops of the plan that run a stage of
  // its shape (every hidden stage of an MLP but the first and the last).
  const autodiff::Encoder& encoder = model->encoder_of(0);
  m.hidden_stage = encoder.stages() / 2;
  const double stage_forward_flops = encoder.forward_flops(m.hidden_stage);
  const double stage_backward_flops = encoder.backward_flops(m.hidden_stage);
  auto like_hidden = [&](const Op& op) {
    const autodiff::Encoder& e = model->encoder_of(op.branch);
    return op.kind != OpKind::loss && op.kind != OpKind::drop && &e == &encoder &&
           e.input_shape(op.stage) == encoder.input_shape(m.hidden_stage) &&
           e.output_shape(op.stage) == encoder.output_shape(m.hidden_stage) &&
           e.forward_flops(op.stage) == stage_forward_flops;
  };
  StageAlone alone(*model, m.hidden_stage);

  std::vector<double> forward_in_step, backward_in_step;
  auto timed_step = [&](double* executor) {
    autodiff::Batch b = autodiff::copy_of(batch);  // the step consumes its batch; the copy is not timed
    const double start = clock_now();
    const autodiff::StepResult r = trainer.step(std::move(b));
    const double seconds = clock_now() - start;
    if (executor != nullptr) {
      *executor = r.seconds;
      double forward = 0, backward = 0, forward_flops = 0, backward_flops = 0;
      const Schedule& ops = trainer.plan().ops;
      for (std::size_t i = 0; i < ops.size(); ++i) {
        if (!like_hidden(ops[i])) continue;
        if (ops[i].kind == OpKind::B) {
          backward += r.op_seconds[i];
          backward_flops += stage_backward_flops;
        } else {
          forward += r.op_seconds[i];
          forward_flops += stage_forward_flops;
        }
      }
      forward_in_step.push_back(forward_flops / forward * 1e-9);
      backward_in_step.push_back(backward_flops / backward * 1e-9);
    }
    return seconds;
  };
  timed_step(nullptr);  // warm-up: JIT, first touches of the arena
  alone.run(true);
  std::vector<double> wall, exec, forward_cached, backward_cached, forward_memory, backward_memory;
  for (int i = 0; i < steps; ++i) {
    double e = 0;
    wall.push_back(timed_step(&e));
    exec.push_back(e);
    const Measured::Rates cached = alone.run(false), from_memory = alone.run(true);
    forward_cached.push_back(cached.forward);
    backward_cached.push_back(cached.backward);
    forward_memory.push_back(from_memory.forward);
    backward_memory.push_back(from_memory.backward);
  }
  m.step = median(wall);
  m.executor = median(exec);
  m.in_step = {median(forward_in_step), median(backward_in_step)};
  m.cached = {median(forward_cached), median(backward_cached)};
  m.from_memory = {median(forward_memory), median(backward_memory)};

  kernels::reset_op_times();
  kernels::enable_op_timing(true, g_cpu_time);
  const double breakdown_step = timed_step(nullptr);
  kernels::enable_op_timing(false);
  double counted = 0;
  for (int k = 0; k < kernels::kOpKinds; ++k) {
    const auto kind = static_cast<kernels::OpKind>(k);
    m.breakdown[kernels::op_kind_name(kind)] = kernels::op_seconds(kind);
    counted += kernels::op_seconds(kind);
  }
  // Scale to the median step, so the parts add up to the reported step time (CPU time is of all
  // threads, the step's of one).
  const double scale = m.step / breakdown_step / (g_cpu_time ? omp_get_max_threads() : 1);
  for (auto& [kind, seconds] : m.breakdown) seconds *= scale;
  m.breakdown["other"] = std::max(0.0, m.step - counted * scale);
  return m;
}

int usage() {
  std::fprintf(stderr,
               "usage: bench_step [--quick] [--threads 1,2] [--shapes wide,deep,narrow,narrow-huge] [--steps N]\n"
               "                  [--cpu-time] [--json FILE] [--peak-only]\n");
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::vector<int> threads = {1, 2};
  std::vector<std::string> shapes;
  for (const Shape& s : kShapes) shapes.push_back(s.name);
  int steps = 5;
  bool peak_only = false;
  std::string json_path;
  try {
    for (int a = 1; a < argc; ++a) {
      const std::string arg = argv[a];
      auto value = [&]() -> std::string {
        if (a + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++a];
      };
      if (arg == "--quick") steps = 2;
      else if (arg == "--steps") steps = std::stoi(value());
      else if (arg == "--threads") {
        threads.clear();
        for (const auto& t : rematch::bench::split_list(value())) threads.push_back(std::stoi(t));
      } else if (arg == "--shapes") shapes = rematch::bench::split_list(value());
      else if (arg == "--json") json_path = value();
      else if (arg == "--peak-only") peak_only = true;
      else if (arg == "--cpu-time") g_cpu_time = true;
      else return usage();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_step: %s\n", e.what());
    return usage();
  }
  if (steps < 1 || threads.empty()) return usage();
  for (int t : threads) {
    if (t < 1) return usage();
  }
  std::vector<Shape> chosen;
  for (const std::string& name : shapes) {
    auto it = std::find_if(kShapes.begin(), kShapes.end(), [&](const Shape& s) { return s.name == name; });
    if (it == kShapes.end()) {
      std::fprintf(stderr, "bench_step: unknown shape '%s' (expected wide, deep, narrow or narrow-huge)\n",
                   name.c_str());
      return 3;
    }
    chosen.push_back(*it);
  }

  const std::string cpu = bench::cpu_model(), isa = bench::vector_isa();
  if (peak_only) {
    for (int t : threads) {
      std::printf("%s\n", nlohmann::json({{"cpu", cpu}, {"isa", isa}, {"threads", t},
                                          {"peak_gflops", bench::fma_peak_gflops(t, g_cpu_time)}}).dump().c_str());
    }
    return 0;
  }
  std::printf("bench_step: store-all steps of siamese-mlp (Trainer::step: forward, loss, backward, SGD update)\n");
  std::printf("  host: %s, %s, bf16 BRGEMM %s; %d timed steps after 1 warm-up (median), %s clock\n", cpu.c_str(),
              isa.c_str(), kernels::bf16_supported() ? "available" : "unavailable", steps,
              g_cpu_time ? "CPU-time" : "wall");
  std::ifstream loadavg("/proc/loadavg");
  std::string l1, l5, l15;
  loadavg >> l1 >> l5 >> l15;
  std::printf("  load average at start: %s %s %s\n", l1.c_str(), l5.c_str(), l15.c_str());

  nlohmann::json results = nlohmann::json::array(), peaks = nlohmann::json::object();
  const char* kinds[] = {"gemm", "eltwise", "layout", "zero_fill", "loss", "optimizer", "other"};
  for (int t : threads) {
    omp_set_num_threads(t);
    const double before = bench::fma_peak_gflops(t, g_cpu_time);
    std::vector<std::pair<Shape, Measured>> rows;
    for (const Shape& s : chosen) rows.emplace_back(s, run_shape(s, steps));
    // Other load only lowers a measurement: the peak is the better of before and after.
    const double peak = std::max(before, bench::fma_peak_gflops(t, g_cpu_time));
    peaks[std::to_string(t)] = peak;
    std::printf("\n%d thread(s): fp32 FMA peak %.1f GFLOP/s (register-only %s FMA loop, best before / after)\n", t,
                peak, bench::kPeakVecName);
    std::printf("%-12s %-22s %9s %9s %8s %7s | %5s %-19s %-19s |", "shape", "model", "step_s", "exec_s", "GFLOP/s",
                "%peak", "stage", "fwd step/cache/mem", "bwd step/cache/mem");
    for (const char* k : kinds) std::printf(" %9s", k);
    std::printf("\n");
    for (const auto& [s, m] : rows) {
      char model[64];
      std::snprintf(model, sizeof model, "%d x %d, batch %d", s.depth, s.width, s.batch);
      const double gflops = m.flops / m.step * 1e-9;
      std::printf("%-12s %-22s %9.4f %9.4f %8.1f %6.1f%% | %5d %4.1f/%4.1f/%4.1f%%     %4.1f/%4.1f/%4.1f%%     |",
                  s.name.c_str(), model, m.step, m.executor, gflops, 100 * gflops / peak, m.hidden_stage,
                  100 * m.in_step.forward / peak, 100 * m.cached.forward / peak, 100 * m.from_memory.forward / peak,
                  100 * m.in_step.backward / peak, 100 * m.cached.backward / peak, 100 * m.from_memory.backward / peak);
      nlohmann::json parts = nlohmann::json::object();
      for (const char* k : kinds) {
        std::printf(" %8.1f%%", 100 * m.breakdown.at(k) / m.step);
        parts[k] = m.breakdown.at(k);
      }
      std::printf("\n");
      results.push_back({{"shape", s.name}, {"model", "siamese-mlp"}, {"depth", s.depth}, {"width", s.width},
                         {"batch", s.batch}, {"layers_per_stage", s.layers_per_stage}, {"threads", t},
                         {"step_seconds", m.step}, {"executor_seconds", m.executor}, {"step_flops", m.flops},
                         {"gflops", gflops}, {"pct_peak", 100 * gflops / peak}, {"peak_gflops", peak},
                         {"breakdown_seconds", parts},
                         {"hidden_stage", {{"stage", m.hidden_stage},
                                           {"forward_gflops_in_step", m.in_step.forward},
                                           {"forward_gflops_cached", m.cached.forward},
                                           {"forward_gflops_from_memory", m.from_memory.forward},
                                           {"backward_gflops_in_step", m.in_step.backward},
                                           {"backward_gflops_cached", m.cached.backward},
                                           {"backward_gflops_from_memory", m.from_memory.backward}}}});
    }
  }
  std::printf("\n  stage: a hidden stage of branch 0; fwd / bwd step/cache/mem: its forward and backward as %% of the\n"
              "  peak inside the steps (every stage of its shape, both branches), then alone on buffers of their own\n"
              "  right after each step, as left in cache and with the caches evicted first (medians); all low together:\n"
              "  the host was slower, not the step\n");
  std::printf("  breakdown: share of the step in GEMM passes (with their fused epilogues and the narrow\n"
              "  layers' one-sweep backward), element-wise kernels, layout copies (pack, transposes), zero-fill of\n"
              "  fresh buffers, loss, optimizer (which also adds the branches' gradients of a shared encoder)\n"
              "  and other (executor, arena)\n");
  if (!json_path.empty()) {
    const nlohmann::json doc = {{"cpu", cpu}, {"isa", isa}, {"clock", g_cpu_time ? "cpu" : "wall"},
                                {"peak_gflops_by_threads", peaks}, {"results", results}};
    try {
      io::write_file_atomically(json_path, doc.dump(2) + "\n");
    } catch (const io::WriteError& e) {
      std::fprintf(stderr, "bench_step: %s\n", e.what());
      return 1;
    }
    std::printf("wrote %s\n", json_path.c_str());
  }
  return 0;
}
