// Throughput of the BRGEMM layer kernels against the host's measured fp32
// FMA peak, OpenBLAS sgemm on the same problems (im2col + sgemm for conv1d)
// and a naive loop (small problems only).
//
//   bench_kernels [--quick] [--cpu-time] [--json FILE]
//
// --cpu-time times every run (ours, OpenBLAS, the peak loop) by the process's CPU time
// divided by the thread count instead of by the wall clock: on a machine shared with other
// work a preempted run then costs only what it actually ran, at the price of not charging
// threads that are descheduled while the others wait.
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <ctime>
#include <string>
#include <vector>

#include "kernels/conv1d.hpp"
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

// Seconds of the run so far by the chosen clock: wall, or process CPU time per thread.
double run_clock(int threads) {
  if (!g_cpu_time) return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double(t.tv_sec) + 1e-9 * double(t.tv_nsec)) / threads;
}

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

// Register-only FMA loop: independent accumulators (more than FMA latency x
// pipes) and no memory traffic, so it runs at the FMA units' throughput. The
// accumulators and the two constants must fit the register file: 16 ymm
// accumulators spill on AVX2 (16 registers) and measured 58 instead of 102 GFLOP/s.
#ifdef __AVX512F__
using Vec = __m512;
constexpr int kLanes = 16;
constexpr int kAccumulators = 16;
constexpr const char* kVecName = "zmm";
inline Vec vset(float f) { return _mm512_set1_ps(f); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
#else
using Vec = __m256;
constexpr int kLanes = 8;
constexpr int kAccumulators = 12;
constexpr const char* kVecName = "ymm";
inline Vec vset(float f) { return _mm256_set1_ps(f); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
#endif

__attribute__((noinline)) float fma_loop(long iters) {
  Vec acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = vset(float(i) * 1e-3f);
  const Vec a = vset(0.999999f), b = vset(1e-6f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kAccumulators; ++i) acc[i] = vfma(acc[i], a, b);
  }
  float lanes[kLanes], sum = 0.0f;
  for (int i = 0; i < kAccumulators; ++i) {
    std::memcpy(lanes, &acc[i], sizeof(lanes));
    for (float l : lanes) sum += l;
  }
  return sum;
}

double fma_peak_gflops(int threads) {
  constexpr long kIters = 20'000'000;
  constexpr double kFlopsPerIter = 2.0 * kAccumulators * kLanes;
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    volatile float sink = 0.0f;
    const double a = run_clock(threads);
#pragma omp parallel num_threads(threads)
    {
      const float r = fma_loop(kIters);
#pragma omp critical
      sink = sink + r;
    }
    const double s = run_clock(threads) - a;
    best = std::max(best, kFlopsPerIter * kIters * threads / s * 1e-9);
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
  std::string json;
};

struct Bench {
  Options opt;
  double peak = 0.0;                  // best of all measurements
  double peak_threads[3] = {0, 0, 0};  // best at 1 and 2 threads (index = threads)
  std::vector<Result> results;

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
    } else if (a == "--cpu-time") {
      g_cpu_time = true;
    } else if (a == "--json" && i + 1 < argc) {
      b.opt.json = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--cpu-time] [--json FILE]\n", argv[0]);
      return 2;
    }
  }
  // Other load on the machine can only lower a measurement, so the peak is the
  // best of several, taken before and after the kernels run.
  const double before1 = fma_peak_gflops(1), before2 = fma_peak_gflops(2);
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
  for (int threads : {1, 2}) {
    for (const auto& s : b.opt.quick ? fc_quick : fc_full) b.fc(s.n, s.ck, s.ck, threads, rk::Precision::fp32);
    if (rk::bf16_supported()) {
      const FcShape s = b.opt.quick ? fc_quick.back() : FcShape{4096, 2048};
      b.fc(s.n, s.ck, s.ck, threads, rk::Precision::bf16);
    }
    for (const auto& s : b.opt.quick ? conv_quick : conv_full) b.conv(s.n, s.ch, s.width, s.taps, s.dil, threads);
  }
  const double after1 = fma_peak_gflops(1), after2 = fma_peak_gflops(2);
  b.peak_threads[1] = std::max(before1, after1);
  b.peak_threads[2] = std::max(before2, after2);
  b.peak = std::max(b.peak_threads[1], b.peak_threads[2]);
  std::printf("fp32 FMA peak (register-only %s FMA loop, GFLOP/s): 1 thread %.1f / %.1f, 2 threads %.1f / %.1f"
              " (before / after); %%peak uses %.1f for 1 thread, %.1f for 2\n",
              kVecName, before1, after1, before2, after2, b.peak_for(1), b.peak_for(2));
  b.print_table();
  if (!b.opt.json.empty()) {
    b.write_json();
    std::printf("wrote %s\n", b.opt.json.c_str());
  }
  return 0;
}
