#include "kernels/brgemm.hpp"

#include <libxsmm.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>

#include "kernels/error.hpp"
#include "kernels/tile.hpp"

namespace rematch::kernels {
namespace {

void init_libxsmm() {
  static std::once_flag once;
  std::call_once(once, [] { libxsmm_init(); });
}

std::string describe(const BrgemmDesc& d) {
  return "m=" + std::to_string(d.m) + " n=" + std::to_string(d.n) + " k=" + std::to_string(d.k) +
         " lda=" + std::to_string(d.lda) + " ldb=" + std::to_string(d.ldb) +
         " ldc=" + std::to_string(d.ldc);
}

// Up to this many consecutive tasks (block rows of C) go to one thread at a time, so that it
// knows which row panel it works on next.
constexpr std::int64_t kTaskGroup = 8;
constexpr std::int64_t kPrefetchPanelBytes = 64 << 10;
// The right operand's blocks one BRGEMM call of BlockedGemm reduces over, in floats (256 KiB).
constexpr std::int64_t kChunkFloats = 64 << 10;
// run_right_transposed: the left operand's size up to which its per-task panels serve all rows of
// A (a share of L3), and beyond it the bytes of B's column panels transposed at a time (a slab).
constexpr std::int64_t kLeftInL3Bytes = 4 << 20;
constexpr std::int64_t kSlabBytes = 8 << 20;
// Block rows of C per task of BlockedGemm on wide panels (see the constructor).
constexpr std::int64_t kBand = 4;
// Right operands from this size on take the register tile in run_columns(). Its gain is the fetch
// of the next right-operand chunk during the band's arithmetic, which pays where that operand
// streams from memory on every reuse (2048- and 4096-wide layers: 16 and 64 MiB of weights); on
// operands that stay in cache its arithmetic is slower than LIBXSMM's (Ice Lake server, narrow
// layers, C = K = 64..256, alternating runs: forward and backward-data 10-30 points lower).
constexpr std::int64_t kTileRightBytes = 8 << 20;

// Whether a narrow task's hints for the next row panel pay off on this CPU. On an AMD EPYC Zen 5
// they made the narrow forward 15-50% faster (C = K = 128, N = 262,144, 1 thread). On an Intel Xeon
// (Ice Lake server) the same forward ran ~8-18% faster without them (C = K = 64 and 128, N = 32,768
// and 262,144, 1 and 2 threads), and ~4-6% faster than with the hints spread over the task's
// epilogues: there the burst stalls the thread while the hardware prefetchers keep up with the
// panel stream on their own.
bool next_panel_hints_pay() {
  // __builtin_cpu_init first: a BlockedGemm built during static initialisation may run before
  // the compiler's own CPU-model constructor.
  static const bool amd = (__builtin_cpu_init(), __builtin_cpu_is("amd"));
  return amd;
}

void prefetch_l1(const void* p, std::int64_t bytes) {
  const char* q = static_cast<const char*>(p);
  for (std::int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(q + o, 0, 3);
}

}  // namespace

bool bf16_supported() {
  init_libxsmm();
  return libxsmm_get_target_archid() >= LIBXSMM_X86_AVX512_CPX;
}

std::string jit_target() {
  init_libxsmm();
  return libxsmm_get_target_arch();
}

std::int64_t preferred_m() {
  init_libxsmm();
  return libxsmm_get_target_archid() >= LIBXSMM_X86_AVX512 ? 64 : 32;
}

void transpose8x8(const float* src, std::int64_t ld_src, float* dst, std::int64_t ld_dst) {
  using v8 = float __attribute__((vector_size(32)));
  using i8 = std::int32_t __attribute__((vector_size(32)));
  v8 r[8], t[8];
  for (int i = 0; i < 8; ++i) std::memcpy(&r[i], src + i * ld_src, sizeof(v8));
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(r[i], r[i + 1], i8{0, 8, 1, 9, 4, 12, 5, 13});
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], i8{2, 10, 3, 11, 6, 14, 7, 15});
  }
  for (int i = 0; i < 8; i += 4) {
    for (int h = 0; h < 2; ++h) {
      r[i + h] = __builtin_shuffle(t[i + h], t[i + h + 2], i8{0, 1, 8, 9, 4, 5, 12, 13});
      r[i + h + 2] = __builtin_shuffle(t[i + h], t[i + h + 2], i8{2, 3, 10, 11, 6, 7, 14, 15});
    }
  }
  // r[0..3] now hold rows 0-3 of the columns 0,2,1,3 (low half) and 4,6,5,7 (high half).
  constexpr int kCol[4] = {0, 2, 1, 3};
  for (int h = 0; h < 4; ++h) {
    const v8 lo = __builtin_shuffle(r[h], r[h + 4], i8{0, 1, 2, 3, 8, 9, 10, 11});
    const v8 hi = __builtin_shuffle(r[h], r[h + 4], i8{4, 5, 6, 7, 12, 13, 14, 15});
    std::memcpy(dst + kCol[h] * ld_dst, &lo, sizeof(v8));
    std::memcpy(dst + (kCol[h] + 4) * ld_dst, &hi, sizeof(v8));
  }
}

