#include "kernels/tile.hpp"

#include <immintrin.h>

#include <algorithm>

#include "kernels/error.hpp"

namespace rematch::kernels {
namespace {

constexpr std::int64_t kLine = 64;

// Spreads `lines` cache-line hints from `next` on evenly over `steps` calls of step().
class PrefetchStream {
 public:
  PrefetchStream(const char* next, std::int64_t lines, std::int64_t steps)
      : next_(next), lines_(lines), steps_(steps) {}
  void step() {
    for (debt_ += lines_; debt_ >= steps_; debt_ -= steps_) {
      _mm_prefetch(next_, _MM_HINT_T1);
      next_ += kLine;
    }
  }

 private:
  const char* next_;
  std::int64_t lines_, steps_, debt_ = 0;
};

#ifdef __AVX512F__
template <int N>
void tile(const TileGemmDesc& d, const float* a, const float* b, float* out, PrefetchStream& stream) {
  // The descriptor's fields and the prefetch state as locals, kept in registers: through the
  // references the compiler reloads them every step and chains the state's store and reload
  // from one step to the next.
  const std::int64_t k = d.k, a_row = d.a_row, a_col = d.a_col, ldb = d.ldb, ldo = d.ldo;
  PrefetchStream pf = stream;
  __m512 acc[N][4];
  for (int j = 0; j < N; ++j) {
    for (int v = 0; v < 4; ++v) {
      acc[j][v] = d.accumulate ? _mm512_loadu_ps(out + j * ldo + 16 * v) : _mm512_setzero_ps();
    }
  }
  for (std::int64_t s = 0; s < d.batch; ++s) {
    const float* as = a + s * d.a_step;
    const float* bs = b + s * d.b_step;
    for (std::int64_t p = 0; p < k; ++p) {
      pf.step();
      const float* row = bs + p * ldb;
      const __m512 b0 = _mm512_loadu_ps(row), b1 = _mm512_loadu_ps(row + 16);
      const __m512 b2 = _mm512_loadu_ps(row + 32), b3 = _mm512_loadu_ps(row + 48);
      const float* ap = as + p * a_col;
      for (int j = 0; j < N; ++j) {
        const __m512 w = _mm512_set1_ps(ap[j * a_row]);
        acc[j][0] = _mm512_fmadd_ps(b0, w, acc[j][0]);
        acc[j][1] = _mm512_fmadd_ps(b1, w, acc[j][1]);
        acc[j][2] = _mm512_fmadd_ps(b2, w, acc[j][2]);
        acc[j][3] = _mm512_fmadd_ps(b3, w, acc[j][3]);
      }
    }
  }
  stream = pf;
  for (int j = 0; j < N; ++j) {
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(out + j * ldo + 16 * v, acc[j][v]);
  }
}
#endif

}  // namespace

void tile_gemm(const TileGemmDesc& d, const float* a, const float* b, float* out) {
#ifdef __AVX512F__
  const std::int64_t groups = d.rows / 6 + (d.rows % 6 >= 4) + (d.rows % 6 % 4) / 2 + d.rows % 2;
  const std::int64_t steps = std::max<std::int64_t>(1, groups * d.batch * d.k);
  PrefetchStream pf(static_cast<const char*>(d.prefetch), (d.prefetch_bytes + kLine - 1) / kLine,
                    steps);
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
