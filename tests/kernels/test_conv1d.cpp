#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/conv1d.hpp"
#include "tests/kernels/helpers.hpp"

namespace rematch::kernels {
namespace {

using test::dot_tolerance;
using test::random_vector;

struct ConvData {
  Conv1dDesc d;
  std::vector<float> x, w, b, dy;
  ConvData(const Conv1dDesc& desc, std::uint32_t seed)
      : d(desc), x(random_vector(d.n * d.c * d.width, seed)),
        w(random_vector(d.taps * d.k * d.c, seed + 1)), b(random_vector(d.k, seed + 2)),
        dy(random_vector(d.n * d.k * d.out_width(), seed + 3)) {}
  // Input position read by output q through tap s, or -1 in the zero padding.
  std::int64_t in_pos(std::int64_t q, std::int64_t s) const {
    const std::int64_t p = q + s * d.dilation - d.pad_left();
    return (p >= 0 && p < d.width) ? p : -1;
  }
};

// Visits every (sample, out channel, in channel, tap, output position, input position)
// term of the convolution; all three reference passes are sums of these terms.
template <class F>
void for_each_term(const ConvData& c, F&& f) {
  const Conv1dDesc& d = c.d;
  for (std::int64_t n = 0; n < d.n; ++n)
    for (std::int64_t o = 0; o < d.k; ++o)
      for (std::int64_t i = 0; i < d.c; ++i)
        for (std::int64_t s = 0; s < d.taps; ++s)
          for (std::int64_t q = 0; q < d.out_width(); ++q) {
            const std::int64_t p = c.in_pos(q, s);
            if (p >= 0) f(n, o, i, s, q, p);
          }
}

// A naive double-precision result and, per element, the sum of the magnitudes of its terms
// (for the summation error bound).
struct Reference {
  std::vector<double> val, abs;
  explicit Reference(std::size_t size) : val(size), abs(size) {}
  void add(std::size_t at, double v) {
    val[at] += v;
    abs[at] += std::abs(v);
  }
};

// Pre-activation output: conv + bias.
Reference naive_forward(const ConvData& c) {
  const Conv1dDesc& d = c.d;
  const std::int64_t q = d.out_width();
  Reference r(d.n * d.k * q);
  for (std::int64_t n = 0; n < d.n; ++n)
    for (std::int64_t o = 0; o < d.k; ++o)
      for (std::int64_t t = 0; t < q; ++t) r.add((n * d.k + o) * q + t, d.bias ? c.b[o] : 0.0);
  for_each_term(c, [&](auto n, auto o, auto i, auto s, auto t, auto p) {
    r.add((n * d.k + o) * q + t, double(c.w[(s * d.k + o) * d.c + i]) * c.x[(n * d.c + i) * d.width + p]);
  });
  return r;
}

Reference naive_backward_data(const ConvData& c, const std::vector<float>& g) {
  const Conv1dDesc& d = c.d;
  Reference r(d.n * d.c * d.width);
  for_each_term(c, [&](auto n, auto o, auto i, auto s, auto t, auto p) {
    r.add((n * d.c + i) * d.width + p,
          double(c.w[(s * d.k + o) * d.c + i]) * g[(n * d.k + o) * d.out_width() + t]);
  });
  return r;
}

// Weight gradients, then the bias gradient.
Reference naive_backward_weights(const ConvData& c, const std::vector<float>& g) {
  const Conv1dDesc& d = c.d;
  const std::int64_t q = d.out_width(), dw = d.taps * d.k * d.c;
  Reference r(dw + d.k);
  for_each_term(c, [&](auto n, auto o, auto i, auto s, auto t, auto p) {
    r.add((s * d.k + o) * d.c + i, double(g[(n * d.k + o) * q + t]) * c.x[(n * d.c + i) * d.width + p]);
  });
  for (std::int64_t n = 0; n < d.n; ++n)
    for (std::int64_t o = 0; o < d.k; ++o)
      for (std::int64_t t = 0; t < q; ++t) r.add(dw + o, g[(n * d.k + o) * q + t]);
  return r;
}

void expect_close(const std::vector<float>& got, const Reference& want, std::size_t from,
                  std::int64_t length) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want.val[from + i], dot_tolerance(length, want.abs[from + i])) << "at " << i;
  }
}

