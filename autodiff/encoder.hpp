// An encoder is one branch of a join model: a sequence of layers cut into stages, the unit the
// scheduler plans with. Stage i maps x_i to x_{i+1} (docs/model.md#graphs); a stage runs either
// with its tape (F_all: keeps the outputs of its inner layers for its backward) or without
// (F_ck / F_none: keeps only its output).
//
// What a stage keeps (its output, its tape, its input gradient) is Stored in the encoder's
// precision (autodiff/stored.hpp); its layers compute in fp32.
//
// Siamese branches share one Encoder object, hence one set of weights; each branch writes its
// own Gradients, which the trainer sums in branch order (a fixed order, so results do not depend
// on the schedule).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autodiff/layer.hpp"
#include "autodiff/stored.hpp"

namespace rematch::autodiff {

// xbar_{i+1}: what F_all of stage i keeps.
struct Saved {
  Stored output;             // x_{i+1}
  std::vector<Stored> tape;  // outputs of the stage's layers but the last, in layer order
  std::size_t bytes() const;
};

// Per layer of an encoder, gradients of that layer's parameters (Layer::parameters() order).
using Gradients = std::vector<std::vector<Tensor>>;

class Encoder {
 public:
  // stage_ends: for each stage, one past its last layer (increasing, last == layers.size()).
  Encoder(std::string name, std::vector<std::unique_ptr<Layer>> layers, std::vector<int> stage_ends);

  const std::string& name() const { return name_; }
  int stages() const { return static_cast<int>(stage_ends_.size()); }
  const BlockShape& input_shape(int stage) const;   // x_stage
  const BlockShape& output_shape(int stage) const;  // x_{stage+1}
  std::vector<const Layer*> stage_layers(int stage) const;

  // What stages keep: fp32 (the default) or bf16. Set before profiling: it changes sizes.
  void set_precision(Precision precision) { precision_ = precision; }
  Precision precision() const { return precision_; }
  // t kept in this encoder's precision (a stage input x_0, a loss gradient y_n).
  Stored store(Tensor t, kernels::Allocator& allocator) const {
    return Stored(std::move(t), precision_, allocator);
  }

  // F_ck / F_none: the output alone; inner activations are freed as soon as the next is made.
  Stored forward(int stage, const Stored& x, kernels::Allocator& activations);
  // F_all.
  Saved forward_taped(int stage, const Stored& x, kernels::Allocator& activations);
  // B: consumes xbar_{i+1} and dy = y_{i+1}; returns y_i, or nothing unless need_dx.
  // Writes this stage's parameter gradients into `grads`.
  Stored backward(int stage, const Stored& x, Saved xbar, Stored dy, bool need_dx,
                  kernels::Allocator& activations, Gradients& grads);
  // Every stage's forward without a tape, from x_0 (kept in this precision first, as a step
  // keeps it) to the output in fp32: inference.
  Tensor forward_all(Tensor x, kernels::Allocator& activations);

  // Zeroed gradient buffers for every parameter.
  Gradients make_gradients(kernels::Allocator& allocator) const;
  // Every parameter tensor, layer by layer.
  std::vector<Tensor*> parameters();
  std::size_t parameter_bytes() const;
  // He (Kaiming) uniform weights, U(-sqrt(6/fan_in), sqrt(6/fan_in)), zero biases: activations
  // keep their scale through deep ReLU stacks (PyTorch's default, bound 1/sqrt(fan_in), shrinks
  // them about sixfold per layer, and a 48-layer encoder then outputs zeros). The generator is
  // counter-based: the same seed gives the same weights on every machine and thread count.
  void initialize(std::uint64_t seed);
  // Where the layers' kernels take their per-pass scratch, and where the encoder puts what lives
  // only inside one op (widened bf16 copies, inner outputs and gradients of a stage); null: the
  // allocator each call is given.
  void set_scratch_allocator(kernels::Allocator* allocator);
  // Layer::set_step on every layer.
  void set_step(std::int64_t step);

  double forward_flops(int stage) const;
  double backward_flops(int stage) const;  // data and weight gradients

 private:
  int first_layer(int stage) const { return stage == 0 ? 0 : stage_ends_[stage - 1]; }
  kernels::Allocator& scratch(kernels::Allocator& activations) const {
    return scratch_ != nullptr ? *scratch_ : activations;
  }

  std::string name_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<int> stage_ends_;
  Precision precision_ = Precision::fp32;
  kernels::Allocator* scratch_ = nullptr;
};

}  // namespace rematch::autodiff
