#include "autodiff/encoder.hpp"

#include <algorithm>
#include <stdexcept>

namespace rematch::autodiff {

std::size_t Saved::bytes() const {
  std::size_t total = output.bytes();
  for (const Stored& t : tape) total += t.bytes();
  return total;
}

Encoder::Encoder(std::string name, std::vector<std::unique_ptr<Layer>> layers,
                 std::vector<int> stage_ends)
    : name_(std::move(name)), layers_(std::move(layers)), stage_ends_(std::move(stage_ends)) {
  if (layers_.empty()) throw std::invalid_argument("encoder " + name_ + ": no layers");
  int previous = 0;
  for (int end : stage_ends_) {
    if (end <= previous) throw std::invalid_argument("encoder " + name_ + ": empty stage");
    previous = end;
  }
  if (stage_ends_.empty() || previous != static_cast<int>(layers_.size())) {
    throw std::invalid_argument("encoder " + name_ + ": stages do not cover every layer");
  }
  for (std::size_t l = 1; l < layers_.size(); ++l) {
    if (!(layers_[l]->input_shape() == layers_[l - 1]->output_shape())) {
      throw std::invalid_argument("encoder " + name_ + ": layer " + std::to_string(l) + " (" +
                                  layers_[l]->name() + ") does not read what layer " +
                                  std::to_string(l - 1) + " writes");
    }
  }
  // Every layer but the last gets its dy from the next layer's dx (in whichever stage and op
  // that runs), so a ReLU's mask can be applied there once.
  for (std::size_t l = 1; l < layers_.size(); ++l) {
    if (layers_[l - 1]->output_is_relu() && layers_[l]->mask_input_gradient()) {
      layers_[l - 1]->take_masked_output_gradient();
    }
  }
}

const BlockShape& Encoder::input_shape(int stage) const {
  return layers_[first_layer(stage)]->input_shape();
}

const BlockShape& Encoder::output_shape(int stage) const {
  return layers_[stage_ends_[stage] - 1]->output_shape();
}

std::vector<const Layer*> Encoder::stage_layers(int stage) const {
  std::vector<const Layer*> out;
  for (int l = first_layer(stage); l < stage_ends_[stage]; ++l) out.push_back(layers_[l].get());
  return out;
}

Stored Encoder::forward(int stage, const Stored& x, kernels::Allocator& activations) {
  kernels::Allocator& tmp = scratch(activations);
  Fp32View in = x.view(tmp);
  Tensor current;
  const Tensor* input = &in.get();
  for (int l = first_layer(stage); l < stage_ends_[stage]; ++l) {
    // Only an fp32 stage output is kept as it is made; inner outputs and a bf16 stage's fp32
    // output (rounded into a stored copy) end with the op.
    const bool kept = l + 1 == stage_ends_[stage] && precision_ == Precision::fp32;
    Tensor next(layers_[l]->output_shape(), false, kept ? activations : tmp, kernels::Uninitialised{});
    layers_[l]->forward(*input, next);
    current = std::move(next);  // frees the previous inner activation
    input = &current;
    in = {};
  }
  return store(std::move(current), activations);
}

Saved Encoder::forward_taped(int stage, const Stored& x, kernels::Allocator& activations) {
  Saved saved;
  const int begin = first_layer(stage), end = stage_ends_[stage];
  saved.tape.reserve(end - begin - 1);
  kernels::Allocator& tmp = scratch(activations);
  Fp32View in = x.view(tmp);
  Tensor current;  // the fp32 input of the next layer when the tape keeps a bf16 copy
  const Tensor* input = &in.get();
  for (int l = begin; l < end; ++l) {
    // fp32 outputs are kept (the tape or the stage output); bf16 ones are rounded into copies.
    Tensor next(layers_[l]->output_shape(), false, precision_ == Precision::fp32 ? activations : tmp,
                kernels::Uninitialised{});
    layers_[l]->forward(*input, next);
    in = {};
    if (l + 1 == end) {
      saved.output = store(std::move(next), activations);
    } else if (precision_ == Precision::fp32) {
      saved.tape.push_back(store(std::move(next), activations));
      in = saved.tape.back().view(tmp);
      input = &in.get();
    } else {
      // Inner outputs feed the next layer unrounded, as in the untaped forward: only stored
      // values are rounded, and a stage's output is the same whichever forward made it.
      saved.tape.push_back(Stored::bf16_copy(next, activations));
      current = std::move(next);
      input = &current;
    }
  }
  return saved;
}

Stored Encoder::backward(int stage, const Stored& x, Saved xbar, Stored dy, bool need_dx,
                         kernels::Allocator& activations, Gradients& grads) {
  const int begin = first_layer(stage), end = stage_ends_[stage];
  kernels::Allocator& tmp = scratch(activations);
  Tensor g = std::move(dy).take(tmp);
  for (int l = end - 1; l >= begin; --l) {
    const Layer& layer = *layers_[l];
    const Stored& in = l == begin ? x : xbar.tape[l - begin - 1];
    // Layer l's output is read by no later backward: the view takes it (a bf16 one is freed
    // once widened), or it is freed now.
    Stored& out = l + 1 == end ? xbar.output : xbar.tape[l - begin];
    const Fp32View y_view = layer.backward_reads_output() ? Fp32View(std::move(out).take(tmp)) : Fp32View();
    out = {};
    const Fp32View x_view = layer.backward_reads_input() ? in.view(tmp) : Fp32View();
    // Only an fp32 stage input gradient is kept as it is made (inner ones end with the op).
    const bool kept = l == begin && precision_ == Precision::fp32;
    Tensor dx;
    if (l > begin || need_dx) {
      dx = Tensor(layer.input_shape(), false, kept ? activations : tmp, kernels::Uninitialised{});
    }
    layers_[l]->backward(x_view.get(), y_view.get(), g, dx.data.size() != 0 ? &dx : nullptr, grads[l]);
    g = std::move(dx);
  }
  if (g.data.size() == 0) return {};
  return store(std::move(g), activations);
}

Tensor Encoder::forward_all(Tensor x, kernels::Allocator& activations) {
  Stored current = store(std::move(x), activations);
  for (int i = 0; i < stages(); ++i) current = forward(i, current, activations);
  return std::move(current).take(activations);
}

Gradients Encoder::make_gradients(kernels::Allocator& allocator) const {
  Gradients grads(layers_.size());
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    for (const Tensor* p : layers_[l]->parameters()) grads[l].emplace_back(p->shape, false, allocator);
  }
  return grads;
}