void transpose_block(const float* src, std::int64_t rows, std::int64_t cols, float* dst) {
  if (rows % 8 == 0 && cols % 8 == 0) {
    for (std::int64_t i = 0; i < rows; i += 8) {
      for (std::int64_t j = 0; j < cols; j += 8) transpose8x8(src + i * cols + j, cols, dst + j * rows + i, rows);
    }
    return;
  }
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t j = 0; j < cols; ++j) dst[j * rows + i] = src[i * cols + j];
  }
}

Brgemm::Brgemm(const BrgemmDesc& d) : desc_(d) {
  require(d.m > 0 && d.n > 0 && d.k > 0, "Brgemm: m, n, k must be positive (" + describe(d) + ")");
  require(!d.transpose_b || d.prefetch_next, "Brgemm: transpose_b needs a prefetch_next kernel (" + describe(d) + ")");
  require(d.lda >= d.m && d.ldb >= (d.transpose_b ? d.n : d.k) && d.ldc >= d.m,
          "Brgemm: leading dimensions too small (" + describe(d) + ")");
  require(d.stride_a >= 0 && d.stride_b >= 0, "Brgemm: strides must be non-negative");
  init_libxsmm();
  const libxsmm_blasint m = d.m, n = d.n, k = d.k, lda = d.lda, ldb = d.ldb, ldc = d.ldc;
  const float alpha = 1.0f, beta = d.accumulate ? 1.0f : 0.0f;
  const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
  int flags = (d.accumulate ? 0 : LIBXSMM_GEMM_FLAG_BETA_0) | (d.transpose_b ? LIBXSMM_GEMM_FLAG_TRANS_B : 0);
  if (d.prefetch_next) {
    require(d.precision == Precision::fp32, "Brgemm: prefetch_next needs fp32 (" + describe(d) + ")");
    const int next = LIBXSMM_GEMM_PREFETCH_AL2BL2_VIA_C;
    kernel_ = reinterpret_cast<void*>(libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &next));
  } else if (d.precision == Precision::fp32) {
    kernel_ = reinterpret_cast<void*>(libxsmm_smmdispatch_reducebatch_strd(
        m, n, k, d.stride_a * sizeof(float), d.stride_b * sizeof(float), &lda, &ldb, &ldc, &alpha,
        &beta, &flags, &prefetch));
  } else {
    require(bf16_supported(), "Brgemm: this CPU has no AVX512-BF16, bf16 BRGEMM is unavailable");
    require(d.k % 2 == 0, "Brgemm: bf16 needs an even k for the VNNI layout (" + describe(d) + ")");
    flags |= LIBXSMM_GEMM_FLAG_VNNI_A;
    kernel_ = reinterpret_cast<void*>(libxsmm_bsmmdispatch_reducebatch_strd(
        m, n, k, d.stride_a * sizeof(bfloat16), d.stride_b * sizeof(bfloat16), &lda, &ldb, &ldc,
        &alpha, &beta, &flags, &prefetch));
  }
  require(kernel_ != nullptr, "Brgemm: LIBXSMM could not JIT a kernel for " + describe(d));
}