// Ragged blocks, both paddings, both forward loop orders (tasks of width blocks grouped with
// their window packed once, or weights stationary) and every backward-weights decomposition (see
// conv1d.cpp): small weights split into 2 or 8 parts; larger ones over taps and channel blocks,
// alone or in 2 parts. In AVX-512 builds the full 64-position blocks of forward and backward-data
// go through the tap register tile: the channel counts of the shapes at least 64 wide (a block
// of 64 = 6 x 10 + 4, 8 = 6 + 2, 130 = 64 + 64 + 2, 67 = 64 + 2 + 1, 7 = 6 + 1) give it every
// group size, from zero and accumulating (slices, chunks of taps).
const Conv1dDesc kShapes[] = {
    {2, 5, 70, 37, 3, 2, Padding::same, true, 16, 64},   // ragged width and channel blocks
    {1, 16, 8, 300, 5, 3, Padding::valid, true, 64, 64},  // ragged backward-weights chunks
    {3, 3, 4, 10, 4, 1, Padding::same, true, 64, 64},     // even taps: asymmetric padding
    {2, 7, 9, 21, 1, 1, Padding::valid, false, 8, 4},     // pointwise, no bias
    {2, 128, 24, 1100, 3, 2, Padding::same, true, 64, 64},  // channels split into m slices, 8 parts
    // m slices over taps and channel blocks in 2 parts, the second starting inside a sample, ragged
    // chunks and channel blocks.
    {3, 128, 104, 750, 5, 2, Padding::same, true, 64, 64},
    {2, 64, 130, 50, 9, 3, Padding::same, true, 64, 64},  // weights past the in-task copy's limit
    {2, 400, 170, 300, 1, 1, Padding::valid, true, 64, 64},  // the same, reduction in 2 parts
    {2, 3, 5, 12, 3, 1, Padding::valid, true, 64, 64},  // dy narrower than backward-data's block
    // Several groups of width blocks per sample, the last one short and ending in a ragged block,
    // each group's window reaching into the padding or not, 3 channel blocks on one window.
    {2, 64, 130, 700, 3, 2, Padding::same, true, 64, 64},
    // Conv1d::backward running backward-data inside backward-weights' tasks on either ISA: 4
    // chunks of 256 positions per sample, each one of backward-data's groups, 8 parts.
    {2, 24, 40, 900, 3, 2, Padding::same, true, 64, 64},
    // Over 2 MiB of weights per channel block in forward and backward-data: weights stationary,
    // taps in chunks (a ragged last one), groups of width blocks (a ragged last one).
    {1, 130, 130, 280, 33, 2, Padding::same, true, 64, 128},
    // Input channels in slices of 64 per BRGEMM call: 4 slices with the weights stationary (taps
    // in chunks, a ragged last one) in forward, 2 with them streamed in backward-data. (The
    // 128-channel shapes above slice the forward with the weights streamed.)
    {1, 256, 128, 120, 33, 2, Padding::same, true, 64, 64},
    // Output channels that leave single-channel groups in the tap register tile, both passes.
    {1, 7, 67, 130, 3, 1, Padding::same, true, 64, 64},
};

Conv1dDesc with_relu(Conv1dDesc d) {
  d.activation = Activation::relu;
  return d;
}

class Conv1dTest : public test::ThreadsTest {};

TEST_P(Conv1dTest, ForwardMatchesNaiveLoopForSameAndValidPadding) {
  for (const Conv1dDesc& d : kShapes) {
    const ConvData c(d, 100);
    const Reference want = naive_forward(c);
    Conv1d conv(d);
    std::vector<float> y(want.val.size());
    conv.forward(c.x, c.w, d.bias ? std::span<const float>(c.b) : std::span<const float>(), y);
    expect_close(y, want, 0, d.c * d.taps + 1);
  }
}

TEST_P(Conv1dTest, BackwardDataMatchesNaiveLoop) {
  for (const Conv1dDesc& d : kShapes) {
    const ConvData c(d, 200);
    Conv1d conv(d);
    std::vector<float> dx(c.x.size());
    conv.backward_data(c.dy, c.w, dx);
    expect_close(dx, naive_backward_data(c, c.dy), 0, d.k * d.taps);
  }
}

TEST_P(Conv1dTest, BackwardWeightsAndBiasMatchNaiveLoop) {
  for (const Conv1dDesc& d : kShapes) {
    const ConvData c(d, 300);
    const Reference want = naive_backward_weights(c, c.dy);
    Conv1d conv(d);
    std::vector<float> dw(c.w.size()), db(d.bias ? d.k : 0);
    conv.backward_weights(c.x, c.dy, dw, db);
    expect_close(dw, want, 0, d.n * d.out_width());
    expect_close(db, want, dw.size(), d.n * d.out_width());
  }
}

