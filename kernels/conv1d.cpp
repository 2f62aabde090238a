#include "kernels/conv1d.hpp"

#include <omp.h>

#include <algorithm>
#include <string>

#include "kernels/brgemm.hpp"
#include "kernels/eltwise.hpp"
#include "kernels/error.hpp"

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

// out[n][o][q] = sum_s sum_i wt[s][o][i] * in_pad[n][i][q + s*dilation], a valid correlation
// of the input zero-padded by `left` columns on the left (and up to out_w + span on the right):
// one BRGEMM over the taps per (sample, width block, channel block).
//
// Each task (sample, width block) first copies its input window, c rows of q block + span
// floats with the zero padding filled in, into a per-thread tile, then runs every channel
// block on it. Read in place, the window's rows lie a whole input row apart (a page each for
// long inputs) and LIBXSMM re-reads them once per register tile of the output; packed they
// are contiguous and L2-resident: at C = 256, S = 3 this measured ~30% faster (AVX2), and it
// makes a padded copy of the whole input unnecessary.
//
// The width block is preferred_m() (on AVX2 at C = 256: S = 3 88 GFLOP/s packed vs 67 at
// m = 64; S = 9 82 vs 63), except when a channel block's weights (taps x bk x c floats) are
// megabytes: every task streams all of them, so there the desc's wider bq halves that traffic
// (C = 256, S = 51, 3.3 MiB: 46 vs 38 GFLOP/s; at 0.6-0.8 MiB m = 32 was as fast or faster).
std::int64_t width_block(std::int64_t bq, std::int64_t bk, std::int64_t cin, std::int64_t taps) {
  constexpr std::int64_t kStreamedWeightBytes = 2 << 20;
  const bool weights_small = taps * bk * cin * std::int64_t(sizeof(float)) <= kStreamedWeightBytes;
  return weights_small ? std::min(bq, preferred_m()) : bq;
}

class TapConv {
 public:
  TapConv(std::int64_t n, std::int64_t cin, std::int64_t cout, std::int64_t src_w,
          std::int64_t left, std::int64_t out_w, std::int64_t taps, std::int64_t dilation,
          std::int64_t bq, std::int64_t bk)
      : n_(n), cin_(cin), cout_(cout), src_w_(src_w), left_(left), out_w_(out_w), taps_(taps),
        span_((taps - 1) * dilation),
        q_{out_w, std::min(width_block(bq, std::min(bk, cout), cin, taps), out_w)},
        k_{cout, std::min(bk, cout)}, ld_(((q_.block + span_ + 15) / 16 | 1) * 16) {
    for (int mi = 0; mi < 2; ++mi) {
      for (int ni = 0; ni < 2; ++ni) {
        const std::int64_t m = mi == 0 ? q_.block : q_.len(q_.count() - 1);
        const std::int64_t nn = ni == 0 ? k_.block : k_.len(k_.count() - 1);
        if ((mi == 1 && !q_.ragged()) || (ni == 1 && !k_.ragged())) continue;
        kern_[mi][ni] = Brgemm({m, nn, cin, ld_, cin, out_w, dilation, cout * cin, false,
                                Precision::fp32});
      }
    }
  }

  // Floats of tile scratch run() needs per thread.
  std::int64_t tile_elems() const { return cin_ * ld_; }

  void run(const float* in, const float* wt, float* out, const float* bias, float* tiles) const {
    const std::int64_t qb = q_.count(), kb = k_.count();
    // Dynamic for the same reason as BlockedGemm::run.
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (std::int64_t s = 0; s < n_; ++s) {
      for (std::int64_t i = 0; i < qb; ++i) {
        const std::int64_t q0 = i * q_.block;
        float* tile = tiles + omp_get_thread_num() * tile_elems();
        pack_window(in + s * cin_ * src_w_, q0, q_.len(i) + span_, tile);
        for (std::int64_t j = 0; j < kb; ++j) {
          const std::int64_t k0 = j * k_.block;
          const Brgemm& kern = kern_[i == qb - 1 && q_.ragged()][j == kb - 1 && k_.ragged()];
          float* c = out + (s * cout_ + k0) * out_w_ + q0;
          kern(tile, wt + k0 * cin_, c, taps_);
          if (bias == nullptr) continue;
          for (std::int64_t o = 0; o < k_.len(j); ++o) {
            for (std::int64_t q = 0; q < q_.len(i); ++q) c[o * out_w_ + q] += bias[k0 + o];
          }
        }
      }
    }
  }