void Brgemm::operator()(const float* a, const float* b, float* c, std::int64_t count) const {
  require(desc_.precision == Precision::fp32 && !desc_.prefetch_next && kernel_ != nullptr,
          "Brgemm: not an fp32 batch kernel");
  const unsigned long long n = static_cast<unsigned long long>(count);
  reinterpret_cast<libxsmm_smmfunction_reducebatch_strd>(kernel_)(a, b, c, &n);
}

void Brgemm::operator()(const float* a, const float* b, float* c, const float* next_a,
                        const float* next_b) const {
  require(desc_.prefetch_next && kernel_ != nullptr, "Brgemm: not a prefetching kernel");
  reinterpret_cast<libxsmm_smmfunction>(kernel_)(a, b, c, next_a, next_b, c);
}

void Brgemm::operator()(const bfloat16* a, const bfloat16* b, float* c, std::int64_t count) const {
  require(desc_.precision == Precision::bf16 && kernel_ != nullptr, "Brgemm: not a bf16 kernel");
  const unsigned long long n = static_cast<unsigned long long>(count);
  reinterpret_cast<libxsmm_bsmmfunction_reducebatch_strd>(kernel_)(
      reinterpret_cast<const libxsmm_bfloat16*>(a), reinterpret_cast<const libxsmm_bfloat16*>(b),
      c, &n);
}

BlockedGemm::BlockedGemm(const BlockShape& a, const BlockShape& b, Precision precision,
                         bool c_column_panels)
    : a_(a), b_(b), c_{a.rows, b.cols, a.brow, b.bcol, c_column_panels} {
  validate(a, "BlockedGemm left operand");
  validate(b, "BlockedGemm right operand");
  require(a.cols == b.rows && a.bcol == b.brow,
          "BlockedGemm: inner sizes differ (" + std::to_string(a.cols) + "/" +
              std::to_string(a.bcol) + " vs " + std::to_string(b.rows) + "/" +
              std::to_string(b.brow) + ")");
  // A right-operand block is row-major, so a column slice is the block's pointer
  // offset by the slice's first column with the block's leading dimension. (bf16 blocks are
  // VNNI-packed, where that does not hold; bf16 needs AVX-512, where 64 is preferred anyway.)
  const std::int64_t m = preferred_m();
  sub_m_ = precision == Precision::fp32 && b.bcol > m && b.bcol % m == 0 ? m : b.bcol;
  // Within a call LIBXSMM streams the right operand's slices once per register tile of C.
  // Whole blocks are contiguous and stream well from L2: 256 KiB of them (16 blocks of 64 x 64
  // floats) keep a chunk of the left row panel in L2 across the C blocks of a task. With the
  // 128-row batch blocks of backward-weights' right operand (dy) that is 8 blocks: 16 made the two
  // operands' chunks fill a 1 MiB L2 (N = 4096, C = K = 2048, 1 thread: ~3-8% slower, loaded host).
  // Column slices are strided and must stay in L1: 16 KiB (2 blocks of 64 x 32) measured ~25%
  // faster than 8 or 16 blocks.
  chunk_ = std::max<std::int64_t>(1, sub_m_ == b.bcol ? kChunkFloats / b.block_elems()
                                                      : 16384 / (b.brow * sub_m_ * 4));
  // A narrow layer's task streams its row panel of the left operand from memory, uses it for a
  // few C blocks and is done: where the CPU gains from it (next_panel_hints_pay()), fetching the
  // next task's panel into L1 meanwhile hides that latency (AMD Zen 5, C = K = 128, N = 262,144,
  // 1 thread: forward ~145 -> ~175 GFLOP/s, backward-data ~153 -> ~175). Wider panels are reused
  // long enough for the hardware prefetchers (no gain measured at 128 KiB and C = 64, 256), and
  // would not fit L1 next to the running task's data.
  // The register tile fetches the next right-operand chunk into L2 while a band computes on the
  // current one, so the band's left chunks, the current chunk and the next one must fit together:
  // with 64 x 64 blocks 4 x 128 + 128 + 128 KiB in a 1.25 MiB L2 (chunks of 16 blocks overflowed
  // it and slowed the products that reuse the band's chunks by a third).
  tile_ = kTileGemm && precision == Precision::fp32 && sub_m_ == kTileWidth &&
          b.rows * b.cols * std::int64_t(sizeof(float)) >= kTileRightBytes;
  column_chunk_ = tile_ ? std::max<std::int64_t>(1, chunk_ / 2) : chunk_;
  const std::int64_t panel = a.brow * a.bcol * std::min(chunk_, a.col_blocks()) *
                             std::int64_t(precision == Precision::fp32 ? sizeof(float) : sizeof(bfloat16));
  const bool narrow = !a.column_panels && panel <= kPrefetchPanelBytes;
  prefetch_bytes_ = narrow && next_panel_hints_pay() ? panel : 0;
  // A wide task computes a band of C's block rows, so each right-operand chunk it streams in
  // from L3 or memory (a weight panel, or dy in backward-weights) serves the whole band, and within
  // a call LIBXSMM rereads it from L2 rather than fetching it again for every row (one row per
  // task lost up to ~10 points of the peak on 2048- and 4096-wide layers; bands of 8 were no
  // better than 4). Narrow panels keep single rows: they stream the left operand instead.
  band_ = narrow ? 1 : kBand;
  BrgemmDesc d;
  d.m = sub_m_;
  d.n = a.brow;
  d.k = a.bcol;
  d.lda = b.bcol;
  d.ldb = a.bcol;
  d.ldc = b.bcol;
  d.stride_a = b.down_step();   // B(p, j) -> B(p + 1, j)
  d.stride_b = a.right_step();  // A(i, p) -> A(i, p + 1)
  d.precision = precision;
  start_ = Brgemm(d);
  d.accumulate = true;
  accumulate_ = Brgemm(d);
}

