#include "kernels/conv1d.hpp"

#include <omp.h>

#include <algorithm>
#include <functional>
#include <string>
#include <utility>

#include "kernels/brgemm.hpp"
#include "kernels/eltwise.hpp"
#include "kernels/error.hpp"
#include "kernels/tile.hpp"

namespace rematch::kernels {
namespace {

void check_size(std::span<const float> s, std::int64_t expected, const char* what) {
  require(static_cast<std::int64_t>(s.size()) == expected,
          std::string("Conv1d: ") + what + " has " + std::to_string(s.size()) +
              " values, expected " + std::to_string(expected));
}

// Full-size and remainder kernels for a dimension split into blocks.
struct Split {
  std::int64_t size, block;
  std::int64_t count() const { return (size + block - 1) / block; }
  std::int64_t len(std::int64_t i) const { return std::min(block, size - i * block); }
  bool ragged() const { return size % block != 0; }
};

// dst[t] = mask[t] > 0 ? src[t] : 0, the backward of a ReLU whose output is `mask`. Both inputs
// are read unconditionally so that the loop compiles to a compare and a zeroing move; written as a
// conditional read of src, GCC emitted merge-masked loads chained through a stack spill, which
// took ~30% of a masked backward-data pass at C = K = 64, S = 3 (AVX-512).
void relu_masked_copy(const float* __restrict src, const float* __restrict mask,
                      float* __restrict dst, std::int64_t len) {
  for (std::int64_t t = 0; t < len; ++t) {
    const float v = src[t];
    dst[t] = mask[t] > 0.0f ? v : 0.0f;
  }
}

// g[t] = mask[t] > 0 ? g[t] : 0, the same in place.
void relu_mask_in_place(float* __restrict g, const float* __restrict mask, std::int64_t len) {
  for (std::int64_t t = 0; t < len; ++t) {
    const float v = g[t];
    g[t] = mask[t] > 0.0f ? v : 0.0f;
  }
}

// out[n][o][q] = sum_s sum_i wt[s][o][i] * in_pad[n][i][q + s*dilation], a valid correlation
// of the input zero-padded by `left` columns on the left (and up to out_w + span on the right):
// one BRGEMM over the taps per (sample, width block, channel block), through tile_gemm() for
// full 64-position blocks in AVX-512 builds.
//
// A task is a group of consecutive width blocks of one sample: it first copies their input
// window, c rows of group x q block + span floats with the zero padding filled in, into a
// per-thread tile, then runs every channel block on it, each block's weights serving the whole
// group. Read in place, the window's rows lie a whole input row apart (a page each for long
// inputs) and LIBXSMM re-reads them once per register tile of the output; packed they are
// contiguous and L2-resident: at C = 256, S = 3 this measured ~30% faster (AVX2), and it makes a
// padded copy of the whole input unnecessary. Even at C = 64 the strided reads cost more than
// the copy (AVX-512, W = 1000: the tap BRGEMM on cached operands ran at ~66% of the peak in place
// against ~82% packed). The group makes the copied input rows and the written output rows
// kGroupRowFloats long, so that the hardware prefetchers stream them, where a single block's
// 64-float rows left each task waiting on L3 (N = 16, C = K = 64, W = 1000, S = 3: ~20% faster).
//
// When a channel block's weights (taps x bk x c floats) are megabytes, a task that streamed all
// of them per width block would read them from L3 again for every block; there the weights are
// stationary instead: a task is a group of kStationaryGroup width blocks, and each chunk of taps'
// weights serves the whole group from L2, accumulating into its output tiles (C = K = 256,
// S = 51, d = 8, AVX-512, 1 thread: ~11% faster).
//
// The width block is preferred_m() (on AVX2 at C = 256: S = 3 88 GFLOP/s packed vs 67 at
// m = 64; S = 9 82 vs 63), except with such megabytes of weights, where the desc's wider bq
// halves the weight traffic (measured streamed, before the stationary order: C = 256, S = 51,
// 3.3 MiB: 46 vs 38 GFLOP/s; at 0.6-0.8 MiB m = 32 was as fast or faster).
bool weights_small(std::int64_t bk, std::int64_t cin, std::int64_t taps) {
  constexpr std::int64_t kStreamedWeightBytes = 2 << 20;
  return taps * bk * cin * std::int64_t(sizeof(float)) <= kStreamedWeightBytes;
}

std::int64_t width_block(std::int64_t bq, std::int64_t bk, std::int64_t cin, std::int64_t taps) {
  return weights_small(bk, cin, taps) ? std::min(bq, preferred_m()) : bq;
}

class TapConv {
 public:
  TapConv(std::int64_t n, std::int64_t cin, std::int64_t cout, std::int64_t src_w,
          std::int64_t left, std::int64_t out_w, std::int64_t taps, std::int64_t dilation,
          std::int64_t bq, std::int64_t bk)
      : n_(n), cin_(cin), cout_(cout), src_w_(src_w), left_(left), out_w_(out_w), taps_(taps),
        dil_(dilation), span_((taps - 1) * dilation),
        q_{out_w, std::min(width_block(bq, std::min(bk, cout), cin, taps), out_w)},
        k_{cout, std::min(bk, cout)},
        stationary_(!weights_small(std::min(bk, cout), cin, taps)),
        group_(std::min(stationary_ ? kStationaryGroup : streamed_group(cin, q_.block), q_.count())),
        chunk_(stationary_ ? std::min(kStationaryTaps, taps) : taps),
        slice_(cin > kSliceChannels && cin % kSliceChannels == 0 ? kSliceChannels : cin),
        tap_tiles_(kTileGemm && q_.block == kTileWidth),
        ld_(((group_ * q_.block + (chunk_ - 1) * dilation + 15) / 16 | 1) * 16) {
    for (int mi = 0; mi < 2; ++mi) {
      for (int ni = 0; ni < 2; ++ni) {
        const std::int64_t m = mi == 0 ? q_.block : q_.len(q_.count() - 1);
        const std::int64_t nn = ni == 0 ? k_.block : k_.len(k_.count() - 1);
        if ((mi == 1 && !q_.ragged()) || (ni == 1 && !k_.ragged())) continue;
        for (int beta = 0; beta < (chunk_ < taps || slice_ < cin ? 2 : 1); ++beta) {
          kern_[beta][mi][ni] = Brgemm({m, nn, slice_, ld_, cin, out_w, dilation, cout * cin,
                                        beta == 1, Precision::fp32});
        }
      }
    }
  }

