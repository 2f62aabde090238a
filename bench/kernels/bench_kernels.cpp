// Throughput of the BRGEMM layer kernels against the host's measured fp32
// FMA peak, OpenBLAS sgemm on the same problems (im2col + sgemm for conv1d)
// and a naive loop (small problems only).
//
//   bench_kernels [--quick] [--narrow] [--only fc|conv|narrow|bf16,...] [--threads 1,2]
//                 [--cpu-time] [--json FILE]
//
// --narrow runs only the narrow-layer FC rows (C = K = 64, 128, 256 on batches of 32,768 and,
// unless --quick, 262,144), which also report bytes moved per FLOP against a streaming copy;
// it is short for --only narrow. --only picks row groups (fp32 FC, conv1d, narrow FC, bf16 FC)
// and --threads the thread counts, for measuring one kernel while working on it.
//
// --cpu-time times every run (ours, OpenBLAS, the peak loop) by the process's CPU time
// divided by the thread count instead of by the wall clock: on a machine shared with other
// work a preempted run then costs only what it actually ran, at the price of not charging
// threads that are descheduled while the others wait.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv1d.hpp"
#include "bench/host.hpp"
#include "kernels/fc.hpp"

namespace rk = rematch::kernels;
using Clock = std::chrono::steady_clock;

namespace {

// One pass of a layer: ours, the OpenBLAS equivalent, and the naive loop, each run as a whole.
struct Pass {
  const char* name;
  std::function<void()> ours, blas, naive;
};

// The naive loop of the comparison: out (rows x cols, row-major) = A * B with A(i, d) at
// a[i * a_row + d * a_depth] and B(d, o) at b[d * b_depth + o * b_col], so that transposed
// operands need no copy.
void naive_gemm(std::int64_t rows, std::int64_t cols, std::int64_t depth, const float* a, std::int64_t a_row,
                std::int64_t a_depth, const float* b, std::int64_t b_depth, std::int64_t b_col, float* out) {
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t o = 0; o < cols; ++o) {
      float sum = 0.0f;
      for (std::int64_t d = 0; d < depth; ++d) sum += a[i * a_row + d * a_depth] * b[d * b_depth + o * b_col];
      out[i * cols + o] = sum;
    }
}

// Naive loops are O(flops) at ~1 GFLOP/s: only time them on small problems.
constexpr double kNaiveMaxFlops = 3e8;

std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

bool g_cpu_time = false;  // --cpu-time

double run_clock(int threads) { return rematch::bench::run_clock(threads, g_cpu_time); }

// Best of repeated runs after one warm-up (at least 3 runs and `min_seconds` of wall time).
// The machine is shared, and other load can only slow a run down, so the
// fastest run is the best estimate of what the code can do; every
// implementation (and the peak) is measured the same way.
double seconds_per_run(const std::function<void()>& f, double min_seconds, int threads) {
  f();
  double best = 1e300;
  int runs = 0;
  const auto start = Clock::now();
  while (runs < 3 || std::chrono::duration<double>(Clock::now() - start).count() < min_seconds) {
    const double a = run_clock(threads);
    f();
    best = std::min(best, run_clock(threads) - a);
    ++runs;
  }
  return best;
}

struct Result {
  std::string layer, pass, dtype;
  nlohmann::json shape;
  std::string shape_text;
  int threads;
  double gflops, openblas_gflops, naive_gflops;  // naive < 0: not measured
};

struct Options {
  bool quick = false;
  // Row groups to run (--only) and thread counts (--threads).
  bool fc = true, conv = true, narrow = true, bf16 = true;
  std::vector<int> threads{1, 2};
  std::string json;
};

// A narrow FC row: a pass on C = K = 64..256 over a huge batch, where bytes moved per FLOP
// decide whether the pass can reach the FMA peak or only the memory bandwidth.
struct NarrowResult {
  std::string pass, shape_text;
  nlohmann::json shape;
  int threads;
  double gflops, bytes_per_flop;
};

struct Bench {
  Options opt;
  double peak = 0.0;                  // best of all measurements
  double peak_threads[3] = {0, 0, 0};  // best at 1 and 2 threads (index = threads)
  std::vector<Result> results;
  double stream_threads[3] = {0, 0, 0};  // streaming copy GB/s at 1 and 2 threads
  std::vector<NarrowResult> narrow;

