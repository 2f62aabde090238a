// Whole store-all training steps of a siamese conv1d encoder at genomics-like shapes (the conv1d
// rows of bench_kernels: long sequences, 64-128 channels, dilated taps), against the host's fp32
// FMA peak measured in the same run.
//
// Each model is a model file built by models::build: conv1d layers with a fused ReLU
// ("activation": "relu", one layer per stage), then global average pooling and a linear
// projection; two branches share the encoder; contrastive loss; SGD with momentum. A step is what
// `rematch train` runs (autodiff::Trainer::step on the store-all schedule): forward, loss,
// backward, the branch-gradient sum and the update, timed by the wall clock around the call.
// Useful FLOPs are the layers' GEMM and element-wise FLOPs (LayerCost) for both branches; the
// first layer's data gradient is not computed, so not counted.
//
//   bench_conv_step [--quick] [--steps N] [--threads 1|2] [--cpu-time] [--json FILE]
//
// --steps N times N steps per model after a warm-up step (default 8, 3 with --quick, which runs
// only the first model). --cpu-time times steps and the peak loop by the process's CPU time
// divided by the thread count (see bench_kernels): trustworthy at 1 thread on a shared machine,
// not at 2.
//
// Prints the CPU, ISA, peak, and per model and thread count the best and median step time, the
// GFLOP/s and % of peak of the best step, and where the best step's time went: conv forward and
// backward ops, the head (pooling, projection, loss) and what lies outside the schedule's ops.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "autodiff/arena.hpp"
#include "autodiff/trainer.hpp"
#include "bench/host.hpp"
#include "scheduler/io/atomic_file.hpp"
#include "kernels/brgemm.hpp"
#include "models/model_file.hpp"

