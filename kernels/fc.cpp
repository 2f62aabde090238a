#include "kernels/fc.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>

#include "kernels/op_timing.hpp"
#include "kernels/simd.hpp"
#include "kernels/error.hpp"
#include "kernels/tile.hpp"

namespace rematch::kernels {
namespace {

std::int64_t padded(std::int64_t dim, std::int64_t block) { return (dim + block - 1) / block * block; }

// The sweep's limits: the segments' weight gradients together stay within 4 MiB and within a
// quarter of the layer's input or 1 MiB, whichever is more (they are summed at the end, and as a pass's scratch they count
// against the activation budget: a small batch must not pay more memory for the sweep than its
// activations take), and a narrow layer has at least 4 segments (work for every thread).
constexpr std::int64_t kSweepPartialBytes = 4 << 20;
constexpr std::int64_t kSweepPartialShareOfInput = 4;  // partial gradients <= input bytes / this
constexpr std::int64_t kSweepPartialFloorBytes = 1 << 20;  // ... or this
constexpr std::int64_t kSweepMaxSegments = 64;
constexpr std::int64_t kSweepMinSegments = 4;
// Weights up to this size are transposed whole for backward-data, once per pass: its tasks are
// then block rows of dx that stream dy once. Per-task panels pay off when transposing w is real
// work; on narrow layers their column tasks reread dy from L3 (C = K = 128, N = 262,144, 1 thread:
// ~56% of the peak against ~66-79% with the whole transpose).
constexpr std::int64_t kWholeTransposeBytes = 256 << 10;

// One block of dy (rows x cols, row-major) for the sweep, in one pass: masked by the ReLU's output y
// (y > 0) into `out` when Mask, and row r added into sums[(r % 8) * cols + c] when Sums (eight
// running sums per column, so consecutive rows never wait on each other's add). The next row
// block's blocks of dy and y (each unless it is null: the dw products on the register tile fetch
// the next dy, the stream of dx the next y) are fetched a line per line read, interleaved with the
// work: a burst of hints stalls the thread until most of them have been issued.
template <bool Mask, bool Sums>
void mask_and_sum(const float* dy, const float* y, std::int64_t rows, std::int64_t cols, float* out, float* sums,
                  const float* next_dy, const float* next_y) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t row = r * cols;
    float* const s = sums + (r % 8) * cols;
    std::int64_t c = 0;
    for (; c + kVectorFloats <= cols; c += kVectorFloats) {
      // One hint per 64-byte line, also where a vector is half a line.
      const bool line = kVectorFloats >= 16 || c % 16 == 0;
      FloatVector g;
      std::memcpy(&g, dy + row + c, sizeof g);
      if (line && next_dy != nullptr) __builtin_prefetch(next_dy + row + c, 0, 2);
      if (Mask) {
        // Read unconditionally and select by bits: a conditional read of dy compiled to
        // merge-masked loads chained through a stack spill (~18% of a C = K = 64 sweep).
        FloatVector v;
        std::memcpy(&v, y + row + c, sizeof v);
        if (line && next_y != nullptr) __builtin_prefetch(next_y + row + c, 0, 2);
        g = FloatVector(IntVector(g) & (v > 0.0f));
        std::memcpy(out + row + c, &g, sizeof g);
      }
      if (Sums) {
        FloatVector acc;
        std::memcpy(&acc, s + c, sizeof acc);
        acc += g;
        std::memcpy(s + c, &acc, sizeof acc);
      }
    }
    for (; c < cols; ++c) {
      const float g = !Mask || y[row + c] > 0.0f ? dy[row + c] : 0.0f;
      if (Mask) out[row + c] = g;
      if (Sums) s[c] += g;
    }
  }
}

