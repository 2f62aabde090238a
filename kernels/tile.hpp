#pragma once
// A register-tiled batch-reduce GEMM whose output rows are 64 floats wide, for AVX-512 builds:
//
//   out[r][0:64) (+)= sum_{s < batch} sum_{p < k} a[s*a_step + r*a_row + p*a_col] * b[s*b_step + p*ldb + 0:64)
//
// for r < rows. The left operand is read one element at a time (broadcast), so any layout of it
// works: a row-major block (a_col = 1), a transposed one read in place (a_row = 1), or a
// convolution's taps (a_step). The right operand and the output are row panels of 64 contiguous
// floats. Per group of 6 rows (then 4, 2, 1) the kernel keeps 6 x 4 zmm accumulators over the whole
// reduction and broadcasts each left element once for its 4 FMAs. Each output is one FMA chain,
// batch elements outer and p inner, from zero or from `out` (accumulate): the order of LIBXSMM's
// batch-reduce kernels, so a layer that switches between the two gets bitwise the same results.
#include <cstdint>

namespace rematch::kernels {

// Width of the output rows (and of the right operand's rows) in floats.
inline constexpr std::int64_t kTileWidth = 64;

// Whether tile_gemm() is compiled in (AVX-512 builds); without it callers keep LIBXSMM.
#ifdef __AVX512F__
inline constexpr bool kTileGemm = true;
#else
inline constexpr bool kTileGemm = false;
#endif

// Plain descriptor of one call. Strides in elements.
struct TileGemmDesc {
  std::int64_t rows = 0;   // output rows, any count
  std::int64_t k = 0;      // reduction length per batch element
  std::int64_t batch = 1;  // batch elements
  std::int64_t a_row = 0, a_col = 0, a_step = 0;  // left operand: per output row, per p, per s
  std::int64_t ldb = 0, b_step = 0;               // right operand: per p, per s
  std::int64_t ldo = 0;                           // output: per row
  bool accumulate = false;                        // add to out instead of overwriting it
  // Bytes from `prefetch` on to bring into L2 during the call (e.g. the next call's operand),
  // a cache line or a few every 16 reduction steps, spread evenly over all row groups: a burst of
  // software hints holds the line fill buffers until its lines arrive and stalls the arithmetic.
  const void* prefetch = nullptr;
  std::int64_t prefetch_bytes = 0;
  // A region in pieces (e.g. a chunk of blocks of a row-ordered matrix): prefetch_pieces runs of
  // prefetch_bytes bytes each, the next starting prefetch_stride bytes after the previous one.
  std::int64_t prefetch_pieces = 1, prefetch_stride = 0;
};

// Runs the product above. Without AVX-512 (kTileGemm false) it must not be called.
void tile_gemm(const TileGemmDesc& d, const float* a, const float* b, float* out);

}  // namespace rematch::kernels