template <class T>
void BlockedGemm::product(const T* b, const T* a, float* c, std::int64_t count, bool first, const T* fetch,
                          std::int64_t fetch_blocks) const {
  if constexpr (std::is_same_v<T, float>) {
    if (tile_) {
      // LIBXSMM's column-major C^T = sum B^T A^T is, row-major, C = sum A B: C's rows are the
      // tile's output rows, A (row-major blocks) its left operand, B's rows its right operand.
      TileGemmDesc d;
      d.rows = a_.brow;
      d.k = a_.bcol;
      d.batch = count;
      d.a_row = a_.bcol;
      d.a_col = 1;
      d.a_step = a_.right_step();
      d.ldb = b_.bcol;
      d.b_step = b_.down_step();
      d.ldo = b_.bcol;
      d.accumulate = !first;
      d.prefetch = fetch;
      d.prefetch_bytes = fetch_blocks > 0 ? b_.block_elems() * std::int64_t(sizeof(float)) : 0;
      d.prefetch_pieces = fetch_blocks;
      d.prefetch_stride = b_.down_step() * std::int64_t(sizeof(float));
      tile_gemm(d, a, b, c);
      return;
    }
  }
  (first ? start_ : accumulate_)(b, a, c, count);
}

template <class T, class BBlock>
void BlockedGemm::run_columns(const Blocked<T>& a, const BBlock& b_block, std::int64_t col0, std::int64_t col1,
                              BlockedMatrix& c, const Epilogue& epilogue) const {
  const std::int64_t rows = c_.row_blocks(), inner = a_.col_blocks();
  // A task is a band of block rows of C (band_ of them, see the constructor), or a share of its
  // columns when there are too few bands to keep every thread busy. Within a task the reduction
  // is walked in chunks: the band's chunks of the left operand's row panels stay in L2 while they
  // are reused for every C block of the task, and each right-operand chunk serves every row of
  // the band. Each C block still sees the same chunk sequence, whatever the thread count or split.
  // The bands narrow (band()), down to single rows, while C has too few blocks for 4 tasks per
  // thread: with bands of 4 a 64-wide output layer (one block column) over a 512-row batch is one
  // task, and one thread does all of it.
  const std::int64_t threads = omp_get_max_threads();
  const std::int64_t band = this->band(col1 - col0, threads);
  const Tasks t = tasks(band, threads, col1 - col0);
  const std::int64_t bands = t.bands, splits = t.splits, per_split = t.per_split;
  // Dynamic: a block's result does not depend on which thread computes it, and
  // cores shared with other work (2-vCPU cloud hosts) make static halves stall. Tasks go out in
  // groups of consecutive ones when there are plenty (the next task's panel is then known).
  // Column groups go out one at a time, all its bands together: the threads then walk the same
  // right-operand panels at the same time, so a panel fetched from memory serves them all from L3.
  const std::int64_t group = std::clamp<std::int64_t>(bands * splits / (16 * threads), 1, kTaskGroup);
#pragma omp parallel for collapse(2) schedule(dynamic, group)
  for (std::int64_t s = 0; s < splits; ++s) {
    for (std::int64_t g = 0; g < bands; ++g) {
      const std::int64_t j0 = col0 + s * per_split, j1 = std::min(col1, j0 + per_split);
      const std::int64_t i0 = g * band, i1 = std::min(rows, i0 + band);
      // (Narrow panels only, whose bands are single rows.)
      if (prefetch_bytes_ > 0 && (s * bands + g + 1) % group != 0 && i1 < rows) {
        prefetch_l1(a.block(i1, 0), prefetch_bytes_);
      }
      for (std::int64_t p = 0; p < inner; p += column_chunk_) {
        const std::int64_t count = std::min(column_chunk_, inner - p);
        for (std::int64_t j = j0; j < j1; ++j) {
          // The right-operand chunk the task reads next for the first time (the next column's, or
          // the first column's next chunk), fetched by this column's products, each a share.
          const bool last = j + 1 == j1;
          const std::int64_t next_p = last ? p + count : p;
          const std::int64_t next_count = std::max<std::int64_t>(0, std::min(column_chunk_, inner - next_p));
          const T* const next = next_count > 0 ? b_block(next_p, last ? j0 : j + 1) : nullptr;
          const std::int64_t parts = (i1 - i0) * (b_.bcol / sub_m_);
          std::int64_t part = 0;
          for (std::int64_t i = i0; i < i1; ++i) {
            float* out = c.block(i, j);
            for (std::int64_t m0 = 0; m0 < b_.bcol; m0 += sub_m_, ++part) {
              const std::int64_t q0 = next_count * part / parts, q1 = next_count * (part + 1) / parts;
              product(b_block(p, j) + m0, a.block(i, p), out + m0, count, p == 0,
                      next != nullptr ? next + q0 * b_.down_step() : nullptr, q1 - q0);
            }
            if (epilogue && p + count == inner) epilogue(out, i, j);
          }
        }
      }
    }
  }
}

