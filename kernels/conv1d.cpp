#include "kernels/conv1d.hpp"

#include <algorithm>
#include <string>

#include "kernels/brgemm.hpp"
#include "kernels/eltwise.hpp"
#include "kernels/error.hpp"

namespace rematch::kernels {
namespace {

// Width positions each backward-weights call reduces over: long enough to
// amortise loading the accumulator tile, short enough to stay in L2.
constexpr std::int64_t kGradChunk = 256;

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

// out[n][o][q] = sum_s sum_i wt[s][o][i] * in[n][i][q + s*dilation]: a valid
// correlation, one BRGEMM over the taps per (sample, channel block, width block).
class TapConv {
 public:
  TapConv(std::int64_t n, std::int64_t cin, std::int64_t cout, std::int64_t in_w,
          std::int64_t out_w, std::int64_t taps, std::int64_t dilation, std::int64_t bq,
          std::int64_t bk)
      : n_(n), cin_(cin), cout_(cout), in_w_(in_w), out_w_(out_w), taps_(taps),
        q_{out_w, std::min(bq, out_w)}, k_{cout, std::min(bk, cout)} {
    for (int mi = 0; mi < 2; ++mi) {
      for (int ni = 0; ni < 2; ++ni) {
        const std::int64_t m = mi == 0 ? q_.block : q_.len(q_.count() - 1);
        const std::int64_t nn = ni == 0 ? k_.block : k_.len(k_.count() - 1);
        if ((mi == 1 && !q_.ragged()) || (ni == 1 && !k_.ragged())) continue;
        kern_[mi][ni] = Brgemm({m, nn, cin, in_w, cin, out_w, dilation, cout * cin, false,
                                Precision::fp32});
      }
    }
  }

  void run(const float* in, const float* wt, float* out, const float* bias) const {
    const std::int64_t qb = q_.count(), kb = k_.count();
    // Channel blocks innermost: the input tile of a width block (c rows of
    // bq + span floats, each row in its own page for long inputs) is fetched
    // once and reused from L2 by every channel block instead of being streamed
    // again per channel block. Dynamic for the same reason as BlockedGemm::run.
#pragma omp parallel for collapse(3) schedule(dynamic)
    for (std::int64_t s = 0; s < n_; ++s) {
      for (std::int64_t i = 0; i < qb; ++i) {
        for (std::int64_t j = 0; j < kb; ++j) {
          const std::int64_t q0 = i * q_.block, k0 = j * k_.block;
          const Brgemm& kern = kern_[i == qb - 1 && q_.ragged()][j == kb - 1 && k_.ragged()];
          float* c = out + (s * cout_ + k0) * out_w_ + q0;
          kern(in + s * cin_ * in_w_ + q0, wt + k0 * cin_, c, taps_);
          if (bias == nullptr) continue;
          for (std::int64_t o = 0; o < k_.len(j); ++o) {
            for (std::int64_t q = 0; q < q_.len(i); ++q) c[o * out_w_ + q] += bias[k0 + o];
          }
        }
      }
    }
  }

 private:
  std::int64_t n_, cin_, cout_, in_w_, out_w_, taps_;
  Split q_, k_;
  Brgemm kern_[2][2];
};

// dw[s][o][i] = sum_n sum_q dy[n][o][q] * in_t[n][q + s*dilation][i], where in_t
// is the padded input channels-last. One task per (tap, channel block); within
// it, samples and width chunks in order, each one GEMM accumulating into dw.
// LIBXSMM streams a call's whole batch once per register tile of dw, so a batch
// over samples (c x chunk floats each) would spill L2 once c * chunk * samples
// passes ~256 KiB; one chunk per call keeps the A operand L2-resident.
class TapGrad {
 public:
  TapGrad(std::int64_t n, std::int64_t cin, std::int64_t cout, std::int64_t in_w,
          std::int64_t out_w, std::int64_t taps, std::int64_t dilation, std::int64_t bk)
      : n_(n), cin_(cin), cout_(cout), in_w_(in_w), out_w_(out_w), taps_(taps), dil_(dilation),
        q_{out_w, std::min(kGradChunk, out_w)}, k_{cout, std::min(bk, cout)} {
    for (int ni = 0; ni < 2; ++ni) {
      for (int ki = 0; ki < 2; ++ki) {
        const std::int64_t nn = ni == 0 ? k_.block : k_.len(k_.count() - 1);
        const std::int64_t kk = ki == 0 ? q_.block : q_.len(q_.count() - 1);
        if ((ni == 1 && !k_.ragged()) || (ki == 1 && !q_.ragged())) continue;
        kern_[ni][ki] = Brgemm({cin, nn, kk, cin, out_w, cin, 0, 0, true,  // batch of one
                                Precision::fp32});
      }
    }
  }

  void run(const float* in_t, const float* dy, float* dw) const {
    const std::int64_t kb = k_.count(), qb = q_.count();
    std::fill(dw, dw + taps_ * cout_ * cin_, 0.0f);
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (std::int64_t s = 0; s < taps_; ++s) {
      for (std::int64_t j = 0; j < kb; ++j) {
        const std::int64_t k0 = j * k_.block;
        float* c = dw + (s * cout_ + k0) * cin_;
        for (std::int64_t n = 0; n < n_; ++n) {
          for (std::int64_t i = 0; i < qb; ++i) {
            const std::int64_t q0 = i * q_.block;
            const Brgemm& kern = kern_[j == kb - 1 && k_.ragged()][i == qb - 1 && q_.ragged()];
            kern(in_t + (n * in_w_ + q0 + s * dil_) * cin_, dy + (n * cout_ + k0) * out_w_ + q0, c, 1);
          }
        }
      }
    }
  }

