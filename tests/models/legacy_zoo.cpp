// The zoo's builder as it was before models became model files, kept verbatim as the reference
// the model-file zoo must train bitwise like.
#include "tests/models/legacy_zoo.hpp"

#include "autodiff/layers.hpp"

namespace rematch::models::legacy {
namespace {

using models::kImageSide;

using autodiff::Encoder;
using autodiff::Layer;
constexpr std::int64_t kPixels = kImageSide * kImageSide;

std::unique_ptr<Layer> fc(const ModelConfig& c, std::int64_t in, std::int64_t out, bool relu,
                          kernels::Allocator& parameters) {
  kernels::FcDesc d;
  d.n = c.batch;
  d.c = in;
  d.k = out;
  d.activation = relu ? kernels::Activation::relu : kernels::Activation::none;
  return std::make_unique<autodiff::FcLayer>(d, parameters);
}

// Units (one or two layers each) into stages of layers_per_stage units.
std::unique_ptr<Encoder> assemble(const std::string& name, const ModelConfig& c,
                                  std::vector<std::vector<std::unique_ptr<Layer>>> units) {
  std::vector<std::unique_ptr<Layer>> layers;
  std::vector<int> stage_ends;
  for (std::size_t u = 0; u < units.size(); ++u) {
    for (auto& layer : units[u]) layers.push_back(std::move(layer));
    if ((u + 1) % std::size_t(c.layers_per_stage) == 0 || u + 1 == units.size()) {
      stage_ends.push_back(static_cast<int>(layers.size()));
    }
  }
  return std::make_unique<Encoder>(name, std::move(layers), std::move(stage_ends));
}

std::unique_ptr<Encoder> mlp_encoder(const ModelConfig& c, kernels::Allocator& parameters) {
  std::vector<std::vector<std::unique_ptr<Layer>>> units;
  for (int l = 0; l < c.depth; ++l) {
    const std::int64_t in = l == 0 ? kPixels : c.width;
    const bool last = l + 1 == c.depth;
    units.emplace_back();
    units.back().push_back(fc(c, in, last ? c.embedding : c.width, !last, parameters));
  }
  return assemble("mlp", c, std::move(units));
}

std::unique_ptr<Encoder> conv_encoder(const ModelConfig& c, kernels::Allocator& parameters) {
  std::vector<std::vector<std::unique_ptr<Layer>>> units;
  for (int l = 0; l + 1 < c.depth; ++l) {
    kernels::Conv1dDesc d;
    d.n = c.batch;
    d.c = l == 0 ? kImageSide : c.width;
    d.k = c.width;
    d.width = kImageSide;
    d.taps = 3;
    d.dilation = std::int64_t{1} << (l % 4);
    units.emplace_back();
    units.back().push_back(std::make_unique<autodiff::Conv1dLayer>(d, parameters));
    units.back().push_back(std::make_unique<autodiff::ReluLayer>(units.back()[0]->output_shape()));
  }
  auto projection = fc(c, c.width * kImageSide, c.embedding, false, parameters);
  units.emplace_back();
  units.back().push_back(std::make_unique<autodiff::ToBlockedLayer>(projection->input_shape()));
  units.back().push_back(std::move(projection));
  return assemble("conv1d", c, std::move(units));
}

}  // namespace

std::unique_ptr<autodiff::JoinModel> build_model(const ModelConfig& c,
                                                 kernels::Allocator& parameters) {
  validate(c);
  std::vector<std::unique_ptr<Encoder>> encoders;
  std::vector<int> branch_encoder;
  autodiff::LossKind loss = autodiff::LossKind::contrastive;
  if (c.model == "siamese-mlp") {
    encoders.push_back(mlp_encoder(c, parameters));
    branch_encoder = {0, 0};
  } else if (c.model == "siamese-conv") {
    encoders.push_back(conv_encoder(c, parameters));
    branch_encoder = {0, 0};
  } else if (c.model == "triplet-mlp") {
    encoders.push_back(mlp_encoder(c, parameters));
    branch_encoder = {0, 0, 0};
    loss = autodiff::LossKind::triplet;
  } else {
    encoders.push_back(mlp_encoder(c, parameters));
    encoders.push_back(conv_encoder(c, parameters));
    branch_encoder = {0, 1};
    loss = autodiff::LossKind::cosine;
  }
  for (std::size_t e = 0; e < encoders.size(); ++e) encoders[e]->initialize(c.seed * 1000 + e);
  return std::make_unique<autodiff::JoinModel>(c.model, std::move(encoders), branch_encoder,
                                               autodiff::LossHead(loss, c.margin));
}

}  // namespace rematch::models::legacy
