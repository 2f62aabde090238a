// Recomputation relies on these: a pass must give bitwise the same result on
// every run and for every thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <functional>

#include "kernels/conv1d.hpp"
#include "kernels/eltwise.hpp"
#include "kernels/fc.hpp"
#include "kernels/losses.hpp"
#include "tests/kernels/helpers.hpp"

namespace rematch::kernels {
namespace {

using test::random_vector;

// Runs `pass` at 1 thread, then twice at 2 threads; all outputs must match bit for bit.
void expect_bitwise_stable(const std::function<std::vector<float>()>& pass) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> one = pass();
  omp_set_num_threads(2);
  const std::vector<float> two = pass();
  const std::vector<float> again = pass();
  omp_set_num_threads(saved);
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float)))
      << "1 vs 2 threads";
  EXPECT_EQ(0, std::memcmp(two.data(), again.data(), two.size() * sizeof(float)))
      << "run to run";
}

std::vector<float> raw(const BlockedMatrix& m) { return {m.data.span().begin(), m.data.span().end()}; }

void fc_passes_are_bitwise_stable(Precision precision, std::int64_t n, std::int64_t c, std::int64_t k) {
  Fc fc({n, c, k, 64, 64, 64, true, Activation::relu, precision});
  const BlockedMatrix x = pack(random_vector(n * c, 1), fc.x_shape());
  const BlockedMatrix w = pack(random_vector(c * k, 2), fc.w_shape());
  const BlockedMatrix dy = pack(random_vector(n * k, 3), fc.y_shape());
  const auto bias = random_vector(k, 4);
  expect_bitwise_stable([&] {
    BlockedMatrix y(fc.y_shape());
    fc.forward(x, w, bias, y);
    return raw(y);
  });
  expect_bitwise_stable([&] {
    BlockedMatrix dx(fc.x_shape());
    fc.backward_data(dy, w, dx);
    return raw(dx);
  });
  expect_bitwise_stable([&] {
    BlockedMatrix dw(fc.w_shape());
    std::vector<float> db(k);
    fc.backward_weights(x, dy, dw, db);
    auto out = raw(dw);
    out.insert(out.end(), db.begin(), db.end());
    return out;
  });
}

TEST(Determinism, FcFp32PassesAreBitwiseIdenticalAcrossRunsAndThreadCounts) {
  fc_passes_are_bitwise_stable(Precision::fp32, 200, 150, 130);
  // Wide panels: tasks are bands of block rows (6 = 4 + 2 here at 1 thread, 2 + 2 + 2 at 2), split
  // into a number of column groups that differs between 1 and 2 threads.
  fc_passes_are_bitwise_stable(Precision::fp32, 380, 1100, 130);
  // One block column of output (the forward cannot be split by columns): bands of 2 block rows
  // at 1 thread, single rows at 2.
  fc_passes_are_bitwise_stable(Precision::fp32, 512, 1100, 40);
}

TEST(Determinism, FcBf16PassesAreBitwiseIdenticalAcrossRunsAndThreadCounts) {
  if (!bf16_supported()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  fc_passes_are_bitwise_stable(Precision::bf16, 200, 150, 130);
}

TEST(Determinism, Conv1dPassesAreBitwiseIdenticalAcrossRunsAndThreadCounts) {
  // Every backward-weights decomposition (see conv1d.cpp), plain and with a fused ReLU: 128 input
  // channels in preferred_m() slices, over taps and channel blocks; small weights in 8 parts with
  // the in-task copy; a reduction over taps and channel blocks in 2 parts. The last shape runs
  // forward and backward-data with the weights stationary (taps in chunks, beta = 1); the one
  // before it its forward stationary and backward-data streamed, both in slices of 64 input
  // channels (the first shape's forward: streamed, in slices). Small weights also run
  // Conv1d::backward's two passes in one (AVX-512: the second shape).
  const Conv1dDesc shapes[] = {{3, 128, 150, 500, 5, 3, Padding::same, true, 64, 64},
                               {3, 64, 64, 700, 3, 1, Padding::same, true, 64, 64},
                               {2, 400, 170, 300, 1, 1, Padding::valid, true, 64, 64},
                               {2, 256, 128, 300, 33, 2, Padding::same, true, 64, 64},
                               {2, 130, 130, 600, 33, 2, Padding::same, true, 64, 128}};
  for (const Conv1dDesc& plain : shapes) {
    for (const Activation act : {Activation::none, Activation::relu}) {
      Conv1dDesc d = plain;
      d.activation = act;
      Conv1d conv(d);
      const auto x = random_vector(d.n * d.c * d.width, 5), w = random_vector(d.taps * d.k * d.c, 6);
      const auto b = random_vector(d.k, 7), dy = random_vector(d.n * d.k * d.out_width(), 8);
      std::vector<float> y(dy.size());
      conv.forward(x, w, b, y);
      const std::span<const float> mask = act == Activation::relu ? std::span<const float>(y) : std::span<const float>();
      expect_bitwise_stable([&] {
        std::vector<float> out(dy.size());
        conv.forward(x, w, b, out);
        return out;
      });
      expect_bitwise_stable([&] {
        std::vector<float> dx(x.size());
        conv.backward_data(dy, w, dx, mask);
        return dx;
      });
      expect_bitwise_stable([&] {
        std::vector<float> dw(w.size()), db(d.k);
        conv.backward_weights(x, dy, dw, db, mask);
        dw.insert(dw.end(), db.begin(), db.end());
        return dw;
      });
      expect_bitwise_stable([&] {
        std::vector<float> g = dy, dx(x.size()), dw(w.size()), db(d.k);
        conv.backward(x, mask, g, w, dx, dw, db);
        dx.insert(dx.end(), dw.begin(), dw.end());
        dx.insert(dx.end(), db.begin(), db.end());
        return dx;
      });
    }
  }
}

TEST(Determinism, LayerNormAndLossGradientsAreBitwiseIdenticalAcrossThreadCounts) {
  const BlockShape s{300, 70, 64, 64};
  const BlockedMatrix x = pack(random_vector(300 * 70, 9), s), dy = pack(random_vector(300 * 70, 10), s);
  const auto gamma = random_vector(70, 11), beta = random_vector(70, 12);
  expect_bitwise_stable([&] {
    BlockedMatrix y(s), dx(s);
    std::vector<float> mean(300), rstd(300), dg(70), db(70);
    layer_norm_forward(x, gamma, beta, 1e-5f, y, mean, rstd);
    layer_norm_backward(x, dy, gamma, mean, rstd, dx, dg, db);
    auto out = raw(y);
    for (const auto* v : {&dg, &db}) out.insert(out.end(), v->begin(), v->end());
    const auto d = raw(dx);
    out.insert(out.end(), d.begin(), d.end());
    return out;
  });
  const auto a = random_vector(1000 * 16, 13), b = random_vector(1000 * 16, 14);
  std::vector<float> sim(1000);
  for (std::size_t i = 0; i < sim.size(); ++i) sim[i] = float(i % 2);
  expect_bitwise_stable([&] {
    std::vector<float> da(a.size()), db(b.size());
    const float l = contrastive_loss(a, b, sim, 1000, 16, 1.0f, da, db);
    da.push_back(l);
    return da;
  });
}

}  // namespace
}  // namespace rematch::kernels