  // Floats of tile scratch run() needs per thread.
  std::int64_t tile_elems() const { return cin_ * ld_; }
  // run()'s tasks per sample, and the output positions each covers (the last one may be shorter).
  std::int64_t groups() const { return (q_.count() + group_ - 1) / group_; }
  std::int64_t group_width() const { return group_ * q_.block; }
  bool stationary() const { return stationary_; }

  // mask: null, or a tensor shaped like `in` whose non-positive entries zero the input (the
  // backward of a ReLU whose output it is). relu: max(0, .) after the bias. out_mask: null, or a
  // tensor shaped like `out` whose non-positive entries zero the output, applied to each output
  // tile while it is in cache.
  void run(const float* in, const float* mask, const float* wt, float* out, const float* bias,
           bool relu, const float* out_mask, float* tiles) const {
    const std::int64_t groups = this->groups();
    // Dynamic for the same reason as BlockedGemm::run, in runs of consecutive groups:
    // neighbouring blocks share a cache line of each output row wherever a row is not a whole
    // number of lines long (out_w = 1000), and handed out one by one they went to different
    // threads at the same time, whose writes then bounced that line between the cores.
    const std::int64_t run = std::max<std::int64_t>(
        1, std::min(groups, n_ * groups / (kRunsPerThread * omp_get_max_threads())));
#pragma omp parallel for collapse(2) schedule(dynamic, run)
    for (std::int64_t s = 0; s < n_; ++s) {
      for (std::int64_t g = 0; g < groups; ++g) {
        run_task(in, mask, wt, out, bias, relu, out_mask, s, g, tiles + omp_get_thread_num() * tile_elems());
      }
    }
  }

  // One task of run(), group g of sample s, on a tile of tile_elems() floats.
  void run_task(const float* in, const float* mask, const float* wt, float* out, const float* bias,
                bool relu, const float* out_mask, std::int64_t s, std::int64_t g, float* tile) const {
    const std::int64_t at = s * cin_ * src_w_;
    task(in + at, mask == nullptr ? nullptr : mask + at, wt, {out, s * cout_ * out_w_, bias, relu, out_mask},
         g, tile);
  }

 private:
  // Where a task writes: sample `at` of `out`, and the epilogue (out_mask, bias, ReLU) applied to
  // each finished output tile while it is in cache.
  struct Outputs {
    float* out;
    std::int64_t at;  // out + at: the sample's first output row
    const float* bias;
    bool relu;
    const float* out_mask;
  };

  // Width blocks per task with the weights streamed: rows of at least kGroupRowFloats, as long as
  // the window stays within kGroupWindowBytes.
  static std::int64_t streamed_group(std::int64_t cin, std::int64_t q_block) {
    const std::int64_t by_row = (kGroupRowFloats + q_block - 1) / q_block;
    const std::int64_t by_window = kGroupWindowBytes / (cin * q_block * std::int64_t(sizeof(float)));
    return std::max<std::int64_t>(1, std::min(by_row, by_window));
  }

  void finish(const Outputs& o, std::int64_t j, std::int64_t q0, std::int64_t len) const {
    for (std::int64_t r = j * k_.block; r < j * k_.block + k_.len(j); ++r) {
      float* row = o.out + o.at + r * out_w_ + q0;
      if (o.out_mask != nullptr) relu_mask_in_place(row, o.out_mask + (row - o.out), len);
      if (o.bias == nullptr && !o.relu) continue;
      const float b = o.bias == nullptr ? 0.0f : o.bias[r];
      for (std::int64_t q = 0; q < len; ++q) {
        row[q] = o.relu ? std::max(row[q] + b, 0.0f) : row[q] + b;
      }
    }
  }

  // Width blocks [g * group_, ...) of one sample. Per channel block, the taps in chunks of
  // chunk_ (all of them when the weights are streamed, the window then packed once for every
  // channel block), each chunk's weights used by every width block of the group while they are
  // in L2. Every output tile is the BRGEMM over all taps and input channels, cut at fixed tap
  // and channel-slice boundaries (beta = 1 from the second call on): the same sequence of
  // operations for any thread count.
  void task(const float* in, const float* mask, const float* wt, const Outputs& o,
            std::int64_t g, float* tile) const {
    const std::int64_t qb = q_.count();
    const std::int64_t i0 = g * group_, i1 = std::min(qb, i0 + group_);
    const std::int64_t q0 = i0 * q_.block, len = q_.len(i1 - 1) + (i1 - 1 - i0) * q_.block;
    const bool whole = chunk_ == taps_;
    if (whole) pack_window(in, mask, q0, len + span_, tile);
    for (std::int64_t j = 0; j < k_.count(); ++j) {
      const std::int64_t k0 = j * k_.block;
      const bool ragged_k = j == k_.count() - 1 && k_.ragged();
      for (std::int64_t t0 = 0; t0 < taps_; t0 += chunk_) {
        const std::int64_t nt = std::min(chunk_, taps_ - t0);
        if (!whole) pack_window(in, mask, q0 + t0 * dil_, len + (nt - 1) * dil_, tile);
        for (std::int64_t i = i0; i < i1; ++i) {
          for (std::int64_t c0 = 0; c0 < cin_; c0 += slice_) {
            const bool ragged_q = i == qb - 1 && q_.ragged();
            float* const c = o.out + o.at + k0 * out_w_ + i * q_.block;
            const float* const a = tile + c0 * ld_ + (i - i0) * q_.block;
            const float* const b = wt + (t0 * cout_ + k0) * cin_ + c0;
            const bool accumulate = t0 > 0 || c0 > 0;
            if (tap_tiles_ && !ragged_q) {
              TileGemmDesc d;
              d.rows = k_.len(j), d.k = slice_, d.batch = nt;
              d.a_row = cin_, d.a_col = 1, d.a_step = cout_ * cin_;
              d.ldb = ld_, d.b_step = dil_, d.ldo = out_w_, d.accumulate = accumulate;
              tile_gemm(d, b, a, c);
            } else {
              kern_[accumulate][ragged_q][ragged_k](a, b, c, nt);
            }
          }
        }
      }
      finish(o, j, q0, len);
    }
  }

