#include "kernels/tile.hpp"

#include <immintrin.h>

#include <algorithm>

#include "kernels/error.hpp"

namespace rematch::kernels {
namespace {

constexpr std::int64_t kLine = 64;
// Reduction steps per chance to issue hints. With a chance on every step the stream's bookkeeping
// (and the accumulator spills GCC placed around it) held cached 64 x 64 x 64 products at ~60-70%
// of the FMA peak against ~90% for LIBXSMM's kernel; every 16 steps, ~87-90% (Ice Lake server).
constexpr std::int64_t kStepsPerHint = 16;

// Spreads the hints for `pieces` runs of `piece_lines` cache lines, `stride` bytes apart from
// `next` on, evenly over `steps` calls of step().
class PrefetchStream {
 public:
  PrefetchStream(const char* next, std::int64_t piece_lines, std::int64_t pieces, std::int64_t stride,
                 std::int64_t steps)
      : piece_(next), next_(next), piece_lines_(piece_lines), lines_(piece_lines * pieces), stride_(stride),
        steps_(steps) {}
  void step() {
    for (debt_ += lines_; debt_ >= steps_; debt_ -= steps_) {
      _mm_prefetch(next_, _MM_HINT_T1);
      next_ += kLine;
      if (++line_ == piece_lines_) {
        line_ = 0;
        piece_ += stride_;
        next_ = piece_;
      }
    }
  }

 private:
  const char *piece_, *next_;
  std::int64_t piece_lines_, lines_, stride_, steps_, line_ = 0, debt_ = 0;
};

#ifdef __AVX512F__
template <int N>
void tile(const TileGemmDesc& d, const float* a, const float* b, float* out, PrefetchStream& stream) {
  // The strides and the stream's state in locals: read through the descriptor and the reference,
  // each store of the stream's state could alias them and forced their reload in the loop.
  const std::int64_t a_row = d.a_row, a_col = d.a_col, ldb = d.ldb, k = d.k;
  PrefetchStream pf = stream;
  __m512 acc[N][4];
  for (int j = 0; j < N; ++j) {
    for (int v = 0; v < 4; ++v) {
      acc[j][v] = d.accumulate ? _mm512_loadu_ps(out + j * d.ldo + 16 * v) : _mm512_setzero_ps();
    }
  }
  // One reduction step: row p of the right operand times column p of the left one's rows.
  auto fma_step = [&](const float* ap, const float* row) {
    const __m512 b0 = _mm512_loadu_ps(row), b1 = _mm512_loadu_ps(row + 16);
    const __m512 b2 = _mm512_loadu_ps(row + 32), b3 = _mm512_loadu_ps(row + 48);
    for (int j = 0; j < N; ++j) {
      const __m512 w = _mm512_set1_ps(ap[j * a_row]);
      acc[j][0] = _mm512_fmadd_ps(b0, w, acc[j][0]);
      acc[j][1] = _mm512_fmadd_ps(b1, w, acc[j][1]);
      acc[j][2] = _mm512_fmadd_ps(b2, w, acc[j][2]);
      acc[j][3] = _mm512_fmadd_ps(b3, w, acc[j][3]);
    }
  };
  for (std::int64_t s = 0; s < d.batch; ++s) {
    const float* ap = a + s * d.a_step;
    const float* row = b + s * d.b_step;
    std::int64_t p = 0;
    for (; p + kStepsPerHint <= k; p += kStepsPerHint, ap += kStepsPerHint * a_col, row += kStepsPerHint * ldb) {
      pf.step();
      // Rolled: unrolled, GCC spilled accumulators around the hints.
#pragma GCC unroll 1
      for (int u = 0; u < kStepsPerHint; ++u) fma_step(ap + u * a_col, row + u * ldb);
    }
    if (p < k) pf.step();
    for (; p < k; ++p, ap += a_col, row += ldb) fma_step(ap, row);
  }
  for (int j = 0; j < N; ++j) {
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(out + j * d.ldo + 16 * v, acc[j][v]);
  }
  stream = pf;
}
#endif

}  // namespace

void tile_gemm(const TileGemmDesc& d, const float* a, const float* b, float* out) {
#ifdef __AVX512F__
  const std::int64_t groups = d.rows / 6 + (d.rows % 6 >= 4) + (d.rows % 6 % 4) / 2 + d.rows % 2;
  const std::int64_t steps = std::max<std::int64_t>(1, groups * d.batch * ((d.k + kStepsPerHint - 1) / kStepsPerHint));
  PrefetchStream pf(static_cast<const char*>(d.prefetch), (d.prefetch_bytes + kLine - 1) / kLine,
                    d.prefetch_pieces, d.prefetch_stride, steps);
  std::int64_t r = 0;
  for (; r + 6 <= d.rows; r += 6) tile<6>(d, a + r * d.a_row, b, out + r * d.ldo, pf);
  if (r + 4 <= d.rows) {
    tile<4>(d, a + r * d.a_row, b, out + r * d.ldo, pf);
    r += 4;
  }
  for (; r + 2 <= d.rows; r += 2) tile<2>(d, a + r * d.a_row, b, out + r * d.ldo, pf);
  if (r < d.rows) tile<1>(d, a + r * d.a_row, b, out + r * d.ldo, pf);
#else
  (void)d, (void)a, (void)b, (void)out;
  require(false, "tile_gemm: not compiled in (no AVX-512)");
#endif
}

}  // namespace rematch::kernels