// The sweep's segment count before rounding to whole row blocks per segment, for a blocked
// descriptor (fc_blocking); 0 when the layer is not narrow.
std::int64_t sweep_segments(const FcDesc& d) {
  const std::int64_t row_blocks = (d.n + d.bn - 1) / d.bn;
  const std::int64_t w_bytes = padded(d.c, d.bc) * padded(d.k, d.bk) * std::int64_t(sizeof(float));
  const std::int64_t x_bytes = padded(d.n, d.bn) * padded(d.c, d.bc) * std::int64_t(sizeof(float));
  const std::int64_t partial_bytes = std::min(kSweepPartialBytes, std::max(kSweepPartialFloorBytes, x_bytes / kSweepPartialShareOfInput));
  const std::int64_t segments = std::min({row_blocks, kSweepMaxSegments, partial_bytes / w_bytes});
  return d.precision == Precision::fp32 && segments >= kSweepMinSegments ? segments : 0;
}

// floats values from src to dst (both vector-aligned, floats a multiple of kVectorFloats) with
// non-temporal stores: the sweep's dx goes to memory without first reading its lines in (a
// plain store fetches each line before writing it, a fifth of a C = K = 64 sweep's traffic).
// Meanwhile the fetch_floats values at `fetch` are brought into L2, their lines spread evenly over
// the lines streamed: the masking pass, which fetches the next dy, then does not also fetch the
// next y (a hint holds a fill buffer until its line arrives, and with both the pass stalls on its
// hints; C = K = 64, 1 thread: the fused backward ~5% faster).
void stream_out(const float* src, std::int64_t floats, float* dst, const float* fetch, std::int64_t fetch_floats) {
  constexpr std::int64_t kLineFloats = 16;
  const std::int64_t lines = (floats + kLineFloats - 1) / kLineFloats;
  const std::int64_t fetch_lines = (fetch_floats + kLineFloats - 1) / kLineFloats;
  // By the end of line l, (l + 1) * fetch_lines / lines hints are issued (all of them after the
  // last line): each line earns fetch_lines, each hint costs lines, so no division per line.
  std::int64_t fetched = 0, earned = 0;
  for (std::int64_t e = 0; e < floats; e += kVectorFloats) {
#ifdef __AVX512F__
    _mm512_stream_ps(dst + e, _mm512_load_ps(src + e));
#else
    _mm256_stream_ps(dst + e, _mm256_load_ps(src + e));
#endif
    if (e % kLineFloats != 0) continue;
    for (earned += fetch_lines; earned >= lines; earned -= lines) {
      __builtin_prefetch(fetch + fetched++ * kLineFloats, 0, 2);
    }
  }
}

// Whether the sweep's dw products run on the register tile (AVX-512 builds, input blocks as wide
// as the tile's rows): only where the weight gradient is a single block (C and K within one block
// each), the layer with the least arithmetic per byte of x and dy streamed in. There the tiles
// fetch the whole next row block of x and dy, one line every few reduction steps, and the fetch
// overlaps the arithmetic: LIBXSMM's prefetching kernel fetches during its first column tile only,
// so the masking pass had to fetch dy, in a burst that stalled it (C = K = 64, the products timed
// alone on operands from memory, 1 thread: ~120-130 against ~100-115 GFLOP/s). On wider layers
// LIBXSMM's kernels are faster on operands in cache (C = K = 128..512: ~140-165 against ~115-140
// GFLOP/s) and about as fast from memory, so they keep them.
bool sweep_tiles_dw(const FcDesc& d) {
  return kTileGemm && d.bc == kTileWidth && padded(d.c, d.bc) == d.bc && padded(d.k, d.bk) == d.bk;
}

}  // namespace

