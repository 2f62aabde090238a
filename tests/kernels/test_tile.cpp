// tile_gemm against a naive loop that forms each output as the same FMA chain (batch elements
// outer, p inner, std::fma), so the two must agree bitwise: any layout of the left operand, every
// row-group size (6, 4, 2, 1 and their mixes), batches and accumulation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/tile.hpp"
#include "tests/kernels/helpers.hpp"

namespace rematch::kernels {
namespace {

std::vector<float> naive(const TileGemmDesc& d, const float* a, const float* b,
                         std::vector<float> out) {
  for (std::int64_t r = 0; r < d.rows; ++r) {
    for (std::int64_t q = 0; q < kTileWidth; ++q) {
      float acc = d.accumulate ? out[r * d.ldo + q] : 0.0f;
      for (std::int64_t s = 0; s < d.batch; ++s) {
        for (std::int64_t p = 0; p < d.k; ++p) {
          acc = std::fma(a[s * d.a_step + r * d.a_row + p * d.a_col], b[s * d.b_step + p * d.ldb + q], acc);
        }
      }
      out[r * d.ldo + q] = acc;
    }
  }
  return out;
}

struct Case {
  std::int64_t rows, k, batch;
  bool transposed_a;  // a read as the transpose of a row-major k x rows block
  bool accumulate;
  std::int64_t prefetch_bytes;  // of a separate buffer; must not change any result
  std::int64_t prefetch_pieces = 1;  // runs of prefetch_bytes, 2 * prefetch_bytes apart
};

class TileGemmMatchesFmaChain : public ::testing::TestWithParam<Case> {};

TEST_P(TileGemmMatchesFmaChain, Bitwise) {
  if (!kTileGemm) GTEST_SKIP() << "tile_gemm needs an AVX-512 build";
  const Case c = GetParam();
  TileGemmDesc d;
  d.rows = c.rows, d.k = c.k, d.batch = c.batch, d.accumulate = c.accumulate;
  // Padded strides so that no operand is contiguous by accident.
  const std::int64_t a_ld = (c.transposed_a ? c.rows : c.k) + 3;
  d.a_row = c.transposed_a ? 1 : a_ld;
  d.a_col = c.transposed_a ? a_ld : 1;
  d.a_step = (c.transposed_a ? c.k : c.rows) * a_ld + 5;
  d.ldb = kTileWidth + 16, d.b_step = c.k * d.ldb + 7, d.ldo = kTileWidth + 32;
  const auto a = test::random_vector(static_cast<std::size_t>(c.batch * d.a_step), 1);
  const auto b = test::random_vector(static_cast<std::size_t>(c.batch * d.b_step), 2);
  const auto init = test::random_vector(static_cast<std::size_t>(c.rows * d.ldo), 3);
  const std::vector<char> next(static_cast<std::size_t>(2 * c.prefetch_bytes * c.prefetch_pieces) + 1);
  d.prefetch = next.data(), d.prefetch_bytes = c.prefetch_bytes;
  d.prefetch_pieces = c.prefetch_pieces, d.prefetch_stride = 2 * c.prefetch_bytes;
  auto out = init;
  tile_gemm(d, a.data(), b.data(), out.data());
  const auto want = naive(d, a.data(), b.data(), init);
  for (std::int64_t r = 0; r < c.rows; ++r) {
    ASSERT_EQ(0, std::memcmp(&out[r * d.ldo], &want[r * d.ldo], kTileWidth * sizeof(float)))
        << "row " << r;
    // Padding between rows is untouched.
    ASSERT_EQ(0, std::memcmp(&out[r * d.ldo + kTileWidth], &init[r * d.ldo + kTileWidth],
                             (d.ldo - kTileWidth) * sizeof(float)))
        << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, TileGemmMatchesFmaChain,
    ::testing::Values(Case{1, 1, 1, false, false, 0}, Case{6, 64, 1, false, false, 0},
                      Case{64, 64, 1, false, true, 16384}, Case{64, 64, 3, false, true, 100},
                      Case{13, 7, 2, false, false, 1 << 20}, Case{11, 33, 4, true, true, 64},
                      Case{64, 64, 1, true, false, 32768}, Case{3, 128, 1, true, true, 0},
                      Case{5, 5, 5, false, true, 999}, Case{0, 8, 1, false, false, 4096},
                      Case{64, 64, 16, false, true, 16384, 8}, Case{13, 64, 4, true, false, 4096, 3}),
    [](const ::testing::TestParamInfo<Case>& info) {
      const Case& c = info.param;
      return "rows" + std::to_string(c.rows) + "_k" + std::to_string(c.k) + "_batch" +
             std::to_string(c.batch) + (c.transposed_a ? "_transposedA" : "") +
             (c.accumulate ? "_accumulate" : "") + "_prefetch" + std::to_string(c.prefetch_bytes) +
             (c.prefetch_pieces > 1 ? "x" + std::to_string(c.prefetch_pieces) : "");
    });

}  // namespace
}  // namespace rematch::kernels
