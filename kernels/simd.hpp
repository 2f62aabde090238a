#pragma once
// The float vector of the compile target's widest registers, as a GCC vector type (16 floats with
// AVX-512, 8 with AVX2), for the element-wise loops around the GEMMs. Written on wider vectors than
// the target's registers, GCC 12 compiles such a loop's comparisons to one scalar compare per
// float (the ReLU of an AVX2 build then held narrow layers to ~55-60% of the peak).
#include <cstdint>

namespace rematch::kernels {

#ifdef __AVX512F__
inline constexpr std::int64_t kVectorFloats = 16;
#else
inline constexpr std::int64_t kVectorFloats = 8;
#endif
using FloatVector = float __attribute__((vector_size(kVectorFloats * sizeof(float))));
using IntVector = std::int32_t __attribute__((vector_size(kVectorFloats * sizeof(std::int32_t))));

}  // namespace rematch::kernels