FcDesc fc_blocking(const FcDesc& d) {
  require(d.n > 0 && d.c > 0 && d.k > 0,
          "Fc: n, c, k must be positive, got " + std::to_string(d.n) + ", " +
              std::to_string(d.c) + ", " + std::to_string(d.k));
  require(d.bn > 0 && d.bc > 0 && d.bk > 0, "Fc: block sizes must be positive");
  require(d.precision == Precision::fp32 || bf16_supported(),
          "Fc: bf16 requested but this CPU has no AVX512-BF16");
  // bf16 VNNI packing pairs rows of each right operand (w, w^T, dy): blocks must be even.
  const std::int64_t mult = d.precision == Precision::bf16 ? 2 : 1;
  FcDesc out = d;
  out.bn = choose_block(d.n, d.bn + d.bn % mult, mult);
  // Padding rows cost work on every pass: halve the batch block when that pads less.
  const std::int64_t half = out.bn / 2;
  if (half % mult == 0 && half > 0 && padded(d.n, half) < padded(d.n, out.bn)) out.bn = half;
  out.bc = choose_block(d.c, d.bc + d.bc % mult, mult);
  out.bk = choose_block(d.k, d.bk + d.bk % mult, mult);
  return out;
}

bool fc_sweeps(const FcDesc& d) { return sweep_segments(fc_blocking(d)) > 0; }

Fc::Fc(const FcDesc& desc)
    : d_(fc_blocking(desc)),
      x_{d_.n, d_.c, d_.bn, d_.bc, false},
      w_{d_.c, d_.k, d_.bc, d_.bk, true},
      y_{d_.n, d_.k, d_.bn, d_.bk, false},
      gemm_{BlockedGemm(x_, w_, d_.precision), BlockedGemm(y_, transposed(w_), d_.precision),
            BlockedGemm(transposed(x_), y_, d_.precision, w_.column_panels)} {
  const std::int64_t row_blocks = y_.row_blocks();
  const std::int64_t segments = sweep_segments(d_);
  if (segments == 0) return;
  sweep_.segment_blocks = (row_blocks + segments - 1) / segments;
  sweep_.segments = (row_blocks + sweep_.segment_blocks - 1) / sweep_.segment_blocks;
  // In LIBXSMM's column-major view (see BlockedGemm): dx(p, i)^T = sum_j w^T(j, i)^T dy(p, j)^T
  // over the k blocks, and the weight gradient is formed transposed, dw(i, j) += x(p, i)^T dy(p, j)
  // per row block with x read in place and dy as the transposed operand (so no pass transposes x or
  // dy), one product per call. The call fetches the next row block's x(p + 1, i) (the shape of its
  // first operand) while it computes; the pass that masks dy fetches the next dy, the stream of dx the
  // next y. A chunk of row blocks per call, with the next blocks fetched in a burst of hints before
  // it, leaves the thread waiting on memory at large batches.
  BrgemmDesc dx;
  dx.m = d_.bc;
  dx.n = d_.bn;
  dx.k = d_.bk;
  dx.lda = d_.bc;
  dx.ldb = d_.bk;
  dx.ldc = d_.bc;
  dx.stride_a = transposed(w_).down_step();
  dx.stride_b = y_.block_elems();  // the next block of the row block of dy
  sweep_.dx = Brgemm(dx);
  // Each dw block takes a row block in two products over parts of its rows, back to back: with
  // 128-row blocks a whole product reads two 32 KiB operands (x and dy) and its 16 KiB block of the
  // gradient, more than a 48 KiB L1 holds, and runs at the rate of L2 (m = n = 64, k = 128 on an
  // Intel Xeon (Ice Lake server): ~126-137 GFLOP/s, against ~162 with its operands in L1); a part's
  // operands and the gradient block (16 + 16 + 16 KiB) fit, and the block stays in L1 for the second
  // part. (All blocks' first parts before the second parts read a wide layer's gradient twice per
  // row block: no faster at C = K = 256 and 512.) Each part fetches the same part of the
  // next row block. The parts accumulate in row order, so each dw element sees the same sequence
  // of additions as one product over the block.
  sweep_.dw_split = std::max<std::int64_t>(1, d_.bn / 2);
  sweep_.tile_dw = sweep_tiles_dw(d_);
  if (sweep_.tile_dw) return;
  BrgemmDesc dw;
  dw.m = d_.bc;
  dw.n = d_.bk;
  dw.k = sweep_.dw_split;
  dw.lda = d_.bc;
  dw.ldb = d_.bk;
  dw.ldc = d_.bc;
  dw.prefetch_next = true;
  dw.transpose_b = true;
  sweep_.dw_start = Brgemm(dw);
  dw.accumulate = true;
  sweep_.dw_accumulate[0] = Brgemm(dw);
  if (d_.bn > sweep_.dw_split) {
    dw.k = d_.bn - sweep_.dw_split;
    sweep_.dw_accumulate[1] = Brgemm(dw);
  }
}