namespace {

using namespace rematch;
using nlohmann::json;

struct Shape {
  std::int64_t batch, channels, length, taps;
  int layers;  // conv1d layers, dilations 1, 2, 4, 8, 1, ...
};

std::string shape_text(const Shape& s) {
  return "N=" + std::to_string(s.batch) + " C=K=" + std::to_string(s.channels) + " W=" +
         std::to_string(s.length) + " S=" + std::to_string(s.taps) + " x" + std::to_string(s.layers);
}

json model_document(const Shape& s) {
  json layers = json::array(), stages = json::array();
  for (int l = 0; l < s.layers; ++l) {
    layers.push_back({{"type", "conv1d"}, {"out", s.channels}, {"taps", s.taps},
                      {"dilation", 1 << (l % 4)}, {"activation", "relu"}});
    stages.push_back(1);
  }
  layers.push_back({{"type", "global_avg_pool"}});
  layers.push_back({{"type", "linear"}, {"out", 64}});
  stages.push_back(2);  // the head: pooling and projection
  const json input = {{"channels", s.channels}, {"length", s.length}};
  return {{"name", "siamese-conv-" + std::to_string(s.channels)},
          {"branches", {{{"name", "a"}, {"input", input}, {"encoder", "seq"}},
                        {{"name", "b"}, {"input", input}, {"encoder", "seq"}}}},
          {"encoders", {{"seq", {{"stages", stages}, {"layers", layers}}}}},
          {"loss", {{"type", "contrastive"}, {"margin", 1.0}}}};
}

// Useful FLOPs of one step: every layer's forward and weight gradient, and its data gradient
// unless it is the encoder's first layer, for every branch.
double step_flops(autodiff::JoinModel& model) {
  double flops = 0;
  for (int j = 0; j < model.branches(); ++j) {
    const autodiff::Encoder& e = model.encoder_of(j);
    bool first = true;
    for (int st = 0; st < e.stages(); ++st) {
      for (const autodiff::Layer* l : e.stage_layers(st)) {
        const kernels::LayerCost c = l->cost();
        flops += c.fwd_flops + c.bwd_weights_flops + (first ? 0.0 : c.bwd_data_flops);
        first = false;
      }
    }
  }
  return flops;
}

// Seconds of the schedule's ops by kind: conv1d stage forward / backward (every stage but the
// last), the head's (the last stage: pooling, projection) forward and backward, and the loss.
struct Breakdown {
  double conv_fwd = 0, conv_bwd = 0, head = 0, loss = 0;
  double ops() const { return conv_fwd + conv_bwd + head + loss; }
};

Breakdown breakdown(const Schedule& ops, const autodiff::StepResult& step, int last_stage) {
  Breakdown b;
  for (std::size_t i = 0; i < ops.size() && i < step.op_seconds.size(); ++i) {
    const Op& op = ops[i];
    const double t = step.op_seconds[i];
    if (op.kind == OpKind::loss) b.loss += t;
    else if (op.kind == OpKind::drop) continue;
    else if (op.stage == last_stage) b.head += t;
    else if (op.kind == OpKind::B) b.conv_bwd += t;
    else b.conv_fwd += t;
  }
  return b;
}

struct Result {
  Shape shape;
  int threads = 0;
  double flops = 0, best = 0, median = 0;
  Breakdown split;  // of the best step
  double peak = 0;
};

Result run(const Shape& s, int threads, int steps, bool cpu_time) {
  omp_set_num_threads(threads);
  const models::ModelDescription description = models::parse_model_document(model_document(s), "bench");
  autodiff::Arena parameters("parameters");
  auto model = models::build(description, s.batch, 1, parameters);
  autodiff::TrainerOptions options;
  options.activation_budget = std::size_t{8} << 30;  // the arena only counts: store-all fits
  options.solve.solver = "store-all";
  options.optimizer = {.kind = autodiff::OptimizerConfig::Kind::sgd, .lr = 1e-4f};
  options.profile.repeats = 1;
  options.calibrate = false;
  autodiff::Trainer trainer(*model, parameters, options);

  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> input(std::size_t(s.batch * s.channels * s.length));
  for (float& v : input) v = normal(rng);
  std::vector<float> targets;
  for (std::int64_t r = 0; r < s.batch; ++r) targets.push_back(float(r % 2));

  Result r{s, threads, step_flops(*model), 1e300, 0, {}, 0};
  std::vector<double> times;
  for (int i = 0; i <= steps; ++i) {  // step 0 warms up (page faults, JIT, first touches)
    autodiff::Batch batch{{}, targets};
    for (int j = 0; j < 2; ++j) batch.inputs.push_back(autodiff::input_rows(input));
    const double start = bench::run_clock(threads, cpu_time);
    const autodiff::StepResult step = trainer.step(std::move(batch));
    const double seconds = bench::run_clock(threads, cpu_time) - start;
    if (i == 0) continue;
    times.push_back(seconds);
    if (seconds < r.best) {
      r.best = seconds;
      r.split = breakdown(trainer.plan().ops, step, model->encoder(0).stages() - 1);
    }
  }
  std::sort(times.begin(), times.end());
  r.median = times[times.size() / 2];
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, cpu_time = false;
  int steps = 0;  // 0: 8, or 3 with --quick
  std::vector<int> thread_counts = {1, 2};
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--cpu-time") {
      cpu_time = true;
    } else if (a == "--steps" && i + 1 < argc) {
      char* end = nullptr;
      const long n = std::strtol(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || n < 1 || n > 100000) {
        std::fprintf(stderr, "bench_conv_step: --steps: '%s' is not a step count (1 to 100000)\n", argv[i]);
        return 3;
      }
      steps = int(n);
    } else if (a == "--threads" && i + 1 < argc && (std::string(argv[i + 1]) == "1" || std::string(argv[i + 1]) == "2")) {
      thread_counts = {std::atoi(argv[++i])};
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--steps N] [--threads 1|2] [--cpu-time] [--json FILE]\n", argv[0]);
      return 3;
    }
  }
  const std::vector<Shape> shapes = quick ? std::vector<Shape>{{16, 64, 1000, 3, 4}}
                                          : std::vector<Shape>{{16, 64, 1000, 3, 4}, {16, 64, 1000, 9, 4},
                                                               {16, 128, 1000, 9, 4}};
  // Other load can only lower a measurement: the peak is the best of before and after.
  const double before1 = bench::fma_peak_gflops(1, cpu_time), before2 = bench::fma_peak_gflops(2, cpu_time);
  std::printf("host: %s, %s (BRGEMM m <= %lld), %s clock\n", bench::cpu_model().c_str(),
              bench::vector_isa().c_str(), static_cast<long long>(kernels::preferred_m()),
              cpu_time ? "CPU-time" : "wall");
  std::fflush(stdout);
  std::vector<Result> results;
  for (int threads : thread_counts) {
    for (const Shape& s : shapes) results.push_back(run(s, threads, steps > 0 ? steps : quick ? 3 : 8, cpu_time));
  }
  const double peak1 = std::max(before1, bench::fma_peak_gflops(1, cpu_time));
  const double peak2 = std::max({before2, bench::fma_peak_gflops(2, cpu_time), peak1});
  std::printf("fp32 FMA peak (register-only %s loop, GFLOP/s): 1 thread %.1f, 2 threads %.1f\n",
              bench::kPeakVecName, peak1, peak2);
  std::printf("siamese conv1d encoder, store-all training step (conv1d + fused ReLU per stage; global"
              " average pool, linear 64; contrastive; SGD)\n");
  std::printf("%-30s %2s %9s %9s %7s %8s %6s | %8s %8s %6s %6s %6s\n", "shape", "th", "best ms",
              "median ms", "GFLOP", "GFLOP/s", "%peak", "conv fwd", "conv bwd", "head", "loss", "other");
  json out = {{"cpu", bench::cpu_model()}, {"isa", bench::vector_isa()}, {"cpu_time", cpu_time},
              {"peak_gflops_by_threads", {{"1", peak1}, {"2", peak2}}}, {"results", json::array()}};
  for (Result& r : results) {
    r.peak = r.threads == 1 ? peak1 : peak2;
    const double gflops = r.flops / r.best * 1e-9;
    const Breakdown& b = r.split;
    const double other = std::max(0.0, r.best - b.ops());
    auto pct = [&](double t) { return 100.0 * t / r.best; };
    std::printf("%-30s %2d %9.2f %9.2f %7.2f %8.1f %5.1f%% | %7.1f%% %7.1f%% %5.1f%% %5.1f%% %5.1f%%\n",
                shape_text(r.shape).c_str(), r.threads, 1e3 * r.best, 1e3 * r.median, r.flops * 1e-9,
                gflops, 100.0 * gflops / r.peak, pct(b.conv_fwd), pct(b.conv_bwd), pct(b.head), pct(b.loss),
                pct(other));
    out["results"].push_back(
        {{"shape", {{"N", r.shape.batch}, {"C", r.shape.channels}, {"K", r.shape.channels},
                    {"W", r.shape.length}, {"S", r.shape.taps}, {"layers", r.shape.layers}}},
         {"threads", r.threads}, {"step_seconds", r.best}, {"median_step_seconds", r.median},
         {"flops", r.flops}, {"gflops", gflops}, {"pct_peak", 100.0 * gflops / r.peak},
         {"seconds", {{"conv_forward", b.conv_fwd}, {"conv_backward", b.conv_bwd}, {"head", b.head},
                      {"loss", b.loss}, {"other", other}}}});
  }
  if (!json_path.empty()) {
    try {
      io::write_file_atomically(json_path, out.dump(2) + "\n");
    } catch (const io::WriteError& e) {
      std::fprintf(stderr, "bench_conv_step: %s\n", e.what());
      return 3;
    }
    std::printf("wrote %s\n", json_path.c_str());
  }
  return 0;
}