  // tile[i][t] = in_pad[i][p0 + t] for t < len, where in_pad[i][p] = in[i][p - left] or 0
  // (also 0 where mask[i][p - left] <= 0).
  void pack_window(const float* in, const float* mask, std::int64_t p0, std::int64_t len,
                   float* tile) const {
    const std::int64_t lo = std::clamp(left_ - p0, std::int64_t{0}, len);
    const std::int64_t hi = std::clamp(left_ + src_w_ - p0, lo, len);
    for (std::int64_t i = 0; i < cin_; ++i) {
      float* row = tile + i * ld_;
      const float* src = in + i * src_w_ + p0 - left_;
      std::fill(row, row + lo, 0.0f);
      if (mask == nullptr) {
        std::copy(src + lo, src + hi, row + lo);
      } else {
        relu_masked_copy(src + lo, mask + i * src_w_ + p0 - left_ + lo, row + lo, hi - lo);
      }
      std::fill(row + hi, row + len, 0.0f);
    }
  }

  // Dynamic runs per thread: enough to even out a thread slowed by other work.
  static constexpr std::int64_t kRunsPerThread = 4;
  // With the weights streamed: a task's rows of at least 256 floats (1 KiB, 4 AVX-512 width
  // blocks), long enough for the prefetchers; a window of at most 128 KiB, which stays in L2 next
  // to a channel block's weights and the next task's window (C = 64 and 128: 4 blocks, C = 256:
  // 2, C >= 512: 1). N = 16, C = K = 64, W = 1000, S = 3, AVX-512: 1, 2, 4, 8 and 16 blocks per
  // task ran at 94, 125, 133, 134 and 120 GFLOP/s (1 thread); C = K = 128, W = 10000, S = 3:
  // 1, 2, 4, 8 blocks at 110, 117, 128, 125; at C = 256 (S = 3 and 9) 1, 2 and 4 within noise.
  static constexpr std::int64_t kGroupRowFloats = 256;
  static constexpr std::int64_t kGroupWindowBytes = 128 << 10;
  // With the weights stationary: width blocks per task and taps per chunk. At C = 256, bk = 64
  // a chunk's weights (512 KiB), the chunk's window (256 rows of 4 x 64 + 7 x dilation floats,
  // 312 KiB at d = 8) and the group's output tiles (64 KiB) stay in a 1 MiB L2 together, each
  // chunk's weights serve 4 width blocks, and the window copy is a few % of the chunk's
  // arithmetic. C = K = 256, S = 51, d = 8 on an Ice Lake Xeon (1.25 MiB L2): chunks of 8 taps
  // ran 2-5% faster than 4 (1 and 2 threads), groups of 8 blocks or chunks of 2 taps no faster.
  static constexpr std::int64_t kStationaryGroup = 4;
  static constexpr std::int64_t kStationaryTaps = 8;
  // LIBXSMM streams a call's A operand (the window's rows for every tap) once per register tile
  // of the output, so it must stay in L1: at k = 256 input channels a tap's 64-position rows are
  // 64 KiB, more than L1 holds, and every pass over them came from L2. Each call therefore
  // reduces over a slice of 64 channels (16 KiB of rows per tap, the taps' rows overlapping),
  // the slices of one output tile back to back while it stays in L1.
  static constexpr std::int64_t kSliceChannels = 64;
  std::int64_t n_, cin_, cout_, src_w_, left_, out_w_, taps_, dil_, span_;
  Split q_, k_;
  bool stationary_;
  std::int64_t group_;  // width blocks per task
  std::int64_t chunk_;  // taps per BRGEMM call
  // Input channels per BRGEMM call (its k): kSliceChannels when they divide more channels, else
  // all of them.
  std::int64_t slice_;
  // Full width blocks go through tile_gemm() instead of LIBXSMM (AVX-512 builds, 64-position
  // blocks); the ragged last block keeps its JIT kernel. LIBXSMM 1.17's kernel for this shape
  // (m = n = k = 64, 3 taps) ran at ~140 GFLOP/s on cached operands on an Ice Lake Xeon (~78% of
  // its peak; 132-141 with m = 32 or 48, n = 32, 6 or 9 taps, a contiguous output or aligned
  // taps), the register tile at ~152, with bitwise the same results.
  bool tap_tiles_;
  // Tile row length: a group's width plus the receptive field, in an odd number of cache lines.
  // A power-of-two row length (e.g. 64 + 24 * 8 = 256 floats) maps every row to the same few
  // L1 sets: C = 128, S = 25, d = 8 ran at 65 instead of 89 GFLOP/s.
  std::int64_t ld_;
  // [accumulate (beta = 1: a later chunk of taps or slice of channels)][ragged width block]
  // [ragged channel block]
  Brgemm kern_[2][2][2];
};

// dst[t][i] = src_pad[i][p0 + t] for t < len and every channel i < c, where src_pad[i][p] =
// src[i][p - left] inside the input (width w) and 0 outside: a channels-last copy of a window of
// one sample's padded input. 8 x 8 sub-tiles that lie inside the input go through registers,
// the rest (zero padding, ragged edges) through the scalar loop.
void window_channels_last(const float* src, std::int64_t c, std::int64_t w, std::int64_t left,
                          std::int64_t p0, std::int64_t len, float* dst) {
  for (std::int64_t i0 = 0; i0 < c; i0 += 8) {
    for (std::int64_t t0 = 0; t0 < len; t0 += 8) {
      const std::int64_t at = p0 + t0 - left;  // input position of dst row t0
      float* out = dst + t0 * c + i0;
      const float* in = src + i0 * w + at;
      if (i0 + 8 <= c && t0 + 8 <= len && at >= 0 && at + 8 <= w) {
        transpose8x8(in, w, out, c);
        continue;
      }
      for (std::int64_t i = 0; i < std::min<std::int64_t>(8, c - i0); ++i) {
        for (std::int64_t t = 0; t < std::min<std::int64_t>(8, len - t0); ++t) {
          out[t * c + i] = (at + t >= 0 && at + t < w) ? in[i * w + t] : 0.0f;
        }
      }
    }
  }
}

// The whole padded input channels-last, dst[n][p][i] = x_pad[n][i][p], in windows of 64
// positions per task.
void channels_last_padded(const float* src, std::int64_t n, std::int64_t c, std::int64_t w,
                          std::int64_t left, std::int64_t padded_w, float* dst) {
  constexpr std::int64_t kTile = 64;
  const std::int64_t ptiles = (padded_w + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t s = 0; s < n; ++s) {
    for (std::int64_t pt = 0; pt < ptiles; ++pt) {
      const std::int64_t p0 = pt * kTile;
      window_channels_last(src + s * c * w, c, w, left, p0, std::min(kTile, padded_w - p0),
                           dst + (s * padded_w + p0) * c);
    }
  }
}

// Weight and bias gradients: dw[s][o][i] = sum_n sum_q g[n][o][q] * x_pad[n][i][q + s*dilation]
// and db[o] = sum_n sum_q g[n][o][q], where g is dy (zeroed where the fused ReLU's output y is
// not positive). The reduction runs over a fixed sequence of (sample, width chunk) pairs: for
// each chunk of g (read in place, or packed into a per-thread tile when the mask applies), one
// GEMM per (tap, channel block, m slice) with the chunk as k accumulates into the dw tile. LIBXSMM streams a call's A operand
// (the input chunk, channels-last) once per register tile of dw, so it must stay cached: one
// chunk per call, in column slices of preferred_m() channels when c is a larger multiple of it.
// A chunk's length is chunk_positions().
//
// Parallel work and determinism. The chunk sequence is cut into `parts_` contiguous ranges, a
// number fixed by the shape alone; each part accumulates its own copy of dw and db (part 0
// directly into dw, db), and the copies are summed in part order at the end. Every dw element
// is thus one fixed sequence of calls and additions for any thread count.
//  * Small dw (up to 256 KiB, L2-resident with the task's tiles): a task is one part and does
//    every tap and channel block, on a channels-last copy of its chunk's input window (chunk +
//    receptive field) made in the task: the input is transposed once, in cache, instead of in a
//    separate pass that writes the whole copy to memory and reads it back, and up to 8 parts give
//    2 threads 4 equal tasks each (one task per tap gave 3 tasks to 2 threads at C = K = 64,
//    S = 3; at S = 9, 9 one-tap tasks left a thread idle for a ninth of the pass and masked dy
//    once per tap).
//  * Larger dw: the whole padded input is first copied channels-last (a pass that is small next
//    to taps x k FLOPs per element), and a task is one (part, group of taps, group of channel
//    blocks) whose dw tiles stay in L2 (see grouping()). The reduction is split into 2 parts
//    (when the second dw copy is small next to the input copy), more when taps x channel blocks
//    give fewer than 8 tasks, and tasks go out statically in part order, as the input copy does:
//    with 2 threads each reads back only the samples it copied itself: a core reads lines
//    another one wrote at several times the latency of its own, and with one part both threads
//    would read all of the copy.
class TapGrad {
 public:
  TapGrad(std::int64_t n, std::int64_t cin, std::int64_t cout, std::int64_t src_w,
          std::int64_t left, std::int64_t out_w, std::int64_t taps, std::int64_t dilation,
          std::int64_t bk, bool masked)
      : n_(n), cin_(cin), cout_(cout), src_w_(src_w), left_(left), out_w_(out_w), taps_(taps),
        dil_(dilation), span_((taps - 1) * dilation), masked_(masked),
        sub_m_(cin > preferred_m() && cin % preferred_m() == 0 ? preferred_m() : cin),
        q_{out_w, std::min(chunk_positions(sub_m_, cin), out_w)},
        k_{cout, std::min(bk, cout)}, ldb_(masked ? ((q_.block + 15) / 16 | 1) * 16 : out_w),
        fused_(taps * cout * cin * std::int64_t(sizeof(float)) <= kFusedBytes) {
    const std::int64_t chunks = n_ * q_.count();
    const std::int64_t units = fused_ ? 1 : taps_ * k_.count();
    // Over taps and channel blocks, 2 parts at least when that second copy of dw costs at most a
    // quarter of the channels-last input copy the pass holds anyway (see run()).
    const bool split = !fused_ && chunks >= 2 && 4 * dw_elems() <= n_ * cin_ * src_w_;
    parts_ = split ? 2 : 1;
    while (parts_ * 2 <= std::min<std::int64_t>(chunks, kMaxParts) && parts_ * 2 * units <= kMaxParts) {
      parts_ *= 2;
    }
    for (int ni = 0; ni < 2; ++ni) {
      for (int ki = 0; ki < 2; ++ki) {
        for (int beta = 0; beta < 2; ++beta) {
          const std::int64_t nn = ni == 0 ? k_.block : k_.len(k_.count() - 1);
          const std::int64_t kk = ki == 0 ? q_.block : q_.len(q_.count() - 1);
          if ((ni == 1 && !k_.ragged()) || (ki == 1 && !q_.ragged())) continue;
          kern_[0][ni][ki][beta] = Brgemm({sub_m_, nn, kk, cin, ldb_, cin, 0, 0, beta == 1,
                                           Precision::fp32});  // batch of one
          if (masks_in_place()) {
            kern_[1][ni][ki][beta] = Brgemm({sub_m_, nn, kk, cin, out_w, cin, 0, 0, beta == 1,
                                             Precision::fp32});
          }
        }
      }
    }
  }