  // A t-thread result is compared with the peak t threads can reach (never
  // below the 1-thread peak: adding a thread cannot lower the machine's peak).
  double peak_for(int threads) const { return std::max(peak_threads[1], peak_threads[threads]); }

  double min_seconds() const { return opt.quick ? 0.05 : 0.6; }

  void add(Result r) {
    std::fprintf(stderr, "  %s %s %s %s, %d thread(s): %.1f GFLOP/s\n", r.layer.c_str(), r.pass.c_str(),
                 r.dtype.c_str(), r.shape_text.c_str(), r.threads, r.gflops);
    results.push_back(std::move(r));
  }

  void print_table() const {
    if (results.empty()) return;
    std::printf("%-7s %-11s %-5s %-38s %2s %9s %7s %9s %7s %9s\n", "layer", "pass", "dtype", "shape",
                "th", "GFLOP/s", "%peak", "OpenBLAS", "ratio", "naive");
    for (const Result& r : results) {
      char naive[32] = "-";
      if (r.naive_gflops >= 0) std::snprintf(naive, sizeof(naive), "%.2f", r.naive_gflops);
      std::printf("%-7s %-11s %-5s %-38s %2d %9.1f %6.1f%% %9.1f %6.2fx %9s\n", r.layer.c_str(),
                  r.pass.c_str(), r.dtype.c_str(), r.shape_text.c_str(), r.threads, r.gflops,
                  100.0 * r.gflops / peak_for(r.threads), r.openblas_gflops, r.gflops / r.openblas_gflops, naive);
    }
  }

