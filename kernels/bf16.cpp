#include "kernels/bf16.hpp"

#include <cstdint>
#include <cstring>

#include "kernels/error.hpp"

namespace rematch::kernels {
namespace {

// Below this many values a conversion is not worth a parallel region.
constexpr std::int64_t kParallelMin = 1 << 15;

// kernels::to_bf16 without branches, so a loop of it vectorises.
inline std::uint16_t narrow_bits(std::uint32_t u) {
  const std::uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  return static_cast<std::uint16_t>(nan ? (u >> 16) | 0x0040u : rounded);
}

}  // namespace

void narrow(std::span<const float> in, std::span<bfloat16> out) {
  require(in.size() == out.size(), "narrow: spans of different lengths");
  const auto n = static_cast<std::int64_t>(in.size());
  const float* src = in.data();
  std::uint16_t* dst = &out.data()->bits;
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, src + i, sizeof u);
    dst[i] = narrow_bits(u);
  }
}

void widen(std::span<const bfloat16> in, std::span<float> out) {
  require(in.size() == out.size(), "widen: spans of different lengths");
  const auto n = static_cast<std::int64_t>(in.size());
  const std::uint16_t* src = &in.data()->bits;
  float* dst = out.data();
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint32_t u = std::uint32_t(src[i]) << 16;
    std::memcpy(dst + i, &u, sizeof u);
  }
}

}  // namespace rematch::kernels