 private:
  // tile[i][t] = in_pad[i][p0 + t] for t < len, where in_pad[i][p] = in[i][p - left] or 0.
  void pack_window(const float* in, std::int64_t p0, std::int64_t len, float* tile) const {
    const std::int64_t lo = std::clamp(left_ - p0, std::int64_t{0}, len);
    const std::int64_t hi = std::clamp(left_ + src_w_ - p0, lo, len);
    for (std::int64_t i = 0; i < cin_; ++i) {
      float* row = tile + i * ld_;
      const float* src = in + i * src_w_ + p0 - left_;
      std::fill(row, row + lo, 0.0f);
      std::copy(src + lo, src + hi, row + lo);
      std::fill(row + hi, row + len, 0.0f);
    }
  }

  std::int64_t n_, cin_, cout_, src_w_, left_, out_w_, taps_, span_;
  Split q_, k_;
  // Tile row length: a width block plus the receptive field, in an odd number of cache lines.
  // A power-of-two row length (e.g. 64 + 24 * 8 = 256 floats) maps every row to the same few
  // L1 sets: C = 128, S = 25, d = 8 ran at 65 instead of 89 GFLOP/s.
  std::int64_t ld_;
  Brgemm kern_[2][2];
};

// dw[s][o][i] = sum_n sum_q dy[n][o][q] * in_t[n][q + s*dilation][i], where in_t
// is the padded input channels-last. One task per (tap, group of channel blocks); within it,
// samples and width chunks in order, each chunk one GEMM per channel block accumulating into
// dw, so every dw tile sees the same (sample, chunk) sequence whatever the grouping.
// LIBXSMM streams a call's A operand (the input chunk) once per register tile of dw, so it
// must stay cached: one chunk per call (a batch over samples spilled L2), 256 positions when
// m = c fits the preferred m, else column slices of preferred_m() channels over 16 KiB of
// positions, which stay in L1 (as for BlockedGemm; 128 positions on AVX2 measured 10-20%
// faster than 256 at C = 256).
class TapGrad {
 public:
  TapGrad(std::int64_t n, std::int64_t cin, std::int64_t cout, std::int64_t in_w,
          std::int64_t out_w, std::int64_t taps, std::int64_t dilation, std::int64_t bk)
      : n_(n), cin_(cin), cout_(cout), in_w_(in_w), out_w_(out_w), taps_(taps), dil_(dilation),
        sub_m_(cin > preferred_m() && cin % preferred_m() == 0 ? preferred_m() : cin),
        q_{out_w, std::min(sub_m_ == cin ? 256 : 16384 / (sub_m_ * 4), out_w)},
        k_{cout, std::min(bk, cout)} {
    for (int ni = 0; ni < 2; ++ni) {
      for (int ki = 0; ki < 2; ++ki) {
        const std::int64_t nn = ni == 0 ? k_.block : k_.len(k_.count() - 1);
        const std::int64_t kk = ki == 0 ? q_.block : q_.len(q_.count() - 1);
        if ((ni == 1 && !k_.ragged()) || (ki == 1 && !q_.ragged())) continue;
        kern_[ni][ki] = Brgemm({sub_m_, nn, kk, cin, out_w, cin, 0, 0, true,  // batch of one
                                Precision::fp32});
      }
    }
  }

