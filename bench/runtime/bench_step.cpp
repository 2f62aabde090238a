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
// shared gradients and the SGD update (`rematch train` reports the same step without the update).
// Useful FLOPs are the model's forward and backward FLOPs without recomputation. The step time is
// the median of --steps steps after one warm-up; the breakdown comes from one more step.
// --cpu-time times steps and the peak by the process's CPU time per thread instead of the wall
// clock (as bench_kernels --cpu-time): on a machine shared with other work a step then costs only
// what it ran, but threads waiting at a barrier count as busy.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
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

  auto timed_step = [&](double* executor) {
    autodiff::Batch b = autodiff::copy_of(batch);  // the step consumes its batch; the copy is not timed
    const double start = clock_now();
    const autodiff::StepResult r = trainer.step(std::move(b));
    const double seconds = clock_now() - start;
    if (executor != nullptr) *executor = r.seconds;
    return seconds;
  };
  timed_step(nullptr);  // warm-up: JIT, first touches of the arena
  std::vector<double> wall, exec;
  for (int i = 0; i < steps; ++i) {
    double e = 0;
    wall.push_back(timed_step(&e));
    exec.push_back(e);
  }
  m.step = median(wall);
  m.executor = median(exec);

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
    std::printf("%-12s %-22s %9s %9s %8s %7s |", "shape", "model", "step_s", "exec_s", "GFLOP/s", "%peak");
    for (const char* k : kinds) std::printf(" %9s", k);
    std::printf("\n");
    for (const auto& [s, m] : rows) {
      char model[64];
      std::snprintf(model, sizeof model, "%d x %d, batch %d", s.depth, s.width, s.batch);
      const double gflops = m.flops / m.step * 1e-9;
      std::printf("%-12s %-22s %9.4f %9.4f %8.1f %6.1f%% |", s.name.c_str(), model, m.step, m.executor, gflops,
                  100 * gflops / peak);
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
                         {"breakdown_seconds", parts}});
    }
  }
  std::printf("\n  breakdown: share of the step in GEMM passes (with their fused epilogues and the narrow\n"
              "  layers' one-sweep backward), element-wise kernels, layout copies (pack, transposes), zero-fill of\n"
              "  fresh buffers, loss, optimizer, and other (executor, arena, branch sums of shared gradients)\n");
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