  // Floats of scratch run() needs with `threads` threads.
  std::int64_t scratch_elems(std::int64_t threads) const {
    const std::int64_t a_tile = fused_ ? (q_.block + span_) * cin_ : 0;
    const std::int64_t copy = fused_ ? 0 : n_ * (out_w_ + span_) * cin_;
    return threads * (a_tile + b_tile()) + (parts_ - 1) * (dw_elems() + cout_) + copy;
  }

  // Whether run() can mask dy in place: each chunk of dy belongs to one task (the fused
  // decomposition), where over taps several tasks read the same chunk.
  bool masks_in_place() const { return masked_ && fused_; }

  // Whether a task walks whole chunks of one sample (the fused decomposition), so that run() can
  // call after_chunk; the chunks per sample and their width (the last one may be shorter).
  bool chunk_tasks() const { return fused_; }
  std::int64_t chunks_per_sample() const { return q_.count(); }
  std::int64_t chunk_width() const { return q_.block; }

  // Called by run() in the task that has just finished chunk i of sample s (chunk_tasks() only),
  // while that chunk's x and dy are in its core's caches.
  using ChunkHook = std::function<void(std::int64_t s, std::int64_t i)>;

  // mask: y, or null when dy needs no mask (no fused ReLU, or dy already masked). With
  // `in_place` (dy writable, masks_in_place()), each chunk of dy is masked where it lies and
  // read from there, so dy leaves the pass masked.
  void run(const float* x, const float* dy, const float* mask, float* dw, float* db,
           float* scratch, float* in_place = nullptr, const ChunkHook* after_chunk = nullptr) const {
    const std::int64_t threads = omp_get_max_threads();
    const std::int64_t a_tile = fused_ ? (q_.block + span_) * cin_ : 0;
    float* tiles = scratch;
    float* partials = tiles + threads * (a_tile + b_tile());
    float* db_partials = partials + (parts_ - 1) * dw_elems();
    auto part_dw = [&](std::int64_t r) { return r == 0 ? dw : partials + (r - 1) * dw_elems(); };
    auto part_db = [&](std::int64_t r) {
      return db == nullptr ? nullptr : r == 0 ? db : db_partials + (r - 1) * cout_;
    };
    const std::int64_t qb = q_.count(), chunks = n_ * qb, kb = k_.count();
    auto chunk_begin = [&](std::int64_t r) { return chunks * r / parts_; };
    if (fused_) {
      // dy read where it lies, through the kernels for rows out_w_ apart: masked there first, or
      // already masked (a fused ReLU whose mask the caller applied).
      const bool direct = in_place != nullptr || (masked_ && mask == nullptr);
#pragma omp parallel for schedule(dynamic)
      for (std::int64_t r = 0; r < parts_; ++r) {
        float* a = tiles + omp_get_thread_num() * (a_tile + b_tile());
        float* gtile = a + a_tile;
        for (std::int64_t t = chunk_begin(r); t < chunk_begin(r + 1); ++t) {
          const std::int64_t s = t / qb, i = t % qb, q0 = i * q_.block;
          window_channels_last(x + s * cin_ * src_w_, cin_, src_w_, left_, q0, q_.len(i) + span_, a);
          const float* b = direct ? chunk_in_place(dy, mask, in_place, s, i, part_db(r), t == chunk_begin(r))
                                  : grad_chunk(dy, mask, s, i, 0, cout_, gtile, part_db(r), t == chunk_begin(r));
          for (std::int64_t tap = 0; tap < taps_; ++tap) {
            gemms(a + tap * dil_ * cin_, b, part_dw(r) + tap * cout_ * cin_, i, 0, kb,
                  t == chunk_begin(r), direct);
          }
          if (after_chunk != nullptr) (*after_chunk)(s, i);
        }
      }
    } else {
      float* xt = partials + (parts_ - 1) * (dw_elems() + cout_);
      const std::int64_t in_w = out_w_ + span_;
      channels_last_padded(x, n_, cin_, src_w_, left_, in_w, xt);
      const Grouping gr = grouping(threads);
      const std::int64_t tap_groups = taps_ / gr.taps, groups = kb / gr.blocks;
      // Static, in part order: matches channels_last_padded's split of the samples.
#pragma omp parallel for collapse(3) schedule(static)
      for (std::int64_t r = 0; r < parts_; ++r) {
        for (std::int64_t tg = 0; tg < tap_groups; ++tg) {
          for (std::int64_t g = 0; g < groups; ++g) {
            const std::int64_t j0 = g * gr.blocks, j1 = j0 + gr.blocks;
            const std::int64_t o0 = j0 * k_.block, o1 = std::min(cout_, j1 * k_.block);
            const std::int64_t s0 = tg * gr.taps;
            float* gtile = tiles + omp_get_thread_num() * b_tile();
            for (std::int64_t t = chunk_begin(r); t < chunk_begin(r + 1); ++t) {
              const std::int64_t s = t / qb, i = t % qb, q0 = i * q_.block;
              const bool first = t == chunk_begin(r);
              const float* b = grad_chunk(dy, mask, s, i, o0, o1, gtile, s0 == 0 ? part_db(r) : nullptr, first);
              for (std::int64_t tap = s0; tap < s0 + gr.taps; ++tap) {
                gemms(xt + (s * in_w + q0 + tap * dil_) * cin_, b, part_dw(r) + tap * cout_ * cin_, i,
                      j0, j1, first);
              }
            }
          }
        }
      }
    }
    if (parts_ > 1) {
      sum_parts(dw, partials, dw_elems());
      if (db != nullptr) sum_parts(db, db_partials, cout_);
    }
  }