// With a fused ReLU: y = max(0, conv + bias), and both backward passes take dy w.r.t. y and y
// itself, i.e. they must equal the plain passes on dy * (y > 0).
TEST_P(Conv1dTest, FusedReluIsReluOfNaiveForwardAndMasksBothGradients) {
  for (const Conv1dDesc& plain : kShapes) {
    const Conv1dDesc d = with_relu(plain);
    const ConvData c(d, 600);
    const Reference pre = naive_forward(c);
    Conv1d conv(d);
    std::vector<float> y(pre.val.size());
    conv.forward(c.x, c.w, d.bias ? std::span<const float>(c.b) : std::span<const float>(), y);
    Reference want(pre.val.size());
    for (std::size_t i = 0; i < y.size(); ++i) {
      want.val[i] = std::max(pre.val[i], 0.0);
      want.abs[i] = pre.abs[i];
    }
    expect_close(y, want, 0, d.c * d.taps + 1);
    std::vector<float> masked(c.dy.size());
    for (std::size_t i = 0; i < y.size(); ++i) masked[i] = y[i] > 0.0f ? c.dy[i] : 0.0f;
    std::vector<float> dx(c.x.size()), dw(c.w.size()), db(d.bias ? d.k : 0);
    conv.backward_data(c.dy, c.w, dx, y);
    expect_close(dx, naive_backward_data(c, masked), 0, d.k * d.taps);
    conv.backward_weights(c.x, c.dy, dw, db, y);
    const Reference gw = naive_backward_weights(c, masked);
    expect_close(dw, gw, 0, d.n * d.out_width());
    expect_close(db, gw, dw.size(), d.n * d.out_width());
  }
}

// Conv1d::backward may mask dy in place (fused ReLU, small weights) and read it from there, or
// run backward-data's tasks inside backward-weights' ones; its results must be those of the two
// separate passes, bit for bit, and so the naive ones.
TEST_P(Conv1dTest, BackwardEqualsBothPassesBitwiseAndMayOnlyMaskDy) {
  for (const Conv1dDesc& plain : kShapes) {
    for (const Conv1dDesc& d : {plain, with_relu(plain)}) {
      const bool relu = d.activation == Activation::relu;
      const ConvData c(d, 700);
      Conv1d conv(d);
      test::CountingAllocator counting;
      conv.set_scratch_allocator(&counting);
      std::vector<float> y(c.dy.size());
      conv.forward(c.x, c.w, d.bias ? std::span<const float>(c.b) : std::span<const float>(), y);
      const std::span<const float> mask = relu ? std::span<const float>(y) : std::span<const float>();
      std::vector<float> dx(c.x.size()), dw(c.w.size()), db(d.bias ? d.k : 0);
      conv.backward_data(c.dy, c.w, dx, mask);
      conv.backward_weights(c.x, c.dy, dw, db, mask);
      std::vector<float> masked(c.dy.size());
      for (std::size_t i = 0; i < y.size(); ++i) masked[i] = !relu || y[i] > 0.0f ? c.dy[i] : 0.0f;
      const Reference gw = naive_backward_weights(c, masked);
      expect_close(dw, gw, 0, d.n * d.out_width());
      expect_close(dx, naive_backward_data(c, masked), 0, d.k * d.taps);
      for (const bool need_dx : {true, false}) {
        std::vector<float> g = c.dy, dx2(need_dx ? c.x.size() : 0), dw2(dw.size()), db2(db.size());
        conv.backward(c.x, mask, g, c.w, dx2, dw2, db2);
        EXPECT_EQ(counting.live_, 0u);
        if (need_dx) {
          EXPECT_EQ(dx2, dx);
        }
        EXPECT_EQ(dw2, dw);
        EXPECT_EQ(db2, db);
        for (std::size_t i = 0; i < g.size(); ++i) {
          ASSERT_TRUE(g[i] == c.dy[i] || g[i] == masked[i]) << "dy changed beyond its mask at " << i;
        }
      }
    }
  }
}

