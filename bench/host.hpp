#pragma once
// The host a bench ran on, printed and written with every figure: the hosts differ between runs
// (CPU model, AVX2 or AVX-512), so a figure means nothing without them; and the fp32 FMA peak of
// a register-only loop, measured in the same run as the figures compared with it.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>

namespace rematch::bench {

// /proc/cpuinfo's first "model name", or "unknown".
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// The widest x86 vector ISA the CPU flags list: "AVX-512" (with " + bf16" when avx512_bf16 is
// there too), "AVX2", or "SSE".
inline std::string isa() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    line += ' ';
    if (line.find(" avx512f ") != std::string::npos)
      return line.find(" avx512_bf16 ") != std::string::npos ? "AVX-512 + bf16" : "AVX-512";
    if (line.find(" avx2 ") != std::string::npos) return "AVX2";
    return "SSE";
  }
  return "unknown";
}

// Seconds so far by the wall clock, or (cpu_time) the process's CPU time divided by `threads`:
// on a shared machine a preempted run then costs only what it actually ran.
inline double run_clock(int threads, bool cpu_time = false) {
  if (!cpu_time) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double(t.tv_sec) + 1e-9 * double(t.tv_nsec)) / threads;
}

// Register-only FMA loop: independent accumulators (more than FMA latency x pipes) and no memory
// traffic, so it runs at the FMA units' throughput. The accumulators and the two constants must
// fit the register file: 16 ymm accumulators spill on AVX2 (16 registers) and measured 58
// instead of 102 GFLOP/s.
#ifdef __AVX512F__
using PeakVec = __m512;
inline constexpr int kPeakLanes = 16;
inline constexpr int kPeakAccumulators = 16;
inline constexpr const char* kPeakVecName = "zmm";
inline PeakVec peak_set(float f) { return _mm512_set1_ps(f); }
inline PeakVec peak_fma(PeakVec a, PeakVec b, PeakVec c) { return _mm512_fmadd_ps(a, b, c); }
#else
using PeakVec = __m256;
inline constexpr int kPeakLanes = 8;
inline constexpr int kPeakAccumulators = 12;
inline constexpr const char* kPeakVecName = "ymm";
inline PeakVec peak_set(float f) { return _mm256_set1_ps(f); }
inline PeakVec peak_fma(PeakVec a, PeakVec b, PeakVec c) { return _mm256_fmadd_ps(a, b, c); }
#endif

__attribute__((noinline)) inline float fma_loop(long iters) {
  PeakVec acc[kPeakAccumulators];
  for (int i = 0; i < kPeakAccumulators; ++i) acc[i] = peak_set(float(i) * 1e-3f);
  const PeakVec a = peak_set(0.999999f), b = peak_set(1e-6f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kPeakAccumulators; ++i) acc[i] = peak_fma(acc[i], a, b);
  }
  float lanes[kPeakLanes], sum = 0.0f;
  for (int i = 0; i < kPeakAccumulators; ++i) {
    std::memcpy(lanes, &acc[i], sizeof(lanes));
    for (float l : lanes) sum += l;
  }
  return sum;
}

// Best of 5 runs of the loop on `threads` threads, GFLOP/s.
inline double fma_peak_gflops(int threads, bool cpu_time = false) {
  constexpr long kIters = 20'000'000;
  constexpr double kFlopsPerIter = 2.0 * kPeakAccumulators * kPeakLanes;
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    volatile float sink = 0.0f;
    const double a = run_clock(threads, cpu_time);
#pragma omp parallel num_threads(threads)
    {
      const float r = fma_loop(kIters);
#pragma omp critical
      sink = sink + r;
    }
    const double s = run_clock(threads, cpu_time) - a;
    best = std::max(best, kFlopsPerIter * kIters * threads / s * 1e-9);
  }
  return best;
}

}  // namespace rematch::bench