void Fc::gemm(Pass pass, const BlockedMatrix& a, const BlockedMatrix& b, BlockedMatrix& c,
              const BlockedGemm::Epilogue& epilogue) {
  const OpScope scope(OpKind::gemm);
  if (d_.precision == Precision::fp32) {
    gemm_[pass].run(a, b, c, epilogue);
    return;
  }
  to_bf16_into(a, false, bf16_[pass][0], scratch());
  to_bf16_into(b, true, bf16_[pass][1], scratch());
  gemm_[pass].run(bf16_[pass][0], bf16_[pass][1], c, epilogue);
}

Allocator& Fc::scratch() const {
  return scratch_allocator_ != nullptr ? *scratch_allocator_ : heap_allocator();
}

std::span<float> Fc::panel_scratch(Pass pass) {
  const std::size_t floats = std::size_t(gemm_[pass].transpose_scratch_floats(
      pass == kBackwardData ? BlockedGemm::Transposed::right : BlockedGemm::Transposed::left));
  if (panels_.size() < floats) {
    panels_ = {};  // the old one goes back first, so an arena never holds both
    panels_ = AlignedBuffer<float>(floats, scratch(), Uninitialised{});  // transposes write before the GEMMs read
  }
  return panels_.span();
}

const BlockedMatrix& Fc::whole_transpose(const BlockedMatrix& m, BlockedMatrix& out) {
  if (out.data.size() == 0) out = BlockedMatrix(transposed(m.shape), false, scratch(), Uninitialised{});  // transpose_into writes it whole
  transpose_into(m, out);
  return out;
}

void Fc::release_scratch() {
  wt_ = {};
  xt_ = {};
  panels_ = {};
  for (auto& pass : bf16_) {
    for (auto& operand : pass) operand = {};
  }
}

void Fc::end_pass() {
  if (scratch_allocator_ != nullptr) release_scratch();
}

void Fc::forward(const BlockedMatrix& x, const BlockedMatrix& w, std::span<const float> bias,
                 BlockedMatrix& y) {
  require(x.shape == x_, "Fc::forward: x shape differs from x_shape()");
  require(w.shape == w_, "Fc::forward: w shape differs from w_shape()");
  require(y.shape == y_, "Fc::forward: y shape differs from y_shape()");
  require(bias.size() == (d_.bias ? std::size_t(d_.k) : 0),
          "Fc::forward: bias must have k values when enabled and none otherwise");
  const float* b = d_.bias ? bias.data() : nullptr;
  const Activation act = d_.activation;
  const BlockShape ys = y_;
  gemm(kForward, x, w, y, [b, act, ys](float* blk, std::int64_t rb, std::int64_t cb) {
    bias_activation_block(blk, ys, rb, cb, b, act);
  });
  end_pass();
}

void Fc::activation_backward(const BlockedMatrix& y, BlockedMatrix& dy) const {
  require(y.shape == y_ && dy.shape == y_, "Fc::activation_backward: shapes differ from y_shape()");
  if (d_.activation == Activation::relu) relu_backward(y.data.span(), dy.data.span(), dy.data.span());
}

void Fc::backward_data(const BlockedMatrix& dy, const BlockedMatrix& w, BlockedMatrix& dx) {
  require(dy.shape == y_, "Fc::backward_data: dy shape differs from y_shape()");
  require(w.shape == w_, "Fc::backward_data: w shape differs from w_shape()");
  require(dx.shape == x_, "Fc::backward_data: dx shape differs from x_shape()");
  if (d_.precision == Precision::fp32 && w_.elems() * std::int64_t(sizeof(float)) > kWholeTransposeBytes) {
    const OpScope scope(OpKind::gemm);
    gemm_[kBackwardData].run_right_transposed(dy, w, dx, panel_scratch(kBackwardData));
  } else {
    gemm(kBackwardData, dy, whole_transpose(w, wt_), dx);
  }
  end_pass();
}

