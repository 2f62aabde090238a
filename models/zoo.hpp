// The model zoo: siamese, triplet and cross-modal networks over 28 x 28 images, shortcuts for
// model files (model_file.hpp; examples/models/ holds them at the default sizes).
//
//   siamese-mlp   2 branches, one shared MLP encoder, contrastive loss
//   siamese-conv  2 branches, one shared dilated-conv1d encoder, contrastive loss
//   triplet-mlp   3 branches (anchor, positive, negative), one shared MLP, triplet margin loss
//   cross-modal   an MLP over pixels and a conv1d encoder over image rows, cosine-embedding loss
//
// MLP encoder: depth FC layers, 784 -> width -> ... -> width -> embedding, ReLU between.
// Conv encoder: the image read as a sequence of 28 rows (28 channels of 28 positions); depth-1
//   conv1d layers of `width` channels, taps 3, 'same' padding, dilations 1, 2, 4, 8, 1, ...,
//   each with a ReLU, then a linear projection of the flattened sequence to the embedding.
// Each unit (an FC layer, or a conv1d and its ReLU) belongs to one stage; layers_per_stage
// units form a stage.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "autodiff/model.hpp"

namespace rematch::models {

struct ModelConfig {
  std::string model = "siamese-mlp";
  int depth = 8;              // layers per encoder, including the projection to the embedding
  int width = 512;            // hidden features (MLP) or channels (conv)
  int batch = 256;            // samples per branch and step
  int embedding = 64;         // output features of every encoder
  int layers_per_stage = 1;
  float margin = 1.0f;        // of the loss
  std::uint64_t seed = 1;     // weight initialisation
};

std::vector<std::string> model_names();

// Throws std::invalid_argument naming the offending field.
void validate(const ModelConfig& config);

// The zoo model's model file (model_file.hpp: zoo_document) parsed and built: weights (and
// nothing else) are allocated from `parameters`.
std::unique_ptr<autodiff::JoinModel> build_model(const ModelConfig& config,
                                                 kernels::Allocator& parameters);

// How a branch reads an image: its pixels row by row (784 features), or as a sequence of rows,
// NCW with the 28 pixels of a row as channels (28 channels x 28).
enum class InputLayout { pixels, rows_as_sequence };
// images: n x 784 row-major pixels, rewritten in place as n rows of the branch's plain input
// layout (the pixel layout is those rows as they are).
void to_input(InputLayout layout, std::span<float> images, std::int64_t n);

inline constexpr std::int64_t kImageSide = 28;

}  // namespace rematch::models