// Two chained layers a -> b, a with a fused ReLU: b writing dx masked by its input (a's output)
// and a taking that dy as already masked (ReluLinks) give every gradient bitwise as the unlinked
// passes do, with a's input gradient and without.
void expect_linked_chain_bitwise(const Conv1dDesc& a, const Conv1dDesc& b) {
  ASSERT_EQ(a.activation, Activation::relu);
  const ConvData ca(a, 800), cb(b, 900);  // cb.x is unused: b reads a's output
  const auto bias = [](const ConvData& c) { return c.d.bias ? std::span<const float>(c.b) : std::span<const float>(); };
  Conv1d ka(a), kb(b);
  std::vector<float> ya(a.n * a.k * a.out_width()), yb(cb.dy.size());
  ka.forward(ca.x, ca.w, bias(ca), ya);
  kb.forward(ya, cb.w, bias(cb), yb);
  const std::span<const float> mb =
      b.activation == Activation::relu ? std::span<const float>(yb) : std::span<const float>();
  std::vector<float> g = cb.dy, dxb(ya.size()), dwb(cb.w.size()), dbb(b.bias ? b.k : 0);
  kb.backward(ya, mb, g, cb.w, dxb, dwb, dbb);
  std::vector<float> masked_dxb(dxb.size());
  for (std::size_t i = 0; i < dxb.size(); ++i) masked_dxb[i] = ya[i] > 0.0f ? dxb[i] : 0.0f;
  std::vector<float> dxa(ca.x.size()), dwa(ca.w.size()), dba(a.bias ? a.k : 0);
  ka.backward(ca.x, ya, dxb, ca.w, dxa, dwa, dba);

  std::vector<float> g2 = cb.dy, dxb2(ya.size()), dwb2(dwb.size()), dbb2(dbb.size());
  kb.backward(ya, mb, g2, cb.w, dxb2, dwb2, dbb2, {.mask_dx = true});
  EXPECT_EQ(dwb2, dwb);
  EXPECT_EQ(dbb2, dbb);
  ASSERT_EQ(dxb2, masked_dxb);
  for (const bool need_dx : {true, false}) {
    std::vector<float> dy = dxb2, dxa2(need_dx ? dxa.size() : 0), dwa2(dwa.size()), dba2(dba.size());
    ka.backward(ca.x, {}, dy, ca.w, dxa2, dwa2, dba2, {.dy_masked = true});
    if (need_dx) {
      EXPECT_EQ(dxa2, dxa);
    }
    EXPECT_EQ(dwa2, dwa);
    EXPECT_EQ(dba2, dba);
  }
}

// Every shape as the layer with the ReLU (each backward-weights decomposition reading a masked
// dy) and as the layer after it (ragged blocks in the masked dx epilogue), with and without its
// own ReLU.
TEST_P(Conv1dTest, LinkedReluMasksGiveTheUnlinkedGradientsBitwise) {
  for (const Conv1dDesc& d : kShapes) {
    const Conv1dDesc after{d.n, d.k, 5, d.out_width(), 3, 1, Padding::same, true, 64, 64};
    expect_linked_chain_bitwise(with_relu(d), after);
    expect_linked_chain_bitwise(with_relu(d), with_relu(after));
    const Conv1dDesc before{d.n, 3, d.c, d.width, 3, 2, Padding::same, true, 64, 64};
    expect_linked_chain_bitwise(with_relu(before), d);
    expect_linked_chain_bitwise(with_relu(before), with_relu(d));
  }
}

TEST_P(Conv1dTest, GradientsMatchFiniteDifferencesOfDoubleForward) {
  const Conv1dDesc d{2, 3, 4, 9, 3, 2, Padding::same, true, 4, 2};
  const ConvData c(d, 400);
  const std::int64_t q = d.out_width();
  const auto r = random_vector(d.n * d.k * q, 404);
  auto loss = [&](const std::vector<double>& x, const std::vector<double>& w,
                  const std::vector<double>& b) {
    double l = 0.0;
    for (std::int64_t n = 0; n < d.n; ++n)
      for (std::int64_t o = 0; o < d.k; ++o)
        for (std::int64_t t = 0; t < q; ++t) l += r[(n * d.k + o) * q + t] * b[o];
    for_each_term(c, [&](auto n, auto o, auto i, auto s, auto t, auto p) {
      l += r[(n * d.k + o) * q + t] * w[(s * d.k + o) * d.c + i] * x[(n * d.c + i) * d.width + p];
    });
    return l;
  };
  const auto xd = test::to_double(c.x), wd = test::to_double(c.w), bd = test::to_double(c.b);
  Conv1d conv(d);
  std::vector<float> dx(c.x.size()), dw(c.w.size()), db(d.k);
  conv.backward_data(r, c.w, dx);
  conv.backward_weights(c.x, r, dw, db);
  test::expect_gradient_near(dx, test::finite_difference([&](const auto& v) { return loss(v, wd, bd); }, xd));
  test::expect_gradient_near(dw, test::finite_difference([&](const auto& v) { return loss(xd, v, bd); }, wd));
  test::expect_gradient_near(db, test::finite_difference([&](const auto& v) { return loss(xd, wd, v); }, bd));
}

INSTANTIATE_TEST_SUITE_P(Threads, Conv1dTest, ::testing::Values(1, 2), test::thread_name);