void Fc::backward_weights(const BlockedMatrix& x, const BlockedMatrix& dy, BlockedMatrix& dw,
                          std::span<float> dbias) {
  require(x.shape == x_, "Fc::backward_weights: x shape differs from x_shape()");
  require(dy.shape == y_, "Fc::backward_weights: dy shape differs from y_shape()");
  require(dw.shape == w_, "Fc::backward_weights: dw shape differs from w_shape()");
  require(dbias.size() == (d_.bias ? std::size_t(d_.k) : 0),
          "Fc::backward_weights: dbias must have k values when enabled and none otherwise");
  if (sweeps()) {
    sweep(x, nullptr, dy, nullptr, nullptr, dw, dbias);
    return;
  }
  if (d_.precision == Precision::fp32) {
    const OpScope scope(OpKind::gemm);
    gemm_[kBackwardWeights].run_left_transposed(x, dy, dw, panel_scratch(kBackwardWeights));
  } else {
    gemm(kBackwardWeights, whole_transpose(x, xt_), dy, dw);
  }
  end_pass();
  if (d_.bias) bias_grad(dy, dbias);
}

void Fc::backward(const BlockedMatrix& x, const BlockedMatrix& y, BlockedMatrix& dy,
                  const BlockedMatrix& w, BlockedMatrix* dx, BlockedMatrix& dw,
                  std::span<float> dbias) {
  if (!sweeps()) {
    activation_backward(y, dy);
    if (dx != nullptr) backward_data(dy, w, *dx);
    backward_weights(x, dy, dw, dbias);
    return;
  }
  require(y.shape == y_, "Fc::backward: y shape differs from y_shape()");
  require(w.shape == w_, "Fc::backward: w shape differs from w_shape()");
  require(dx == nullptr || dx->shape == x_, "Fc::backward: dx shape differs from x_shape()");
  sweep(x, d_.activation == Activation::relu ? &y : nullptr, dy, dx != nullptr ? &w : nullptr, dx, dw,
        dbias);
}