  void run(const float* in_t, const float* dy, float* dw) const {
    const std::int64_t kb = k_.count(), qb = q_.count();
    // As many channel blocks per task as leave 4 tasks per thread (for dynamic scheduling to
    // balance): each input chunk is then fetched once and reused from cache by all of them.
    const std::int64_t threads = omp_get_max_threads();
    const std::int64_t wanted = std::min(kb, (4 * threads + taps_ - 1) / taps_);
    const std::int64_t group = (kb + wanted - 1) / wanted, groups = (kb + group - 1) / group;
    std::fill(dw, dw + taps_ * cout_ * cin_, 0.0f);
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (std::int64_t s = 0; s < taps_; ++s) {
      for (std::int64_t g = 0; g < groups; ++g) {
        const std::int64_t j0 = g * group, j1 = std::min(kb, j0 + group);
        for (std::int64_t n = 0; n < n_; ++n) {
          for (std::int64_t i = 0; i < qb; ++i) {
            const std::int64_t q0 = i * q_.block;
            const float* a = in_t + (n * in_w_ + q0 + s * dil_) * cin_;
            for (std::int64_t m0 = 0; m0 < cin_; m0 += sub_m_) {
              for (std::int64_t j = j0; j < j1; ++j) {
                const std::int64_t k0 = j * k_.block;
                const Brgemm& kern = kern_[j == kb - 1 && k_.ragged()][i == qb - 1 && q_.ragged()];
                kern(a + m0, dy + (n * cout_ + k0) * out_w_ + q0, dw + (s * cout_ + k0) * cin_ + m0, 1);
              }
            }
          }
        }
      }
    }
  }

 private:
  std::int64_t n_, cin_, cout_, in_w_, out_w_, taps_, dil_, sub_m_;
  Split q_, k_;
  Brgemm kern_[2][2];
};

// dst[n][p][i] = src[n][i][p - left] (zero outside), in tiles of 64 positions per task;
// 8 x 8 sub-tiles that lie inside the input go through registers, the rest (zero padding,
// ragged edges) through the scalar loop.
void channels_last_padded(const float* src, std::int64_t n, std::int64_t c, std::int64_t w,
                          std::int64_t left, std::int64_t padded_w, float* dst) {
  constexpr std::int64_t kTile = 64;
  const std::int64_t ptiles = (padded_w + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t s = 0; s < n; ++s) {
    for (std::int64_t pt = 0; pt < ptiles; ++pt) {
      const std::int64_t p1 = std::min(padded_w, (pt + 1) * kTile);
      for (std::int64_t i0 = 0; i0 < c; i0 += 8) {
        for (std::int64_t p0 = pt * kTile; p0 < p1; p0 += 8) {
          float* out = dst + (s * padded_w + p0) * c + i0;
          const float* in = src + (s * c + i0) * w + p0 - left;
          if (i0 + 8 <= c && p0 + 8 <= p1 && p0 >= left && p0 + 8 <= left + w) {
            transpose8x8(in, w, out, c);
            continue;
          }
          for (std::int64_t i = 0; i < std::min<std::int64_t>(8, c - i0); ++i) {
            for (std::int64_t p = 0; p < std::min<std::int64_t>(8, p1 - p0); ++p) {
              const std::int64_t at = p0 + p - left;
              out[p * c + i] = (at >= 0 && at < w) ? in[i * w + p] : 0.0f;
            }
          }
        }
      }
    }
  }
}

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

struct Conv1d::Plans {
  TapConv fwd, bwd_data;
  TapGrad bwd_weights;
  AlignedBuffer<float> tiles, w_flip, x_t;  // scratch, allocated on first use
  Allocator* scratch_allocator = nullptr;