TEST(Conv1d, WeightsFromKcsMovesTapsOutermost) {
  std::vector<float> kcs(2 * 3 * 4), tkc(kcs.size());
  for (std::size_t i = 0; i < kcs.size(); ++i) kcs[i] = float(i);
  weights_from_kcs(kcs, 2, 3, 4, tkc);
  EXPECT_EQ(tkc[(3 * 2 + 1) * 3 + 2], kcs[(1 * 3 + 2) * 4 + 3]);
  EXPECT_EQ(tkc[(0 * 2 + 0) * 3 + 1], kcs[(0 * 3 + 1) * 4 + 0]);
}

TEST(Conv1d, BadDescriptorsAndSizesThrowNamedErrors) {
  EXPECT_THROW(Conv1d({1, 1, 1, 0, 1, 1}), std::invalid_argument);
  EXPECT_THROW(Conv1d({1, 1, 1, 8, 3, 0}), std::invalid_argument);
  try {
    Conv1d({1, 2, 2, 8, 5, 2, Padding::valid});
    FAIL() << "a valid convolution without output was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no output"), std::string::npos);
  }
  Conv1d conv({1, 2, 3, 8, 3, 1, Padding::same, false});
  std::vector<float> x(16), w(18), y(24);
  EXPECT_NO_THROW(conv.forward(x, w, {}, y));
  EXPECT_THROW(conv.forward(x, std::vector<float>(17), {}, y), std::invalid_argument);
  EXPECT_THROW(conv.forward(x, w, std::vector<float>(3), y), std::invalid_argument);
  std::vector<float> dx(16), dw(18);
  EXPECT_THROW(conv.backward_data(y, w, dx, y), std::invalid_argument);  // y without a ReLU
  std::vector<float> g(24);
  EXPECT_THROW(conv.backward(x, {}, g, w, dx, dw, {}, {.dy_masked = true}), std::invalid_argument);
  Conv1d relu(with_relu({1, 2, 3, 8, 3, 1, Padding::same, false}));
  EXPECT_THROW(relu.backward_data(y, w, dx), std::invalid_argument);  // the ReLU's y missing
  EXPECT_THROW(relu.backward_weights(x, y, dw, {}, std::vector<float>(23)), std::invalid_argument);
  EXPECT_NO_THROW(relu.backward_weights(x, y, dw, {}, y));
  std::vector<float> dy(24), short_dx(15);
  EXPECT_THROW(relu.backward(x, y, dy, w, short_dx, dw, {}), std::invalid_argument);
  EXPECT_THROW(relu.backward(x, {}, dy, w, dx, dw, {}), std::invalid_argument);
  EXPECT_NO_THROW(relu.backward(x, y, dy, w, {}, dw, {}));
  EXPECT_THROW(relu.backward(x, y, dy, w, dx, dw, {}, {.dy_masked = true}), std::invalid_argument);
  EXPECT_NO_THROW(relu.backward(x, {}, dy, w, dx, dw, {}, {.dy_masked = true, .mask_dx = true}));
}

TEST(Conv1d, CostCountsTapGemmFlopsAndSavedInput) {
  const Conv1d conv({2, 64, 32, 1000, 9, 4, Padding::valid, false});
  const LayerCost c = conv.cost();
  EXPECT_EQ(c.fwd_flops, 2.0 * 2 * 64 * 32 * 9 * (1000 - 32));
  EXPECT_EQ(c.bwd_data_flops, 2.0 * 2 * 64 * 32 * 9 * 1000);
  EXPECT_EQ(c.saved_bytes, 2 * 64 * 1000 * 4);
  // A fused ReLU also keeps y for its mask.
  const Conv1d relu(with_relu({2, 64, 32, 1000, 9, 4, Padding::valid, false}));
  EXPECT_EQ(relu.cost().saved_bytes, (2 * 64 * 1000 + 2 * 32 * (1000 - 32)) * 4);
}

TEST_P(Conv1dTest, ScratchComesFromTheAllocatorAndIsReturnedByEveryPass) {
  const Conv1dDesc d = kShapes[0];
  const ConvData c(d, 500);
  Conv1d conv(d);
  test::CountingAllocator counting;
  conv.set_scratch_allocator(&counting);
  std::vector<float> y(d.n * d.k * d.out_width()), dx(c.x.size()), dw(c.w.size()), db(d.k);
  conv.forward(c.x, c.w, c.b, y);
  EXPECT_EQ(counting.live_, 0u);
  EXPECT_GT(counting.peak_, 0u);  // per-thread input tiles
  conv.backward_data(y, c.w, dx);
  EXPECT_EQ(counting.live_, 0u);
  conv.backward_weights(c.x, y, dw, db);
  EXPECT_EQ(counting.live_, 0u);
}

}  // namespace
}  // namespace rematch::kernels