void Fc::sweep(const BlockedMatrix& x, const BlockedMatrix* y, const BlockedMatrix& dy,
               const BlockedMatrix* w, BlockedMatrix* dx, BlockedMatrix& dw, std::span<float> dbias) {
  const OpScope scope(OpKind::gemm);
  require(x.shape == x_, "Fc::backward: x shape differs from x_shape()");
  require(dy.shape == y_, "Fc::backward: dy shape differs from y_shape()");
  require(dw.shape == w_, "Fc::backward: dw shape differs from w_shape()");
  require(dbias.size() == (d_.bias ? std::size_t(d_.k) : 0),
          "Fc::backward: dbias must have k values when enabled and none otherwise");
  if (dx != nullptr) whole_transpose(*w, wt_);
  const std::int64_t rows = y_.row_blocks(), kb = y_.col_blocks(), cb = x_.col_blocks();
  const std::int64_t bn = d_.bn, bc = d_.bc, bk = d_.bk;
  const std::int64_t ybe = y_.block_elems();
  const std::int64_t segments = sweep_.segments, seg_blocks = sweep_.segment_blocks;
  const std::int64_t bias_len = kb * bk, w_elems = w_.elems();
  // Per thread: the row block's dy masked by the ReLU (without one the GEMMs read dy in place), the
  // segment's eight interleaved bias sums per column, and the row block's dx, which is streamed out
  // from there when row blocks of dx start on vector boundaries (dx is written in place otherwise).
  const std::int64_t dy_floats = y != nullptr ? kb * ybe : 0, sum_floats = d_.bias ? 8 * bias_len : 0;
  const std::int64_t dx_row = cb * x_.block_elems();
  const std::int64_t dx_floats = dx != nullptr && dx_row % kVectorFloats == 0 ? dx_row : 0;
  // Each thread's part starts on a cache line (its dx first: the stream reads it by aligned vectors).
  const std::int64_t thread_floats = (dx_floats + dy_floats + sum_floats + 15) / 16 * 16;
  const std::int64_t threads = omp_get_max_threads();
  // All are written before they are read (a row block's dy and dx, the segments' gradients by their
  // first product and fill), so they skip the zero-fill.
  AlignedBuffer<float> scratch_rows(std::size_t(threads * thread_floats), scratch(), Uninitialised{});
  AlignedBuffer<float> partial(std::size_t(segments * (w_elems + bias_len)), scratch(), Uninitialised{});
  float* const rows_base = scratch_rows.data();
  float* const partial_w = partial.data();
  float* const partial_b = partial.data() + segments * w_elems;
  const BlockShape ws = w_;
  const float* wt = wt_.data.data();
  const BlockShape wts = wt_.shape;
  // Segments go out dynamically, each claimed by a thread while it runs the last row block of its
  // previous one, so that block fetches the claimed segment's first row block (an OpenMP loop hands
  // out the next segment only after this one, and the next in index order is usually another
  // thread's).
  std::atomic<std::int64_t> unclaimed{0};
#pragma omp parallel
  {
    float* const dxc = rows_base + omp_get_thread_num() * thread_floats;
    float* const dyc = dxc + dx_floats;
    float* const sums = dyc + dy_floats;
    for (std::int64_t s = unclaimed.fetch_add(1, std::memory_order_relaxed), following = segments; s < segments;
         s = following) {
      float* const pw = partial_w + s * w_elems;  // block (i, j) holds dw(i, j)^T, bk x bc
      std::fill(sums, sums + sum_floats, 0.0f);
      const std::int64_t first = s * seg_blocks, last = std::min(rows, first + seg_blocks);
      for (std::int64_t p = first; p < last; ++p) {
        if (p + 1 == last) following = unclaimed.fetch_add(1, std::memory_order_relaxed);
        // The row block fetched meanwhile (none after the last segment: p itself, in cache).
        const std::int64_t next = p + 1 < last ? p + 1 : following < segments ? following * seg_blocks : p;
        // The next y is fetched by the stream of dx when there is one, else by the masking pass; the
        // next dy by the dw products when they are tiles, else by the masking pass.
        auto next_y = [&](std::int64_t j) { return dx_floats > 0 ? nullptr : y->block(next, j); };
        auto next_dy = [&](std::int64_t j) { return sweep_.tile_dw ? nullptr : dy.block(next, j); };
        for (std::int64_t j = 0; j < kb; ++j) {
          float* const sj = d_.bias ? sums + j * 8 * bk : nullptr;
          const float* const dyj = dy.block(p, j);
          if (y == nullptr) {
            if (d_.bias) mask_and_sum<false, true>(dyj, nullptr, bn, bk, nullptr, sj, next_dy(j), nullptr);
          } else if (d_.bias) {
            mask_and_sum<true, true>(dyj, y->block(p, j), bn, bk, dyc + j * ybe, sj, next_dy(j), next_y(j));
          } else {
            mask_and_sum<true, false>(dyj, y->block(p, j), bn, bk, dyc + j * ybe, sj, next_dy(j), next_y(j));
          }
        }
        const float* const g = y != nullptr ? dyc : dy.block(p, 0);  // dy(p, j) at g + j * ybe
        if (dx_floats > 0) {
          for (std::int64_t i = 0; i < cb; ++i) sweep_.dx(wt + wts.block_offset(0, i), g, dxc + i * x_.block_elems(), kb);
          // y's row block is contiguous (its blocks are in row order).
          stream_out(dxc, dx_floats, dx->block(p, 0), y != nullptr ? y->block(next, 0) : nullptr, y != nullptr ? kb * ybe : 0);
        } else if (dx != nullptr) {
          for (std::int64_t i = 0; i < cb; ++i) sweep_.dx(wt + wts.block_offset(0, i), g, dx->block(p, i), kb);
        }
        for (std::int64_t i = 0; i < cb; ++i) {
          for (std::int64_t j = 0; j < kb; ++j) {
            for (int part = 0; part < 2; ++part) {
              const std::int64_t r0 = part == 0 ? 0 : sweep_.dw_split;
              if (r0 == bn) break;
              const bool start = part == 0 && p == first;
              if (sweep_.tile_dw) {
                // dw^T += dy^T x over the part's rows (one block each: i = j = 0): dy read in place as
                // the transposed left operand, x's rows as the right one. The first part fetches the
                // next row block's x, the second its dy (a single part, of one row, only x).
                TileGemmDesc t;
                t.rows = bk, t.k = (part == 0 ? sweep_.dw_split : bn) - r0;
                t.a_row = 1, t.a_col = bk, t.ldb = bc, t.ldo = bc;
                t.accumulate = !start;
                t.prefetch = part == 0 ? x.block(next, 0) : dy.block(next, 0);
                t.prefetch_bytes = bn * (part == 0 ? bc : bk) * std::int64_t(sizeof(float));
                tile_gemm(t, g + j * ybe + r0 * bk, x.block(p, i) + r0 * bc, pw + ws.block_offset(i, j));
              } else {
                const Brgemm& kernel = start ? sweep_.dw_start : sweep_.dw_accumulate[part];
                kernel(x.block(p, i) + r0 * bc, g + j * ybe + r0 * bk, pw + ws.block_offset(i, j),
                       x.block(next, i) + r0 * bc, dy.block(next, j) + r0 * bk);
              }
            }
          }
        }
      }
      float* const pb = partial_b + s * bias_len;
      for (std::int64_t c = 0; c < sum_floats / 8; ++c) {
        const std::int64_t j = c / bk, col = c % bk;
        const float* const sc = sums + j * 8 * bk + col;
        float acc = sc[0];
        for (std::int64_t r = 1; r < 8; ++r) acc += sc[r * bk];
        pb[c] = acc;
      }
    }
    _mm_sfence();  // the streamed dx is complete before any thread goes past the barrier
#pragma omp barrier
    // The segments' sums into the first segment's, in segment order, a vector-friendly slice at a
    // time; then each of its blocks transposed into dw.
    constexpr std::int64_t kSlice = 1024;
#pragma omp for schedule(static)
    for (std::int64_t e0 = 0; e0 < w_elems; e0 += kSlice) {
      const std::int64_t len = std::min(kSlice, w_elems - e0);
      float* const out = partial_w + e0;
      for (std::int64_t s = 1; s < segments; ++s) {
        const float* part = partial_w + s * w_elems + e0;
        for (std::int64_t e = 0; e < len; ++e) out[e] += part[e];
      }
    }
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < cb * kb; ++b) {
      const std::int64_t i = b / kb, j = b % kb;
      transpose_block(partial_w + ws.block_offset(i, j), bk, bc, dw.block(i, j));
    }
  }
  for (std::size_t c = 0; c < dbias.size(); ++c) {
    float acc = partial_b[c];
    for (std::int64_t s = 1; s < segments; ++s) acc += partial_b[s * bias_len + c];
    dbias[c] = acc;
  }
  end_pass();
}

LayerCost Fc::cost() const {
  const double mnk = 2.0 * double(d_.n) * double(d_.c) * double(d_.k);
  const double out = double(d_.n) * double(d_.k);
  const double epilogue = (d_.bias ? out : 0.0) + (d_.activation == Activation::relu ? out : 0.0);
  LayerCost c;
  c.fwd_flops = mnk + epilogue;
  c.bwd_data_flops = mnk + (d_.activation == Activation::relu ? out : 0.0);
  c.bwd_weights_flops = mnk + (d_.bias ? out : 0.0);
  c.saved_bytes = (x_.elems() + (d_.activation == Activation::relu ? y_.elems() : 0)) *
                  std::int64_t(sizeof(float));
  return c;
}

}  // namespace rematch::kernels