 private:
  static constexpr std::int64_t kFusedBytes = 256 << 10;
  static constexpr std::int64_t kMaxParts = 8;

  // Positions per chunk (the calls' k). Each call loads and stores its dw tile once, a traffic
  // that short chunks pay per few FLOPs: with AVX-512's 64-channel slices (C = 128 and 256, Intel
  // Xeon, Ice Lake) 256 positions ran 7-27% faster than 64 (16 KiB slices, L1-resident), though
  // the slice (64 KiB) then comes from L2. AVX2's 32-channel slices keep 16 KiB (128 positions):
  // on a Zen 3 (32 KiB L1d) they measured 10-20% faster than 256 at C = 256.
  static std::int64_t chunk_positions(std::int64_t sub_m, std::int64_t cin) {
    constexpr std::int64_t kChunk = 256, kNarrowSliceBytes = 16 << 10;
    return sub_m < cin && sub_m < 64 ? kNarrowSliceBytes / (sub_m * std::int64_t(sizeof(float))) : kChunk;
  }

  std::int64_t dw_elems() const { return taps_ * cout_ * cin_; }

  // Taps and channel blocks per task in the decomposition over taps (each dividing its total).
  // A task packs (or fetches) each chunk of g once for all its taps and reads each input chunk
  // once for all its blocks, so the most work per task wins among the groupings whose dw tiles
  // (taps x blocks x 64 x c floats) stay in L2 and whose tasks divide evenly among the threads
  // or are >= 8 per thread (9 one-tap tasks on 2 threads leave one idle for a ninth of the pass).
  struct Grouping {
    std::int64_t taps = 1, blocks = 1;
  };
  Grouping grouping(std::int64_t threads) const {
    constexpr std::int64_t kTileBytes = 384 << 10;
    const std::int64_t kb = k_.count();
    Grouping best;  // one tap and one block per task when nothing else balances
    std::int64_t best_work = 0;
    for (std::int64_t blocks = 1; blocks <= kb; ++blocks) {
      for (std::int64_t taps = 1; taps <= taps_; ++taps) {
        if (kb % blocks != 0 || taps_ % taps != 0) continue;
        const std::int64_t tasks = parts_ * (taps_ / taps) * (kb / blocks);
        const bool fits = taps * blocks * k_.block * cin_ * std::int64_t(sizeof(float)) <= kTileBytes;
        const bool balanced = tasks % threads == 0 || tasks >= 8 * threads;
        if (fits && balanced && taps * blocks > best_work) {
          best = {taps, blocks};
          best_work = taps * blocks;
        }
      }
    }
    return best;
  }