template <class T>
void BlockedGemm::run_impl(const Blocked<T>& a, const Blocked<T>& b, BlockedMatrix& c,
                           const Epilogue& epilogue) const {
  require(a.shape == a_ && b.shape == b_ && c.shape == c_,
          "BlockedGemm::run: operand shapes differ from the planned ones");
  require(!a.vnni, "BlockedGemm::run: the left operand must not be VNNI-packed");
  require(b.vnni == (start_.desc().precision == Precision::bf16),
          "BlockedGemm::run: the right operand must be VNNI-packed exactly for bf16");
  run_columns(a, [&b](std::int64_t p, std::int64_t j) { return b.block(p, j); }, 0, c_.col_blocks(), c, epilogue);
}

std::int64_t BlockedGemm::panel_floats(Transposed operand) const {
  const std::int64_t blocks = std::min(chunk_, a_.col_blocks());
  return operand == Transposed::left ? band(1, omp_get_max_threads()) * blocks * a_.block_elems()
                                     : blocks * b_.block_elems();
}

std::int64_t BlockedGemm::slab_columns() const {
  // Per-task panels over an A beyond a share of L3 would split its rows into groups, each
  // transposing all of B again (at C = K = 4096, N = 4096: 16 times, from memory). A slab instead
  // transposes each block of B once into scratch that stays in L3 while run()'s bands read it, as
  // the forward pass reads w (C = K = 4096, N = 1024 and 4096, 1 and 2 threads: 7-19% faster).
  const std::int64_t a_bytes = a_.elems() * std::int64_t(sizeof(float));
  if (a_bytes <= kLeftInL3Bytes) return 0;
  const std::int64_t column_bytes = b_.block_elems() * b_.row_blocks() * std::int64_t(sizeof(float));
  return std::clamp<std::int64_t>(kSlabBytes / column_bytes, 1, c_.col_blocks());
}