std::vector<Tensor*> Encoder::parameters() {
  std::vector<Tensor*> out;
  for (auto& layer : layers_) {
    for (Tensor* p : layer->parameters()) out.push_back(p);
  }
  return out;
}

std::size_t Encoder::parameter_bytes() const {
  std::size_t total = 0;
  for (const auto& layer : layers_) {
    for (const Tensor* p : layer->parameters()) total += p->data.bytes();
  }
  return total;
}

void Encoder::initialize(std::uint64_t seed) {
  std::uint64_t stream = splitmix(seed);
  for (auto& layer : layers_) layer->initialize(stream);
}

void Encoder::set_step(std::int64_t step) {
  for (auto& layer : layers_) layer->set_step(step);
}

void Encoder::set_scratch_allocator(kernels::Allocator* allocator) {
  scratch_ = allocator;
  for (auto& layer : layers_) layer->set_scratch_allocator(allocator);
}

double Encoder::forward_flops(int stage) const {
  double total = 0;
  for (const Layer* l : stage_layers(stage)) total += l->cost().fwd_flops;
  return total;
}

double Encoder::backward_flops(int stage) const {
  double total = 0;
  for (const Layer* l : stage_layers(stage)) total += l->cost().bwd_data_flops + l->cost().bwd_weights_flops;
  return total;
}

}  // namespace rematch::autodiff
