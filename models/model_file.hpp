// Model files: a JSON description of a join network (its branches' inputs, its encoders as lists
// of layers grouped into stages, which branches share an encoder, and the loss), parsed into a
// validated ModelDescription and built into the runtime's autodiff::JoinModel. The format is
// documented in docs/model-files.md; examples/models/ holds the zoo's models as files.
//
// Everything a file can get wrong is refused by the parser, before anything is allocated: a
// ModelFileError names the file, the path inside it (`encoders.text.layers[3].dilation`) and
// what was expected, including shapes that do not chain (a conv output of length <= 0, a feature
// count the next layer does not read, branches whose embeddings differ at the loss).
//
// The zoo names (siamese-mlp, siamese-conv, triplet-mlp, cross-modal) are shortcuts: zoo_document
// writes their model-file document, which goes through the same parser and builder.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autodiff/model.hpp"
#include "kernels/conv1d.hpp"
#include "models/zoo.hpp"

namespace rematch::models {

// "FILE: PATH: what was expected, what was found".
class ModelFileError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// What one sample of a branch (or what flows between two layers) is: a feature vector, or a
// sequence of `length` positions with `channels` values each (stored channel-major, NCW).
struct TensorDims {
  std::int64_t features = 0;               // features, when not a sequence
  std::int64_t channels = 0, length = 0;   // a sequence when channels > 0
  bool is_sequence() const { return channels > 0; }
  std::int64_t values() const { return is_sequence() ? channels * length : features; }
  bool operator==(const TensorDims&) const = default;
};
std::string to_string(const TensorDims& dims);  // "784 features", "28 channels x 28"

enum class LayerKind { linear, conv1d, relu, gelu, layer_norm, dropout, max_pool1d, avg_pool1d,
                       global_avg_pool, global_max_pool, flatten, residual };
std::string to_string(LayerKind kind);  // the file's spelling: "linear", "layer_norm", ...

struct LayerSpec {
  LayerKind kind = LayerKind::linear;
  std::string path;          // where it sits in the file, for messages: encoders.mlp.layers[3]
  TensorDims in, out;        // per sample
  std::int64_t units = 0;    // linear: output features; conv1d: output channels
  bool bias = true;          // linear, conv1d
  bool relu = false;         // linear, conv1d: a fused ReLU ("activation": "relu")
  std::int64_t taps = 1, dilation = 1;          // conv1d
  kernels::Padding padding = kernels::Padding::same;
  std::int64_t window = 2, stride = 2;          // pools
  float p = 0.5f;                               // dropout
  float eps = 1e-5f;                            // layer norm
  std::vector<LayerSpec> body;                  // residual: y = x + body(x)
};

struct EncoderSpec {
  std::string name;              // the key under "encoders"
  TensorDims input;              // what every branch running it feeds it
  std::vector<LayerSpec> layers;
  std::vector<int> stage_ends;   // per stage, one past its last layer (autodiff::Encoder's form)
  TensorDims output() const { return layers.back().out; }
};

struct BranchSpec {
  std::string name;
  int encoder = 0;               // index into ModelDescription::encoders
};

enum class Task {
  pairs,       // 2 branches; contrastive (targets 1/0) or cosine-embedding (targets +1/-1) loss
  triplets,    // 3 branches (anchor, positive, negative); triplet margin loss
  classifier,  // 1 branch; softmax cross-entropy over `classes` logits, targets class indices
};

struct ModelDescription {
  std::string source;            // the file (or "zoo:NAME") named in errors
  std::string name;
  std::vector<EncoderSpec> encoders;   // in order of first use by the branches
  std::vector<BranchSpec> branches;
  autodiff::LossKind loss = autodiff::LossKind::contrastive;
  float margin = 1.0f;
  Task task = Task::pairs;
  std::int64_t classes = 0;      // classifier: the encoder's output features

  const EncoderSpec& encoder_of(int branch) const { return encoders[branches[branch].encoder]; }
  TensorDims input(int branch) const { return encoder_of(branch).input; }
  TensorDims embedding() const { return encoder_of(0).output(); }
};

// Throws ModelFileError (unreadable file, malformed JSON, or anything parse_model_document refuses).
ModelDescription parse_model_file(const std::string& path);
// `source` names the document in errors.
ModelDescription parse_model_json(const std::string& text, const std::string& source);
ModelDescription parse_model_document(const nlohmann::json& document, const std::string& source);

// The model file of a zoo model at config's sizes (depth, width, embedding, layers_per_stage,
// margin); config.model names it. Throws std::invalid_argument as models::validate does.
nlohmann::json zoo_document(const ModelConfig& config);
bool is_zoo_name(const std::string& name);
// What `--model` names: a zoo shortcut (sized by `zoo_sizes`) or a model file.
ModelDescription load_model(const std::string& zoo_name_or_file, const ModelConfig& zoo_sizes);

// The runtime model for batches of `batch` samples per branch. Weights come from `parameters`
// and are initialised from `seed` (encoder e from seed * 1000 + e; dropout masks are keyed on
// seed, the layer and the step; call JoinModel::set_step(Layer::kInference) to embed without
// dropout). Throws std::invalid_argument for a batch outside [1, 2^24]. With `lengths`, every
// layer with a sequence output masks the padding of rows shorter than the model's length
// (autodiff/sequence_mask.hpp) and the model holds them.
std::unique_ptr<autodiff::JoinModel> build(const ModelDescription& model, std::int64_t batch,
                                           std::uint64_t seed, kernels::Allocator& parameters,
                                           std::shared_ptr<autodiff::SequenceLengths> lengths = {});

// One name per parameter tensor, in the order of JoinModel::encoder(e).parameters() over e:
// encoders.NAME.layers.I.weight / .bias, inside a residual block encoders.NAME.layers.I.body.J.weight.
// Valid numpy / PyTorch state-dict keys. The tensors' rows x cols as the runtime holds them:
// linear weight in x out, conv1d weight (taps * out) x in (tap-major), biases 1 x out, layer
// norm weight (scale) and bias (shift) 1 x features.
std::vector<std::string> parameter_names(const ModelDescription& model);

}  // namespace rematch::models