BlockedGemm::Tasks BlockedGemm::tasks(std::int64_t band, std::int64_t threads, std::int64_t cols) const {
  const std::int64_t bands = (c_.row_blocks() + band - 1) / band;
  // At least 4 tasks per thread where C has the columns for it.
  const std::int64_t splits = std::min(cols, (4 * threads + bands - 1) / bands);
  return {bands, splits, (cols + splits - 1) / splits};
}

std::int64_t BlockedGemm::band(std::int64_t cols, std::int64_t threads) const {
  return std::clamp<std::int64_t>(c_.row_blocks() * cols / (4 * threads), 1, band_);
}

std::int64_t BlockedGemm::transpose_scratch_floats(Transposed operand) const {
  if (operand == Transposed::right && slab_columns() > 0) return slab_columns() * b_.row_blocks() * b_.block_elems();
  return omp_get_max_threads() * panel_floats(operand);
}

void BlockedGemm::check_transposed_run(const BlockedMatrix& c, std::span<float> scratch, Transposed operand) const {
  require(start_.desc().precision == Precision::fp32, "BlockedGemm: transposed operands are fp32 only");
  require(c.shape == c_, "BlockedGemm::run: operand shapes differ from the planned ones");
  require(std::int64_t(scratch.size()) >= transpose_scratch_floats(operand),
          "BlockedGemm::run: transpose scratch smaller than transpose_scratch_floats()");
}

void BlockedGemm::run_left_transposed(const BlockedMatrix& at, const BlockedMatrix& b, BlockedMatrix& c,
                                      std::span<float> scratch) const {
  check_transposed_run(c, scratch, Transposed::left);
  require(at.shape == transposed(a_) && b.shape == b_ && !a_.column_panels,
          "BlockedGemm::run_left_transposed: operand shapes differ from the planned ones");
  const std::int64_t rows = c_.row_blocks(), cols = c_.col_blocks(), inner = a_.col_blocks();
  const std::int64_t per_thread = panel_floats(Transposed::left);
  const std::int64_t ae = a_.block_elems(), row_panel = std::min(chunk_, inner) * ae;
  // Tasks as in run_impl: bands of block rows of C, split into column groups when there are few.
  const std::int64_t threads = omp_get_max_threads();
  // Splitting a band's columns into several tasks transposes its chunks once per task: the band
  // narrows as if C had one column, so the work is shared out by rows and small layers keep one
  // panel per thread.
  const std::int64_t band = this->band(1, threads);
  const Tasks t = tasks(band, threads, cols);
  const std::int64_t bands = t.bands, splits = t.splits, per_split = t.per_split;
#pragma omp parallel
  {
    float* const panel = scratch.data() + omp_get_thread_num() * per_thread;
#pragma omp for collapse(2) schedule(dynamic)
    for (std::int64_t g = 0; g < bands; ++g) {
      for (std::int64_t s = 0; s < splits; ++s) {
        const std::int64_t j0 = s * per_split, j1 = std::min(cols, j0 + per_split);
        const std::int64_t i0 = g * band, i1 = std::min(rows, i0 + band);
        for (std::int64_t p = 0; p < inner; p += chunk_) {
          const std::int64_t count = std::min(chunk_, inner - p);
          // A(i, p + q) = A^T(p + q, i)^T, consecutive in the row's panel as in a row-order A.
          for (std::int64_t i = i0; i < i1; ++i) {
            float* const row = panel + (i - i0) * row_panel;
            for (std::int64_t q = 0; q < count; ++q) transpose_block(at.block(p + q, i), a_.bcol, a_.brow, row + q * ae);
          }
          const Brgemm& kernel = p == 0 ? start_ : accumulate_;
          for (std::int64_t j = j0; j < j1; ++j) {
            for (std::int64_t i = i0; i < i1; ++i) {
              const float* const row = panel + (i - i0) * row_panel;
              for (std::int64_t m0 = 0; m0 < b_.bcol; m0 += sub_m_) kernel(b.block(p, j) + m0, row, c.block(i, j) + m0, count);
            }
          }
        }
      }
    }
  }
}