  std::int64_t b_tile() const { return masked_ ? cout_ * ldb_ : 0; }

  // The chunk i of g[s] for output channels o0 <= o < o1, as b with row o at b + o * ldb_: dy
  // itself, or copied into `tile` (masked unless mask is null). When db is given,
  // db[o] = (first ? 0 : db[o]) + the chunk's sum of row o.
  const float* grad_chunk(const float* dy, const float* mask, std::int64_t s, std::int64_t i,
                          std::int64_t o0, std::int64_t o1, float* tile, float* db,
                          bool first) const {
    const std::int64_t q0 = i * q_.block, len = q_.len(i);
    const float* b = masked_ ? tile : dy + s * cout_ * out_w_ + q0;
    for (std::int64_t o = o0; o < o1; ++o) {
      if (masked_) {
        const std::int64_t at = (s * cout_ + o) * out_w_ + q0;
        if (mask == nullptr) {
          std::copy(dy + at, dy + at + len, tile + o * ldb_);
        } else {
          relu_masked_copy(dy + at, mask + at, tile + o * ldb_, len);
        }
      }
      if (db != nullptr) db[o] = (first ? 0.0f : db[o]) + row_sum(b + o * ldb_, len);
    }
    return b;
  }

  // grad_chunk for every channel, reading the chunk of dy where it lies (b is dy's chunk, rows
  // out_w_ apart), masked there first when `in_place` (dy, writable) is given.
  const float* chunk_in_place(const float* dy, const float* mask, float* in_place, std::int64_t s,
                              std::int64_t i, float* db, bool first) const {
    const std::int64_t len = q_.len(i), at = s * cout_ * out_w_ + i * q_.block;
    for (std::int64_t o = 0; o < cout_; ++o) {
      const std::int64_t row = at + o * out_w_;
      if (in_place != nullptr) relu_mask_in_place(in_place + row, mask + row, len);
      if (db != nullptr) db[o] = (first ? 0.0f : db[o]) + row_sum(dy + row, len);
    }
    return dy + at;
  }

  // dw_tap[o][i] (+)= sum_q b[o][q] * a[q][i] for the channel blocks j0 <= j < j1 of chunk i;
  // b's rows are ldb_ apart, or out_w_ (in_place: dy itself, with a fused ReLU).
  void gemms(const float* a, const float* b, float* dw_tap, std::int64_t chunk, std::int64_t j0,
             std::int64_t j1, bool first, bool in_place = false) const {
    const bool ragged_q = chunk == q_.count() - 1 && q_.ragged();
    for (std::int64_t m0 = 0; m0 < cin_; m0 += sub_m_) {
      for (std::int64_t j = j0; j < j1; ++j) {
        const std::int64_t k0 = j * k_.block;
        const Brgemm& kern =
            kern_[in_place][j == k_.count() - 1 && k_.ragged()][ragged_q][first ? 0 : 1];
        kern(a + m0, b + k0 * (in_place ? out_w_ : ldb_), dw_tap + k0 * cin_ + m0, 1);
      }
    }
  }

  // dst[e] = dst[e] + parts[0][e] + parts[1][e] + ..., in part order.
  void sum_parts(float* dst, const float* parts, std::int64_t elems) const {
#pragma omp parallel for schedule(static)
    for (std::int64_t e = 0; e < elems; ++e) {
      float sum = dst[e];
      for (std::int64_t r = 1; r < parts_; ++r) sum += parts[(r - 1) * elems + e];
      dst[e] = sum;
    }
  }

  std::int64_t n_, cin_, cout_, src_w_, left_, out_w_, taps_, dil_, span_;
  bool masked_;  // a fused ReLU's mask applies: g is packed into a tile, else read in place
  std::int64_t sub_m_;
  Split q_, k_;
  std::int64_t ldb_;  // row length of g: the packed tile's, or dy's
  bool fused_;
  std::int64_t parts_;
  // [b: ldb_, dy in place][ragged channel block][ragged chunk][accumulate]
  Brgemm kern_[2][2][2][2];
};

}  // namespace

void weights_from_kcs(std::span<const float> kcs, std::int64_t k, std::int64_t c,
                      std::int64_t taps, std::span<float> tkc) {
  require(k > 0 && c > 0 && taps > 0, "weights_from_kcs: sizes must be positive");
  check_size(kcs, k * c * taps, "weights_from_kcs input");
  check_size(tkc, k * c * taps, "weights_from_kcs output");
  for (std::int64_t o = 0; o < k; ++o) {
    for (std::int64_t i = 0; i < c; ++i) {
      for (std::int64_t s = 0; s < taps; ++s) tkc[(s * k + o) * c + i] = kcs[(o * c + i) * taps + s];
    }
  }
}

// Uninitialised scratch floats from an allocator, kept until released. Every pass writes its
// scratch before reading it, so AlignedBuffer's zero fill would be one more pass over memory per
// call when the allocator is a step's arena (the backward-weights channels-last copy is as large
// as the input).
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch(Scratch&& o) noexcept
      : allocator_(o.allocator_), data_(std::exchange(o.data_, nullptr)), elems_(std::exchange(o.elems_, 0)) {}
  ~Scratch() { release(); }