 private:
  std::int64_t n_, cin_, cout_, in_w_, out_w_, taps_, dil_;
  Split q_, k_;
  Brgemm kern_[2][2];
};

// dst[r][left + w] = src[r][w]; the padding columns are zero.
void pad_rows(const float* src, std::int64_t rows, std::int64_t w, std::int64_t left,
              std::int64_t padded_w, float* dst) {
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    float* d = dst + r * padded_w;
    std::fill(d, d + left, 0.0f);
    std::copy(src + r * w, src + (r + 1) * w, d + left);
    std::fill(d + left + w, d + padded_w, 0.0f);
  }
}

// dst[n][p][i] = src[n][i][p - left] (zero outside), in 64 x 64 tiles so both
// the strided reads and the strided writes stay in L1.
void channels_last_padded(const float* src, std::int64_t n, std::int64_t c, std::int64_t w,
                          std::int64_t left, std::int64_t padded_w, float* dst) {
  constexpr std::int64_t kTile = 64;
  const std::int64_t ptiles = (padded_w + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t s = 0; s < n; ++s) {
    for (std::int64_t pt = 0; pt < ptiles; ++pt) {
      const std::int64_t p0 = pt * kTile, p1 = std::min(padded_w, p0 + kTile);
      for (std::int64_t i0 = 0; i0 < c; i0 += kTile) {
        const std::int64_t i1 = std::min(c, i0 + kTile);
        for (std::int64_t i = i0; i < i1; ++i) {
          const float* row = src + (s * c + i) * w;
          for (std::int64_t p = p0; p < p1; ++p) {
            const std::int64_t at = p - left;
            dst[(s * padded_w + p) * c + i] = (at >= 0 && at < w) ? row[at] : 0.0f;
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
  AlignedBuffer<float> x_pad, dy_pad, w_flip, x_t;  // scratch, allocated on first use
  Allocator* scratch_allocator = nullptr;

  Allocator& scratch() const {
    return scratch_allocator != nullptr ? *scratch_allocator : heap_allocator();
  }
  void end_pass() {
    if (scratch_allocator == nullptr) return;
    x_pad = {};
    dy_pad = {};
    w_flip = {};
    x_t = {};
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
      TapConv(d.n, d.c, d.k, in_w, d.out_width(), d.taps, d.dilation, d.bq, d.bk),
      TapConv(d.n, d.k, d.c, d.width + d.span(), d.width, d.taps, d.dilation, d.bq, d.bk),
      TapGrad(d.n, d.c, d.k, in_w, d.out_width(), d.taps, d.dilation, d.bk),
      {}, {}, {}, {}, nullptr});
}

void Conv1d::set_scratch_allocator(Allocator* allocator) { p_->scratch_allocator = allocator; }

Conv1d::~Conv1d() = default;
Conv1d::Conv1d(Conv1d&&) noexcept = default;
Conv1d& Conv1d::operator=(Conv1d&&) noexcept = default;

void Conv1d::forward(std::span<const float> x, std::span<const float> w,
                     std::span<const float> bias, std::span<float> y) {
  const std::int64_t q = d_.out_width(), in_w = q + d_.span();
  check_size(x, d_.n * d_.c * d_.width, "x");
  check_size(w, d_.taps * d_.k * d_.c, "w");
  check_size(y, d_.n * d_.k * q, "y");
  check_size(bias, d_.bias ? d_.k : 0, "bias");
  const float* in = x.data();
  if (d_.padding == Padding::same) {
    if (p_->x_pad.size() == 0) p_->x_pad = AlignedBuffer<float>(d_.n * d_.c * in_w, p_->scratch());
    pad_rows(x.data(), d_.n * d_.c, d_.width, d_.pad_left(), in_w, p_->x_pad.data());
    in = p_->x_pad.data();
  }
  p_->fwd.run(in, w.data(), y.data(), d_.bias ? bias.data() : nullptr);
  p_->end_pass();
}

void Conv1d::backward_data(std::span<const float> dy, std::span<const float> w,
                           std::span<float> dx) {
  const std::int64_t q = d_.out_width(), pw = d_.width + d_.span();
  check_size(dy, d_.n * d_.k * q, "dy");
  check_size(w, d_.taps * d_.k * d_.c, "w");
  check_size(dx, d_.n * d_.c * d_.width, "dx");
  if (p_->dy_pad.size() == 0) {
    p_->dy_pad = AlignedBuffer<float>(d_.n * d_.k * pw, p_->scratch());
    p_->w_flip = AlignedBuffer<float>(d_.taps * d_.c * d_.k, p_->scratch());
  }
  // dx[i][p] = sum_s sum_o w[s][o][i] * dy[o][p + pad_left - s*dilation]: a valid
  // correlation of dy (left-padded by span - pad_left) with taps reversed.
  pad_rows(dy.data(), d_.n * d_.k, q, d_.span() - d_.pad_left(), pw, p_->dy_pad.data());
  float* wf = p_->w_flip.data();
  for (std::int64_t s = 0; s < d_.taps; ++s) {
    for (std::int64_t o = 0; o < d_.k; ++o) {
      for (std::int64_t i = 0; i < d_.c; ++i) {
        wf[((d_.taps - 1 - s) * d_.c + i) * d_.k + o] = w[(s * d_.k + o) * d_.c + i];
      }
    }
  }
  p_->bwd_data.run(p_->dy_pad.data(), wf, dx.data(), nullptr);
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
