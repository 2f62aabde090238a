// What the benches measure the host by, in the same run as the figures they compare with it:
// the CPU model and vector ISA, the fp32 FMA peak of a register-only loop, and the bandwidth of a
// streaming copy (the ceiling of a memory-bound kernel); and the comma lists their options take.
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/brgemm.hpp"

namespace rematch::bench {

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

// The "model name" of /proc/cpuinfo (empty when unreadable).
inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(std::min(line.size(), colon + 2));
    }
  }
  return "";
}

// The vector ISA the CPU reports (CPUID).
inline std::string cpu_isa() {
  std::string isa = __builtin_cpu_supports("avx512f") ? "AVX-512" : __builtin_cpu_supports("avx2") ? "AVX2" : "SSE";
  if (__builtin_cpu_supports("avx512bf16")) isa += " + AVX512-BF16";
  return isa;
}

// The vector ISA the C++ is compiled for: the FMA loop below and the kernels' own vector loops
// (packing, epilogues, element-wise), since REMATCH_ARCH sets one -march for the whole build.
inline constexpr const char* compiled_isa() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "AVX2";
#else
  return "SSE";
#endif
}

// What the vector code ran on, for the benches' setup lines: the CPU's ISA, the compiled ISA, and
// LIBXSMM's JIT target, which on an AVX-512 CPU runs AVX2 code only when LIBXSMM_TARGET=hsw holds
// it there (docs/kernels.md, "Instruction sets").
inline std::string vector_isa() {
  return "CPU " + cpu_isa() + ", C++ compiled for " + compiled_isa() + ", LIBXSMM JIT " + kernels::jit_target();
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

// Best of 5 parallel copies of a 256 MiB buffer (far beyond the caches), GB/s counting the bytes
// read plus the bytes written, the way the memory-bound benches count theirs.
inline double stream_copy_gbps(int threads, bool cpu_time = false) {
  const std::int64_t n = std::int64_t(64) << 20;  // floats
  std::vector<float> src(n, 1.0f), dst(n, 0.0f);
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const double a = run_clock(threads, cpu_time);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t c = 0; c < 64; ++c) {
      const std::int64_t lo = n / 64 * c;
      std::memcpy(dst.data() + lo, src.data() + lo, sizeof(float) * std::size_t(n / 64));
    }
    const double s = run_clock(threads, cpu_time) - a;
    if (rep > 0) best = std::max(best, 2.0 * double(n) * sizeof(float) / s * 1e-9);  // rep 0 faults pages in
  }
  return best;
}

// "a,b,c" -> {"a", "b", "c"} (an option's comma-separated list).
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

}  // namespace rematch::bench