  float* at_least(std::int64_t elems, Allocator& allocator) {
    if (data_ != nullptr && elems_ >= elems) return data_;
    release();
    data_ = static_cast<float*>(allocator.allocate(aligned_bytes(std::size_t(elems), sizeof(float))));
    allocator_ = &allocator;
    elems_ = elems;
    return data_;
  }
  void release() {
    if (data_ != nullptr) allocator_->deallocate(data_, aligned_bytes(std::size_t(elems_), sizeof(float)));
    data_ = nullptr;
    elems_ = 0;
  }

 private:
  Allocator* allocator_ = nullptr;
  float* data_ = nullptr;
  std::int64_t elems_ = 0;
};

struct Conv1d::Plans {
  TapConv fwd, bwd_data;
  TapGrad bwd_weights;
  Scratch tiles, w_flip, grad;  // allocated on first use, regrown when a pass needs more
  Allocator* scratch_allocator = nullptr;

  // Whether backward() can run backward-data inside backward-weights' tasks: each of their chunks
  // of a sample is one of backward-data's groups (as many per sample, as wide, or both the whole
  // sample), so the data task for the same positions follows the chunk's GEMMs while that chunk's
  // dy and x (the rows of backward-data's window and of its dx mask) are still in the core's L2.
  bool passes_together() const {
    const std::int64_t chunks = bwd_weights.chunks_per_sample();
    return bwd_weights.chunk_tasks() && !bwd_data.stationary() && bwd_data.groups() == chunks &&
           (chunks == 1 || bwd_data.group_width() == bwd_weights.chunk_width());
  }

  float* at_least(Scratch& buffer, std::int64_t elems) {
    return buffer.at_least(elems, scratch_allocator != nullptr ? *scratch_allocator : heap_allocator());
  }
  void release_scratch() {
    tiles.release();
    w_flip.release();
    grad.release();
  }
  void end_pass() {
    if (scratch_allocator != nullptr) release_scratch();
  }
};

Conv1d::Conv1d(const Conv1dDesc& d) : d_(d) {
  require(d.n > 0 && d.c > 0 && d.k > 0 && d.width > 0,
          "Conv1d: n, c, k, width must be positive");
  require(d.taps > 0 && d.dilation > 0, "Conv1d: taps and dilation must be positive");
  require(d.bq > 0 && d.bk > 0, "Conv1d: block sizes must be positive");
  require(d.out_width() > 0, "Conv1d: 'valid' convolution of width " + std::to_string(d.width) +
                                 " with receptive field " + std::to_string(d.span() + 1) +
                                 " has no output");
  p_ = std::make_unique<Plans>(Plans{
      TapConv(d.n, d.c, d.k, d.width, d.pad_left(), d.out_width(), d.taps, d.dilation, d.bq,
              d.bk),
      // dx[i][p] = sum_s sum_o w[s][o][i] * dy[o][p + pad_left - s*dilation]: a valid
      // correlation of dy (left-padded by span - pad_left) with taps reversed.
      TapConv(d.n, d.k, d.c, d.out_width(), d.span() - d.pad_left(), d.width, d.taps, d.dilation,
              d.bq, d.bk),
      TapGrad(d.n, d.c, d.k, d.width, d.pad_left(), d.out_width(), d.taps, d.dilation, d.bk,
              d.activation == Activation::relu),
      {}, {}, {}, nullptr});
}

void Conv1d::set_scratch_allocator(Allocator* allocator) {
  p_->scratch_allocator = allocator;
  p_->release_scratch();  // scratch cached from another allocator would go uncounted
}

Conv1d::~Conv1d() = default;
Conv1d::Conv1d(Conv1d&&) noexcept = default;
Conv1d& Conv1d::operator=(Conv1d&&) noexcept = default;

const float* Conv1d::relu_mask(std::span<const float> y, const char* pass) const {
  if (d_.activation == Activation::none) {
    require(y.empty(), std::string("Conv1d::") + pass + ": y is only taken with a fused ReLU");
    return nullptr;
  }
  check_size(y, d_.n * d_.k * d_.out_width(), "y (the fused ReLU's output)");
  return y.data();
}

void Conv1d::forward(std::span<const float> x, std::span<const float> w,
                     std::span<const float> bias, std::span<float> y) {
  check_size(x, d_.n * d_.c * d_.width, "x");
  check_size(w, d_.taps * d_.k * d_.c, "w");
  check_size(y, d_.n * d_.k * d_.out_width(), "y");
  check_size(bias, d_.bias ? d_.k : 0, "bias");
  p_->fwd.run(x.data(), nullptr, w.data(), y.data(), d_.bias ? bias.data() : nullptr,
              d_.activation == Activation::relu, nullptr,
              p_->at_least(p_->tiles, omp_get_max_threads() * p_->fwd.tile_elems()));
  p_->end_pass();
}

void Conv1d::check_data_sizes(std::span<const float> dy, std::span<const float> w,
                              std::span<float> dx) const {
  check_size(dy, d_.n * d_.k * d_.out_width(), "dy");
  check_size(w, d_.taps * d_.k * d_.c, "w");
  check_size(dx, d_.n * d_.c * d_.width, "dx");
}

void Conv1d::check_weights_sizes(std::span<const float> x, std::span<const float> dy,
                                 std::span<float> dw, std::span<float> dbias) const {
  check_size(x, d_.n * d_.c * d_.width, "x");
  check_size(dy, d_.n * d_.k * d_.out_width(), "dy");
  check_size(dw, d_.taps * d_.k * d_.c, "dw");
  check_size(dbias, d_.bias ? d_.k : 0, "dbias");
}

