#include "models/zoo.hpp"

#include <stdexcept>
#include <utility>

#include "models/model_file.hpp"

namespace rematch::models {
namespace {

using nlohmann::json;
constexpr std::int64_t kPixels = kImageSide * kImageSide;

bool is_conv_branch(const ModelConfig& c, int branch) {
  return c.model == "siamese-conv" || (c.model == "cross-modal" && branch == 1);
}

json linear(std::int64_t out, bool relu) {
  return {{"type", "linear"}, {"out", out}, {"activation", relu ? "relu" : "none"}};
}

json mlp_encoder(const ModelConfig& c) {
  json layers = json::array();
  for (int l = 0; l < c.depth; ++l) {
    const bool last = l + 1 == c.depth;
    layers.push_back(linear(last ? c.embedding : c.width, !last));
  }
  return {{"layers_per_stage", c.layers_per_stage}, {"layers", layers}};
}

// Units (a conv1d and its ReLU; the flatten and the projection) grouped layers_per_stage to a stage.
json conv_encoder(const ModelConfig& c) {
  json layers = json::array(), stages = json::array();
  const int units = c.depth;
  int in_stage = 0;
  for (int u = 0; u < units; ++u) {
    if (u + 1 < units) {
      layers.push_back({{"type", "conv1d"}, {"out", c.width}, {"taps", 3},
                        {"dilation", std::int64_t{1} << (u % 4)}, {"padding", "same"}});
      layers.push_back({{"type", "relu"}});
    } else {
      layers.push_back({{"type", "flatten"}});
      layers.push_back(linear(c.embedding, false));
    }
    in_stage += 2;
    if ((u + 1) % c.layers_per_stage == 0 || u + 1 == units) {
      stages.push_back(in_stage);
      in_stage = 0;
    }
  }
  return {{"stages", stages}, {"layers", layers}};
}

json input_of(const ModelConfig& c, int branch) {
  if (is_conv_branch(c, branch)) return {{"channels", kImageSide}, {"length", kImageSide}};
  return {{"features", kPixels}};
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
  return build(parse_model_document(zoo_document(c), "zoo:" + c.model), c.batch, c.seed, parameters);
}

json zoo_document(const ModelConfig& c) {
  validate(c);
  json doc;
  doc["name"] = c.model;
  std::vector<std::string> names = {"left", "right"};
  std::string loss = "contrastive";
  const std::string encoder = c.model == "siamese-conv" ? "conv1d" : "mlp";
  if (c.model == "siamese-mlp" || c.model == "siamese-conv") {
    doc["encoders"][encoder] = encoder == "mlp" ? mlp_encoder(c) : conv_encoder(c);
  } else if (c.model == "triplet-mlp") {
    names = {"anchor", "positive", "negative"};
    loss = "triplet_margin";
    doc["encoders"]["mlp"] = mlp_encoder(c);
  } else {
    names = {"pixels", "rows"};
    loss = "cosine_embedding";
    doc["encoders"]["mlp"] = mlp_encoder(c);
    doc["encoders"]["conv1d"] = conv_encoder(c);
  }
  json branches = json::array();
  for (int j = 0; j < int(names.size()); ++j) {
    const bool conv = is_conv_branch(c, j);
    branches.push_back({{"name", names[j]}, {"input", input_of(c, j)},
                        {"encoder", conv ? "conv1d" : "mlp"}});
  }
  doc["branches"] = branches;
  doc["loss"] = {{"type", loss}, {"margin", double(c.margin)}};
  return doc;
}

void to_input(InputLayout layout, std::span<float> images, std::int64_t n) {
  if (static_cast<std::int64_t>(images.size()) != n * kPixels) {
    throw std::invalid_argument("to_input: expected " + std::to_string(n) + " images of " +
                                std::to_string(kPixels) + " pixels");
  }
  if (layout == InputLayout::pixels) return;
  // NCW: channel = column within a row, position = row. A square image transposes in place.
  for (std::int64_t s = 0; s < n; ++s) {
    float* img = images.data() + s * kPixels;
    for (std::int64_t row = 0; row < kImageSide; ++row) {
      for (std::int64_t col = row + 1; col < kImageSide; ++col) std::swap(img[row * kImageSide + col], img[col * kImageSide + row]);
    }
  }
}

}  // namespace rematch::models