void BlockedGemm::run_right_transposed(const BlockedMatrix& a, const BlockedMatrix& bt, BlockedMatrix& c,
                                       std::span<float> scratch) const {
  check_transposed_run(c, scratch, Transposed::right);
  require(a.shape == a_ && bt.shape == transposed(b_) && b_.column_panels,
          "BlockedGemm::run_right_transposed: operand shapes differ from the planned ones");
  const std::int64_t rows = c_.row_blocks(), cols = c_.col_blocks(), inner = a_.col_blocks();
  const std::int64_t be = b_.block_elems();
  if (const std::int64_t slab = slab_columns(); slab > 0) {
    // A beyond a share of L3: B is transposed a slab of column panels at a time, each block once,
    // and the slab's C columns computed as run() does (bands of block rows); see slab_columns().
    float* const panels = scratch.data();
    for (std::int64_t j0 = 0; j0 < cols; j0 += slab) {
      const std::int64_t j1 = std::min(cols, j0 + slab);
#pragma omp parallel for collapse(2) schedule(static)
      for (std::int64_t j = j0; j < j1; ++j) {
        for (std::int64_t p = 0; p < inner; ++p) {
          transpose_block(bt.block(j, p), b_.bcol, b_.brow, panels + ((j - j0) * inner + p) * be);
        }
      }
      run_columns(a, [=](std::int64_t p, std::int64_t j) -> const float* { return panels + ((j - j0) * inner + p) * be; },
                  j0, j1, c, {});
    }
    return;
  }
  const std::int64_t per_thread = panel_floats(Transposed::right);
  // A within a share of L3: a task is a group of block rows of one block column of C, and its
  // transposed chunk of B serves every C block of the task, so each block of B is transposed once
  // unless there are too few columns to keep every thread busy (then the rows are split into
  // groups). A stays in L3 while consecutive tasks (the columns) reread it.
  const std::int64_t threads = omp_get_max_threads();
  const std::int64_t groups = std::min(rows, (4 * threads + cols - 1) / cols);
  const std::int64_t per_group = (rows + groups - 1) / groups;
#pragma omp parallel
  {
    float* const panel = scratch.data() + omp_get_thread_num() * per_thread;
#pragma omp for collapse(2) schedule(dynamic)
    for (std::int64_t g = 0; g < groups; ++g) {
      for (std::int64_t j = 0; j < cols; ++j) {
        const std::int64_t i0 = g * per_group, i1 = std::min(rows, i0 + per_group);
        for (std::int64_t p = 0; p < inner; p += chunk_) {
          const std::int64_t count = std::min(chunk_, inner - p);
          // B(p + q, j) = B^T(j, p + q)^T, consecutive in the panel as in column panels.
          for (std::int64_t q = 0; q < count; ++q) transpose_block(bt.block(j, p + q), b_.bcol, b_.brow, panel + q * be);
          const Brgemm& kernel = p == 0 ? start_ : accumulate_;
          for (std::int64_t i = i0; i < i1; ++i) {
            for (std::int64_t m0 = 0; m0 < b_.bcol; m0 += sub_m_) kernel(panel + m0, a.block(i, p), c.block(i, j) + m0, count);
          }
        }
      }
    }
  }
}

void BlockedGemm::run(const BlockedMatrix& a, const BlockedMatrix& b, BlockedMatrix& c,
                      const Epilogue& epilogue) const {
  run_impl(a, b, c, epilogue);
}

void BlockedGemm::run(const BlockedBf16& a, const BlockedBf16& b, BlockedMatrix& c,
                      const Epilogue& epilogue) const {
  run_impl(a, b, c, epilogue);
}

}  // namespace rematch::kernels