void Conv1d::backward_data(std::span<const float> dy, std::span<const float> w,
                           std::span<float> dx, std::span<const float> y) {
  check_data_sizes(dy, w, dx);
  data_pass(dy.data(), w, dx, relu_mask(y, "backward_data"));
}

void Conv1d::data_pass(const float* dy, std::span<const float> w, std::span<float> dx,
                       const float* mask, const float* dx_mask) {
  p_->bwd_data.run(dy, mask, flipped_weights(w), dx.data(), nullptr, false, dx_mask,
                   p_->at_least(p_->tiles, omp_get_max_threads() * p_->bwd_data.tile_elems()));
  p_->end_pass();
}

const float* Conv1d::flipped_weights(std::span<const float> w) {
  float* wf = p_->at_least(p_->w_flip, d_.taps * d_.c * d_.k);
  // Per tap, w_s transposed (k x c -> c x k), taps reversed; 8 x 8 tiles through registers.
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t s = 0; s < d_.taps; ++s) {
    for (std::int64_t i0 = 0; i0 < d_.c; i0 += 8) {
      const float* src = w.data() + s * d_.k * d_.c;
      float* dst = wf + (d_.taps - 1 - s) * d_.c * d_.k;
      for (std::int64_t o0 = 0; o0 < d_.k; o0 += 8) {
        if (i0 + 8 <= d_.c && o0 + 8 <= d_.k) {
          transpose8x8(src + o0 * d_.c + i0, d_.c, dst + i0 * d_.k + o0, d_.k);
          continue;
        }
        for (std::int64_t i = i0; i < std::min(d_.c, i0 + 8); ++i) {
          for (std::int64_t o = o0; o < std::min(d_.k, o0 + 8); ++o) dst[i * d_.k + o] = src[o * d_.c + i];
        }
      }
    }
  }
  return wf;
}

void Conv1d::backward_weights(std::span<const float> x, std::span<const float> dy,
                              std::span<float> dw, std::span<float> dbias,
                              std::span<const float> y) {
  check_weights_sizes(x, dy, dw, dbias);
  weights_pass(x.data(), dy.data(), relu_mask(y, "backward_weights"), dw, dbias, nullptr);
}

void Conv1d::weights_pass(const float* x, const float* dy, const float* mask, std::span<float> dw,
                          std::span<float> dbias, float* in_place,
                          const std::function<void(std::int64_t, std::int64_t)>* after_chunk) {
  p_->bwd_weights.run(x, dy, mask, dw.data(), d_.bias ? dbias.data() : nullptr,
                      p_->at_least(p_->grad, p_->bwd_weights.scratch_elems(omp_get_max_threads())),
                      in_place, after_chunk);
  p_->end_pass();
}

void Conv1d::backward(std::span<const float> x, std::span<const float> y, std::span<float> dy,
                      std::span<const float> w, std::span<float> dx, std::span<float> dw,
                      std::span<float> dbias, ReluLinks links) {
  // Every size is checked before either pass writes anything.
  if (links.dy_masked) {
    require(d_.activation == Activation::relu, "Conv1d::backward: dy_masked needs a fused ReLU");
    require(y.empty(), "Conv1d::backward: y is not read when dy arrives masked (dy_masked)");
  }
  const float* mask = links.dy_masked ? nullptr : relu_mask(y, "backward");
  if (!dx.empty()) check_data_sizes(dy, w, dx);
  check_weights_sizes(x, dy, dw, dbias);
  const float* dx_mask = links.mask_dx ? x.data() : nullptr;
  if (!dx.empty() && p_->passes_together()) {
    both_passes(x.data(), dy.data(), mask, w, dx, dw, dbias, dx_mask);
    return;
  }
  if (mask != nullptr && p_->bwd_weights.masks_in_place()) {
    // Backward-weights first: it leaves dy masked, so backward-data packs it without the mask.
    weights_pass(x.data(), dy.data(), mask, dw, dbias, dy.data());
    if (!dx.empty()) data_pass(dy.data(), w, dx, nullptr, dx_mask);
    return;
  }
  if (!dx.empty()) data_pass(dy.data(), w, dx, mask, dx_mask);
  weights_pass(x.data(), dy.data(), mask, dw, dbias, nullptr);
}

void Conv1d::both_passes(const float* x, const float* dy, const float* mask, std::span<const float> w,
                         std::span<float> dx, std::span<float> dw, std::span<float> dbias,
                         const float* dx_mask) {
  const float* wf = flipped_weights(w);
  const TapConv& data = p_->bwd_data;
  float* tiles = p_->at_least(p_->tiles, omp_get_max_threads() * data.tile_elems());
  const TapGrad::ChunkHook data_group = [&](std::int64_t s, std::int64_t i) {
    data.run_task(dy, mask, wf, dx.data(), nullptr, false, dx_mask, s, i,
                  tiles + omp_get_thread_num() * data.tile_elems());
  };
  // dy is read, never masked in place: a data task's window reaches into the neighbouring
  // chunks, which other tasks may be masking at the same time.
  weights_pass(x, dy, mask, dw, dbias, nullptr, &data_group);
}

LayerCost Conv1d::cost() const {
  const double macs = double(d_.n) * double(d_.k) * double(d_.c) * double(d_.taps);
  LayerCost c;
  const double out = double(d_.n * d_.k * d_.out_width());
  const double relu = d_.activation == Activation::relu ? out : 0.0;
  c.fwd_flops = 2.0 * macs * double(d_.out_width()) + (d_.bias ? out : 0.0) + relu;
  c.bwd_data_flops = 2.0 * macs * double(d_.width) + relu;
  c.bwd_weights_flops = 2.0 * macs * double(d_.out_width()) + (d_.bias ? out : 0.0);
  c.saved_bytes = (d_.n * d_.c * d_.width + (relu > 0.0 ? d_.n * d_.k * d_.out_width() : 0)) *
                  std::int64_t(sizeof(float));
  return c;
}

}  // namespace rematch::kernels