  void fc(std::int64_t n, std::int64_t c, std::int64_t k, int threads, rk::Precision precision) {
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    rk::Fc layer({n, c, k, 64, 64, 64, false, rk::Activation::none, precision});
    const auto xp = random_vector(n * c, 1), wp = random_vector(c * k, 2), dyp = random_vector(n * k, 3);
    const rk::BlockedMatrix x = rk::pack(xp, layer.x_shape()), w = rk::pack(wp, layer.w_shape());
    const rk::BlockedMatrix dy = rk::pack(dyp, layer.y_shape());
    rk::BlockedMatrix y(layer.y_shape()), dx(layer.x_shape()), dw(layer.w_shape());
    std::vector<float> out(std::max({n * k, n * c, c * k}));
    const double flops = 2.0 * double(n) * double(c) * double(k);
    const bool bf16 = precision == rk::Precision::bf16;
    const std::string text = "N=" + std::to_string(n) + " C=" + std::to_string(c) + " K=" + std::to_string(k);
    const nlohmann::json shape = {{"N", n}, {"C", c}, {"K", k}};

    const Pass passes[] = {
        {"fwd", [&] { layer.forward(x, w, {}, y); },
         [&] {
           cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, k, c, 1.0f, xp.data(), c,
                       wp.data(), k, 0.0f, out.data(), k);
         },
         [&] { naive_gemm(n, k, c, xp.data(), c, 1, wp.data(), k, 1, out.data()); }},
        {"bwd_data", [&] { layer.backward_data(dy, w, dx); },
         [&] {
           cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, c, k, 1.0f, dyp.data(), k,
                       wp.data(), k, 0.0f, out.data(), c);
         },
         [&] { naive_gemm(n, c, k, dyp.data(), k, 1, wp.data(), 1, k, out.data()); }},
        {"bwd_weights", [&] { layer.backward_weights(x, dy, dw, {}); },
         [&] {
           cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c, k, n, 1.0f, xp.data(), c,
                       dyp.data(), k, 0.0f, out.data(), k);
         },
         [&] { naive_gemm(c, k, n, xp.data(), 1, c, dyp.data(), k, 1, out.data()); }},
    };
    for (const Pass& p : passes) {
      const double ours = flops / seconds_per_run(p.ours, min_seconds(), threads) * 1e-9;
      const double blas = flops / seconds_per_run(p.blas, min_seconds(), threads) * 1e-9;
      const double naive = flops <= kNaiveMaxFlops && !bf16 ? flops / seconds_per_run(p.naive, 0.0, threads) * 1e-9 : -1.0;
      add({"fc", p.name, bf16 ? "bf16" : "fp32", shape, text, threads, ours, blas, naive});
    }
  }

  // Passes of an FC + bias + ReLU layer as the training step runs them: forward with the bias and
  // ReLU in its epilogue, backward_data, backward_weights with the bias gradient, and the fused
  // backward (ReLU mask, bias gradient, dx and dw; the FLOPs of its two GEMMs). Bytes per FLOP
  // count what a pass must read and write at least (activations and weights once each).
  void narrow_fc(std::int64_t n, std::int64_t ck, int threads) {
    omp_set_num_threads(threads);
    rk::Fc layer({n, ck, ck, 128, 64, 64, true, rk::Activation::relu, rk::Precision::fp32});
    auto filled = [](const rk::BlockShape& shape, std::uint32_t seed) {
      rk::BlockedMatrix m(shape);
      std::uint32_t state = seed;  // the shapes have no padding: every element is logical
      for (float& v : m.data.span()) {
        state = state * 1664525u + 1013904223u;
        v = float(state >> 8) * 0x1.0p-23f - 1.0f;
      }
      return m;
    };
    const rk::BlockedMatrix x = filled(layer.x_shape(), 1), w = filled(layer.w_shape(), 2);
    const rk::BlockedMatrix dy0 = filled(layer.y_shape(), 3);
    rk::BlockedMatrix y(layer.y_shape()), dy = filled(layer.y_shape(), 3), dx(layer.x_shape()), dw(layer.w_shape());
    std::vector<float> bias(ck, 0.01f), dbias(ck);
    layer.forward(x, w, bias, y);
    const double gemm = 2.0 * double(n) * double(ck) * double(ck);
    const double act = 4.0 * double(n) * double(ck), wb = 4.0 * double(ck) * double(ck);
    const std::string text = "N=" + std::to_string(n) + " C=K=" + std::to_string(ck);
    const nlohmann::json shape = {{"N", n}, {"C", ck}, {"K", ck}};
    struct NarrowPass {
      const char* name;
      double flops, bytes;
      std::function<void()> run;
    };
    const NarrowPass passes[] = {
        {"fwd", gemm, 2 * act + wb, [&] { layer.forward(x, w, bias, y); }},
        {"bwd_data", gemm, 2 * act + wb, [&] { layer.backward_data(dy0, w, dx); }},
        {"bwd_weights", gemm, 2 * act + wb, [&] { layer.backward_weights(x, dy0, dw, dbias); }},
        {"bwd_fused", 2 * gemm, 4 * act + 2 * wb, [&] { layer.backward(x, y, dy, w, &dx, dw, dbias); }},
    };
    for (const NarrowPass& p : passes) {
      const double gflops = p.flops / seconds_per_run(p.run, min_seconds(), threads) * 1e-9;
      narrow.push_back({p.name, text, shape, threads, gflops, p.bytes / p.flops});
      std::fprintf(stderr, "  fc %s %s, %d thread(s): %.1f GFLOP/s\n", p.name, text.c_str(), threads, gflops);
    }
  }

  // Memory-bound when the pass at the peak would need more than the streaming bandwidth.
  bool memory_bound(const NarrowResult& r) const {
    return r.bytes_per_flop * peak_for(r.threads) > stream_threads[r.threads];
  }
  double bound_ratio(const NarrowResult& r) const {
    return memory_bound(r) ? r.gflops * r.bytes_per_flop / stream_threads[r.threads]
                           : r.gflops / peak_for(r.threads);
  }
  bool narrow_ok(const NarrowResult& r) const { return bound_ratio(r) >= (memory_bound(r) ? 0.80 : 0.60); }

  void print_narrow() const {
    if (narrow.empty()) return;
    std::printf("\nnarrow FC layers (bias + ReLU); streaming copy %.1f GB/s at 1 thread, %.1f at 2; target: "
                ">= 60%% of the peak, or >= 80%% of the streaming copy where memory-bound\n",
                stream_threads[1], stream_threads[2]);
    std::printf("%-11s %-20s %2s %9s %7s %7s %8s %-7s %7s %s\n", "pass", "shape", "th", "GFLOP/s", "%peak", "B/FLOP",
                "GB/s", "bound", "%bound", "target");
    for (const NarrowResult& r : narrow) {
      std::printf("%-11s %-20s %2d %9.1f %6.1f%% %7.4f %8.1f %-7s %6.1f%% %s\n", r.pass.c_str(), r.shape_text.c_str(),
                  r.threads, r.gflops, 100.0 * r.gflops / peak_for(r.threads), r.bytes_per_flop,
                  r.gflops * r.bytes_per_flop, memory_bound(r) ? "memory" : "compute", 100.0 * bound_ratio(r),
                  narrow_ok(r) ? "met" : "MISSED");
    }
  }

  void conv(std::int64_t n, std::int64_t ch, std::int64_t width, std::int64_t taps, std::int64_t dil,
            int threads) {
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    const rk::Conv1dDesc d{n, ch, ch, width, taps, dil, rk::Padding::same, false};
    rk::Conv1d layer(d);
    const std::int64_t q = d.out_width(), cs = ch * taps;
    const auto x = random_vector(n * ch * width, 4), w = random_vector(taps * ch * ch, 5);
    const auto dy = random_vector(n * ch * q, 6);
    std::vector<float> y(n * ch * q), dx(x.size()), dw(w.size());
    // Baseline: im2col (C*S x Q per sample) + sgemm, the usual BLAS route; the
    // weights are the same numbers viewed as K x (C*S) with taps innermost.
    std::vector<float> col(cs * q), wk(w), out(std::max(y.size(), dw.size()));
    auto im2col = [&](std::int64_t s) {
#pragma omp parallel for schedule(static)
      for (std::int64_t r = 0; r < cs; ++r) {
        const std::int64_t i = r / taps, t = r % taps, shift = t * dil - d.pad_left();
        const float* src = x.data() + (s * ch + i) * width;
        for (std::int64_t p = 0; p < q; ++p) {
          const std::int64_t at = p + shift;
          col[r * q + p] = at >= 0 && at < width ? src[at] : 0.0f;
        }
      }
    };
    auto col2im = [&](std::int64_t s) {
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < ch; ++i) {
        float* dst = dx.data() + (s * ch + i) * width;
        std::fill(dst, dst + width, 0.0f);
        for (std::int64_t t = 0; t < taps; ++t) {
          const std::int64_t shift = t * dil - d.pad_left();
          for (std::int64_t p = 0; p < q; ++p) {
            const std::int64_t at = p + shift;
            if (at >= 0 && at < width) dst[at] += col[(i * taps + t) * q + p];
          }
        }
      }
    };
    const double flops = 2.0 * double(n) * double(ch) * double(ch) * double(taps) * double(q);
    const std::string text = "N=" + std::to_string(n) + " C=K=" + std::to_string(ch) + " W=" +
                             std::to_string(width) + " S=" + std::to_string(taps) + " d=" + std::to_string(dil);
    const nlohmann::json shape = {{"N", n}, {"C", ch}, {"K", ch}, {"W", width}, {"S", taps}, {"dilation", dil}, {"padding", "same"}};

    const Pass passes[] = {
        {"fwd", [&] { layer.forward(x, w, {}, y); },
         [&] {
           for (std::int64_t s = 0; s < n; ++s) {
             im2col(s);
             cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ch, q, cs, 1.0f, wk.data(), cs,
                         col.data(), q, 0.0f, out.data() + s * ch * q, q);
           }
         },
         [&] {
           for (std::int64_t s = 0; s < n; ++s)
             for (std::int64_t o = 0; o < ch; ++o)
               for (std::int64_t p = 0; p < q; ++p) {
                 float acc = 0.0f;
                 for (std::int64_t i = 0; i < ch; ++i)
                   for (std::int64_t t = 0; t < taps; ++t) {
                     const std::int64_t at = p + t * dil - d.pad_left();
                     if (at >= 0 && at < width) acc += w[(t * ch + o) * ch + i] * x[(s * ch + i) * width + at];
                   }
                 out[(s * ch + o) * q + p] = acc;
               }
         }},
        {"bwd_data", [&] { layer.backward_data(dy, w, dx); },
         [&] {
           for (std::int64_t s = 0; s < n; ++s) {
             cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cs, q, ch, 1.0f, wk.data(), cs,
                         dy.data() + s * ch * q, q, 0.0f, col.data(), q);
             col2im(s);
           }
         },
         {}},
        {"bwd_weights", [&] { layer.backward_weights(x, dy, dw, {}); },
         [&] {
           for (std::int64_t s = 0; s < n; ++s) {
             im2col(s);
             cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ch, cs, q, 1.0f,
                         dy.data() + s * ch * q, q, col.data(), q, s == 0 ? 0.0f : 1.0f, out.data(), cs);
           }
         },
         {}},
    };
    for (const Pass& p : passes) {
      const double ours = flops / seconds_per_run(p.ours, min_seconds(), threads) * 1e-9;
      const double blas = flops / seconds_per_run(p.blas, min_seconds(), threads) * 1e-9;
      const double naive = p.naive && flops <= kNaiveMaxFlops ? flops / seconds_per_run(p.naive, 0.0, threads) * 1e-9 : -1.0;
      add({"conv1d", p.name, "fp32", shape, text, threads, ours, blas, naive});
    }
  }

  void write_json() const {
    nlohmann::json j;
    j["peak_gflops"] = peak;
    j["peak_gflops_by_threads"] = {{"1", peak_threads[1]}, {"2", peak_threads[2]}};
    j["results"] = nlohmann::json::array();
    for (const Result& r : results) {
      nlohmann::json e = {{"layer", r.layer}, {"pass", r.pass}, {"shape", r.shape},
                          {"dtype", r.dtype}, {"threads", r.threads}, {"gflops", r.gflops},
                          {"pct_peak", 100.0 * r.gflops / peak_for(r.threads)}, {"openblas_gflops", r.openblas_gflops}};
      if (r.naive_gflops >= 0) e["naive_gflops"] = r.naive_gflops;
      j["results"].push_back(e);
    }
    j["stream_copy_gbps_by_threads"] = {{"1", stream_threads[1]}, {"2", stream_threads[2]}};
    for (const NarrowResult& r : narrow) {
      j["results"].push_back({{"layer", "fc"}, {"pass", r.pass}, {"shape", r.shape}, {"dtype", "fp32"},
                              {"threads", r.threads}, {"gflops", r.gflops},
                              {"pct_peak", 100.0 * r.gflops / peak_for(r.threads)},
                              {"bytes_per_flop", r.bytes_per_flop}, {"gbps", r.gflops * r.bytes_per_flop},
                              {"bound", memory_bound(r) ? "memory" : "compute"},
                              {"pct_bound", 100.0 * bound_ratio(r)}, {"target_met", narrow_ok(r)}});
    }
    std::ofstream(opt.json) << j.dump(2) << "\n";
  }
};

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      b.opt.quick = true;
    } else if (a == "--narrow") {
      b.opt.fc = b.opt.conv = b.opt.bf16 = false;
    } else if (a == "--only" && i + 1 < argc) {
      const std::vector<std::string> groups = rematch::bench::split_list(argv[++i]);
      auto has = [&](const char* g) { return std::find(groups.begin(), groups.end(), g) != groups.end(); };
      for (const std::string& g : groups) {
        if (g != "fc" && g != "conv" && g != "narrow" && g != "bf16") {
          std::fprintf(stderr, "bench_kernels: --only: unknown row group '%s' (fc, conv, narrow, bf16)\n", g.c_str());
          return 2;
        }
      }
      b.opt.fc = has("fc");
      b.opt.conv = has("conv");
      b.opt.narrow = has("narrow");
      b.opt.bf16 = has("bf16");
    } else if (a == "--threads" && i + 1 < argc) {
      b.opt.threads.clear();
      for (const std::string& t : rematch::bench::split_list(argv[++i])) {
        if (t != "1" && t != "2") {
          std::fprintf(stderr, "bench_kernels: --threads: expected 1, 2 or 1,2, got '%s'\n", t.c_str());
          return 2;
        }
        b.opt.threads.push_back(std::stoi(t));
      }
    } else if (a == "--cpu-time") {
      g_cpu_time = true;
    } else if (a == "--json" && i + 1 < argc) {
      b.opt.json = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--narrow] [--only fc|conv|narrow|bf16,...] [--threads 1,2] [--cpu-time]"
                   " [--json FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  // Other load on the machine can only lower a measurement, so the peak is the
  // best of several, taken before and after the kernels run.
  using rematch::bench::fma_peak_gflops;
  const double before1 = fma_peak_gflops(1, g_cpu_time), before2 = fma_peak_gflops(2, g_cpu_time);
  std::printf("setup: %s mode, %s clock, threads 1 and 2, bf16 BRGEMM %s, BRGEMM m <= %lld; FC blocks"
              " 64x64x64; conv1d 'same' padding, 64 positions x 64 channels per BRGEMM\n",
              b.opt.quick ? "quick" : "full", g_cpu_time ? "CPU-time" : "wall",
              rk::bf16_supported() ? "available" : "unavailable", static_cast<long long>(rk::preferred_m()));
  std::fflush(stdout);
  struct FcShape { std::int64_t n, ck; };
  struct ConvShape { std::int64_t n, ch, width, taps, dil; };
  const std::vector<FcShape> fc_quick{{256, 512}, {1024, 1024}};
  const std::vector<FcShape> fc_full{{256, 512}, {256, 2048}, {1024, 1024}, {1024, 4096}, {4096, 512}, {4096, 2048}, {4096, 4096}};
  const std::vector<ConvShape> conv_quick{{4, 64, 1000, 9, 2}};
  const std::vector<ConvShape> conv_full{{4, 64, 1000, 9, 2}, {16, 64, 1000, 3, 1},  {2, 64, 10000, 9, 2},  {16, 128, 1000, 9, 4},
                                         {2, 128, 10000, 3, 1}, {4, 128, 5000, 25, 8}, {8, 256, 2000, 3, 2},
                                         {2, 256, 10000, 9, 1}, {16, 256, 1000, 51, 8}};
  for (int threads : {1, 2}) b.stream_threads[threads] = rematch::bench::stream_copy_gbps(threads, g_cpu_time);
  std::printf("host: %s, %s; streaming copy %.1f GB/s at 1 thread, %.1f at 2\n", rematch::bench::cpu_model().c_str(),
              rematch::bench::vector_isa().c_str(), b.stream_threads[1], b.stream_threads[2]);
  for (int threads : b.opt.threads) {
    if (b.opt.narrow) {
      for (std::int64_t n : b.opt.quick ? std::vector<std::int64_t>{32768} : std::vector<std::int64_t>{32768, 262144}) {
        for (std::int64_t ck : {64, 128, 256}) b.narrow_fc(n, ck, threads);
      }
    }
    if (b.opt.fc) {
      for (const auto& s : b.opt.quick ? fc_quick : fc_full) b.fc(s.n, s.ck, s.ck, threads, rk::Precision::fp32);
    }
    if (b.opt.bf16 && rk::bf16_supported()) {
      const FcShape s = b.opt.quick ? fc_quick.back() : FcShape{4096, 2048};
      b.fc(s.n, s.ck, s.ck, threads, rk::Precision::bf16);
    }
    if (b.opt.conv) {
      for (const auto& s : b.opt.quick ? conv_quick : conv_full) b.conv(s.n, s.ch, s.width, s.taps, s.dil, threads);
    }
  }
  const double after1 = fma_peak_gflops(1, g_cpu_time), after2 = fma_peak_gflops(2, g_cpu_time);
  b.peak_threads[1] = std::max(before1, after1);
  b.peak_threads[2] = std::max(before2, after2);
  b.peak = std::max(b.peak_threads[1], b.peak_threads[2]);
  std::printf("fp32 FMA peak (register-only %s FMA loop, GFLOP/s): 1 thread %.1f / %.1f, 2 threads %.1f / %.1f"
              " (before / after); %%peak uses %.1f for 1 thread, %.1f for 2\n",
              rematch::bench::kPeakVecName, before1, after1, before2, after2, b.peak_for(1), b.peak_for(2));
  b.print_table();
  b.print_narrow();
  if (!b.opt.json.empty()) {
    b.write_json();
    std::printf("wrote %s\n", b.opt.json.c_str());
  }
  return 0;
}
