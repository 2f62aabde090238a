#pragma once
// Shared test utilities: seeded data, accumulation-aware tolerances, finite
// differences in double precision, a fixture that runs a test at 1 and 2
// OpenMP threads, and an allocator that counts a kernel's scratch.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "kernels/tensor.hpp"

namespace rematch::kernels::test {

// Counts outstanding and peak bytes, to check the scratch contract.
class CountingAllocator final : public Allocator {
 public:
  void* allocate(std::size_t bytes) override {
    live_ += bytes;
    peak_ = std::max(peak_, live_);
    return heap_allocator().allocate(bytes);
  }
  void deallocate(void* p, std::size_t bytes) noexcept override {
    live_ -= bytes;
    heap_allocator().deallocate(p, bytes);
  }
  std::size_t live_ = 0, peak_ = 0;
};

inline std::vector<float> random_vector(std::size_t n, std::uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// Higham's bound for a float dot product of length L evaluated in any order:
// |fl(sum) - sum| <= gamma_L * sum |a_i b_i|, gamma_L ~= L * 2^-24. `abs_sum`
// is sum |a_i b_i| from the double reference; a factor 2 covers the final
// rounding of the result and of any fused epilogue.
inline double dot_tolerance(std::int64_t length, double abs_sum) {
  return 2.0 * double(length + 2) * 0x1.0p-24 * abs_sum + 1e-30;
}

// Central differences of a double-precision scalar function.
inline std::vector<double> finite_difference(const std::function<double(const std::vector<double>&)>& f,
                                             std::vector<double> x, double h = 1e-6) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f(x);
    x[i] = keep - h;
    const double down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2.0 * h);
  }
  return g;
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// float kernel gradients vs double finite differences: the kernel's own
// rounding (~1e-6 relative per op over short sums) dominates the O(h^2) error.
inline void expect_gradient_near(const std::vector<float>& got, const std::vector<double>& want,
                                 double rel = 1e-4) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 1e-3;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], rel * scale) << "at index " << i;
  }
}

// Runs each test at 1 and 2 threads: layer results must not depend on it.
class ThreadsTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    saved_ = omp_get_max_threads();
    omp_set_num_threads(GetParam());
  }
  void TearDown() override { omp_set_num_threads(saved_); }

 private:
  int saved_ = 1;
};

inline std::string thread_name(const ::testing::TestParamInfo<int>& info) {
  return std::to_string(info.param) + "thread" + (info.param == 1 ? "" : "s");
}

}  // namespace rematch::kernels::test
