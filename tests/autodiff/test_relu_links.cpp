// An encoder lets the layer after a fused ReLU apply that ReLU's mask as it writes its input
// gradient (Layer::mask_input_gradient), within a stage and across a stage boundary; the
// gradients stay bitwise those of the kernels run layer by layer without links.
#include <gtest/gtest.h>

#include "autodiff/arena.hpp"
#include "autodiff/encoder.hpp"
#include "autodiff/layers.hpp"
#include "kernels/conv1d.hpp"
#include "tests/kernels/helpers.hpp"

namespace rematch::autodiff {
namespace {

using kernels::Activation;
using kernels::Conv1dDesc;

class ReluLinks : public kernels::test::ThreadsTest {};

TEST_P(ReluLinks, ConvChainGradientsEqualTheUnlinkedKernelsBitwise) {
  // Odd sizes: a ragged width block and channel counts that are not multiples of 8; the second
  // layer has no bias, the last no ReLU (its dy comes from outside the encoder).
  const Conv1dDesc descs[] = {
      {.n = 3, .c = 4, .k = 6, .width = 77, .taps = 3, .dilation = 1, .activation = Activation::relu},
      {.n = 3, .c = 6, .k = 5, .width = 77, .taps = 3, .dilation = 2, .bias = false,
       .activation = Activation::relu},
      {.n = 3, .c = 5, .k = 7, .width = 77, .taps = 2, .dilation = 1, .padding = kernels::Padding::valid},
  };
  Arena params("parameters"), activations("activations");
  std::vector<std::unique_ptr<Layer>> layers;
  for (const Conv1dDesc& d : descs) layers.push_back(std::make_unique<Conv1dLayer>(d, params));
  Encoder e("convs", std::move(layers), {1, 3});  // stage 1 keeps a tape
  e.initialize(11);
  const auto stage0 = e.stage_layers(0), stage1 = e.stage_layers(1);
  EXPECT_FALSE(stage0[0]->backward_reads_output());  // its dy arrives masked
  EXPECT_FALSE(stage1[0]->backward_reads_output());

  const std::vector<float> x0 = kernels::test::random_vector(3 * 4 * 77, 1);
  const std::vector<float> dy = kernels::test::random_vector(3 * 7 * 76, 2);
  auto tensor = [&](const BlockShape& shape, const std::vector<float>& v) {
    Tensor t(shape, false, activations);
    std::copy(v.begin(), v.end(), t.data.span().begin());
    return e.store(std::move(t), activations);
  };
  const Stored x = tensor(e.input_shape(0), x0);
  const Stored x1 = e.forward(0, x, activations);
  Saved saved0 = e.forward_taped(0, x, activations), saved1 = e.forward_taped(1, x1, activations);
  Gradients grads = e.make_gradients(params);
  Stored dx1 = e.backward(1, x1, std::move(saved1), tensor(e.output_shape(1), dy), true, activations, grads);
  (void)e.backward(0, x, std::move(saved0), std::move(dx1), false, activations, grads);

  // The same layers as kernels, unlinked: each masks its own dy.
  const std::vector<Tensor*> p = e.parameters();  // w0, b0, w1, w2, b2
  auto span = [](const Tensor* t) { return std::span<const float>(t->data.span()); };
  const std::span<const float> w[] = {span(p[0]), span(p[2]), span(p[3])};
  const std::span<const float> b[] = {span(p[1]), {}, span(p[4])};
  std::vector<kernels::Conv1d> convs;
  std::vector<std::vector<float>> ys{x0};
  for (int l = 0; l < 3; ++l) {
    convs.emplace_back(descs[l]);
    ys.emplace_back(std::size_t(descs[l].n * descs[l].k * descs[l].out_width()));
    convs[l].forward(ys[l], w[l], b[l], ys[l + 1]);
  }
  std::vector<float> g = dy;
  for (int l = 2; l >= 0; --l) {
    const bool relu = descs[l].activation == Activation::relu;
    std::vector<float> dx(l > 0 ? ys[l].size() : 0), dw(w[l].size()), db(b[l].size());
    convs[l].backward(ys[l], relu ? std::span<const float>(ys[l + 1]) : std::span<const float>(), g,
                      w[l], dx, dw, db);
    EXPECT_EQ(std::vector<float>(grads[l][0].data.span().begin(), grads[l][0].data.span().end()), dw)
        << "layer " << l;
    if (!db.empty()) {
      EXPECT_EQ(std::vector<float>(grads[l][1].data.span().begin(), grads[l][1].data.span().end()), db)
          << "layer " << l;
    }
    g = std::move(dx);
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, ReluLinks, ::testing::Values(1, 2), kernels::test::thread_name);

}  // namespace
}  // namespace rematch::autodiff
