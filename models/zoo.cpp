#include "models/zoo.hpp"

#include <stdexcept>

#include "autodiff/layers.hpp"

namespace rematch::models {
namespace {

using autodiff::Encoder;
using autodiff::Layer;
constexpr std::int64_t kPixels = kImageSide * kImageSide;

bool is_conv_branch(const ModelConfig& c, int branch) {
  return c.model == "siamese-conv" || (c.model == "cross-modal" && branch == 1);
}

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

std::vector<std::string> model_names() {
  return {"siamese-mlp", "siamese-conv", "triplet-mlp", "cross-modal"};
}

void validate(const ModelConfig& c) {
  bool known = false;
  for (const auto& name : model_names()) known = known || name == c.model;
  if (!known) {
    std::string list;
    for (const auto& name : model_names()) list += (list.empty() ? "" : ", ") + name;
    throw std::invalid_argument("unknown model '" + c.model + "' (expected one of " + list + ")");
  }
  auto positive = [](long long v, const char* field) {
    if (v <= 0) throw std::invalid_argument(std::string(field) + " must be positive, got " + std::to_string(v));
  };
  positive(c.depth, "depth");
  positive(c.width, "width");
  positive(c.batch, "batch");
  positive(c.embedding, "embedding");
  positive(c.layers_per_stage, "layers per stage");
  if (c.depth < 2) throw std::invalid_argument("depth must be at least 2 (hidden layers and a projection)");
  if (!(c.margin >= 0)) throw std::invalid_argument("margin must be non-negative");
}

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

InputLayout input_layout(const ModelConfig& c, int branch) {
  return is_conv_branch(c, branch) ? InputLayout::rows_as_sequence : InputLayout::pixels;
}

std::vector<float> to_input(InputLayout layout, std::vector<float> images, std::int64_t n) {
  if (static_cast<std::int64_t>(images.size()) != n * kPixels) {
    throw std::invalid_argument("to_input: expected " + std::to_string(n) + " images of " +
                                std::to_string(kPixels) + " pixels");
  }
  if (layout == InputLayout::pixels) return images;
  // NCW: channel = column within a row, position = row.
  std::vector<float> out(images.size());
  for (std::int64_t s = 0; s < n; ++s) {
    const float* img = images.data() + s * kPixels;
    float* dst = out.data() + s * kPixels;
    for (std::int64_t row = 0; row < kImageSide; ++row) {
      for (std::int64_t col = 0; col < kImageSide; ++col) dst[col * kImageSide + row] = img[row * kImageSide + col];
    }
  }
  return out;
}

}  // namespace rematch::models