  Allocator& scratch() const {
    return scratch_allocator != nullptr ? *scratch_allocator : heap_allocator();
  }
  // One input tile per thread for `conv`; regrown when the thread count or pass needs more.
  float* tiles_for(const TapConv& conv) {
    const auto needed = static_cast<std::size_t>(omp_get_max_threads() * conv.tile_elems());
    if (tiles.size() < needed) tiles = AlignedBuffer<float>(needed, scratch());
    return tiles.data();
  }
  void release_scratch() {
    tiles = {};
    w_flip = {};
    x_t = {};
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
  const std::int64_t in_w = d.out_width() + d.span();  // padded input width
  p_ = std::make_unique<Plans>(Plans{
      TapConv(d.n, d.c, d.k, d.width, d.pad_left(), d.out_width(), d.taps, d.dilation, d.bq,
              d.bk),
      // dx[i][p] = sum_s sum_o w[s][o][i] * dy[o][p + pad_left - s*dilation]: a valid
      // correlation of dy (left-padded by span - pad_left) with taps reversed.
      TapConv(d.n, d.k, d.c, d.out_width(), d.span() - d.pad_left(), d.width, d.taps, d.dilation,
              d.bq, d.bk),
      TapGrad(d.n, d.c, d.k, in_w, d.out_width(), d.taps, d.dilation, d.bk),
      {}, {}, {}, nullptr});
}

void Conv1d::set_scratch_allocator(Allocator* allocator) {
  p_->scratch_allocator = allocator;
  p_->release_scratch();  // scratch cached from another allocator would go uncounted
}

Conv1d::~Conv1d() = default;
Conv1d::Conv1d(Conv1d&&) noexcept = default;
Conv1d& Conv1d::operator=(Conv1d&&) noexcept = default;

void Conv1d::forward(std::span<const float> x, std::span<const float> w,
                     std::span<const float> bias, std::span<float> y) {
  check_size(x, d_.n * d_.c * d_.width, "x");
  check_size(w, d_.taps * d_.k * d_.c, "w");
  check_size(y, d_.n * d_.k * d_.out_width(), "y");
  check_size(bias, d_.bias ? d_.k : 0, "bias");
  p_->fwd.run(x.data(), w.data(), y.data(), d_.bias ? bias.data() : nullptr,
              p_->tiles_for(p_->fwd));
  p_->end_pass();
}

void Conv1d::backward_data(std::span<const float> dy, std::span<const float> w,
                           std::span<float> dx) {
  check_size(dy, d_.n * d_.k * d_.out_width(), "dy");
  check_size(w, d_.taps * d_.k * d_.c, "w");
  check_size(dx, d_.n * d_.c * d_.width, "dx");
  if (p_->w_flip.size() == 0) p_->w_flip = AlignedBuffer<float>(d_.taps * d_.c * d_.k, p_->scratch());
  float* wf = p_->w_flip.data();
  for (std::int64_t s = 0; s < d_.taps; ++s) {
    for (std::int64_t o = 0; o < d_.k; ++o) {
      for (std::int64_t i = 0; i < d_.c; ++i) {
        wf[((d_.taps - 1 - s) * d_.c + i) * d_.k + o] = w[(s * d_.k + o) * d_.c + i];
      }
    }
  }
  p_->bwd_data.run(dy.data(), wf, dx.data(), nullptr, p_->tiles_for(p_->bwd_data));
  p_->end_pass();
}

void Conv1d::backward_weights(std::span<const float> x, std::span<const float> dy,
                              std::span<float> dw, std::span<float> dbias) {
  const std::int64_t q = d_.out_width(), in_w = q + d_.span();
  check_size(x, d_.n * d_.c * d_.width, "x");
  check_size(dy, d_.n * d_.k * q, "dy");
  check_size(dw, d_.taps * d_.k * d_.c, "dw");
  check_size(dbias, d_.bias ? d_.k : 0, "dbias");
  if (p_->x_t.size() == 0) p_->x_t = AlignedBuffer<float>(d_.n * in_w * d_.c, p_->scratch());
  float* xt = p_->x_t.data();
  channels_last_padded(x.data(), d_.n, d_.c, d_.width, d_.pad_left(), in_w, xt);
  p_->bwd_weights.run(xt, dy.data(), dw.data());
  p_->end_pass();
  if (d_.bias) bias_grad_ncw(dy, d_.n, d_.k, q, dbias);
}

LayerCost Conv1d::cost() const {
  const double macs = double(d_.n) * double(d_.k) * double(d_.c) * double(d_.taps);
  LayerCost c;
  c.fwd_flops = 2.0 * macs * double(d_.out_width()) +
                (d_.bias ? double(d_.n * d_.k * d_.out_width()) : 0.0);
  c.bwd_data_flops = 2.0 * macs * double(d_.width);
  c.bwd_weights_flops = 2.0 * macs * double(d_.out_width()) +
                        (d_.bias ? double(d_.n * d_.k * d_.out_width()) : 0.0);
  c.saved_bytes = d_.n * d_.c * d_.width * std::int64_t(sizeof(float));
  return c;
}

}  // namespace rematch::kernels
