#include "autodiff/encoder.hpp"

#include <algorithm>
#include <stdexcept>

namespace rematch::autodiff {

std::size_t Saved::bytes() const {
  std::size_t total = output.data.bytes();
  for (const Tensor& t : tape) total += t.data.bytes();
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

Tensor Encoder::forward(int stage, const Tensor& x, kernels::Allocator& activations) {
  Tensor current;
  const Tensor* input = &x;
  for (int l = first_layer(stage); l < stage_ends_[stage]; ++l) {
    Tensor next(layers_[l]->output_shape(), false, activations);
    layers_[l]->forward(*input, next);
    current = std::move(next);  // frees the previous inner activation
    input = &current;
  }
  return current;
}

Saved Encoder::forward_taped(int stage, const Tensor& x, kernels::Allocator& activations) {
  Saved saved;
  const int begin = first_layer(stage), end = stage_ends_[stage];
  saved.tape.reserve(end - begin - 1);
  const Tensor* input = &x;
  for (int l = begin; l < end; ++l) {
    Tensor next(layers_[l]->output_shape(), false, activations);
    layers_[l]->forward(*input, next);
    if (l + 1 == end) {
      saved.output = std::move(next);
    } else {
      saved.tape.push_back(std::move(next));
      input = &saved.tape.back();
    }
  }
  return saved;
}

Tensor Encoder::backward(int stage, const Tensor& x, Saved xbar, Tensor dy, bool need_dx,
                         kernels::Allocator& activations, Gradients& grads) {
  const int begin = first_layer(stage), end = stage_ends_[stage];
  for (int l = end - 1; l >= begin; --l) {
    const Tensor& in = l == begin ? x : xbar.tape[l - begin - 1];
    const Tensor& out = l + 1 == end ? xbar.output : xbar.tape[l - begin];
    Tensor dx;
    if (l > begin || need_dx) dx = Tensor(layers_[l]->input_shape(), false, activations);
    layers_[l]->backward(in, out, dy, dx.data.size() != 0 ? &dx : nullptr, grads[l]);
    dy = std::move(dx);
    // Layer l's output is read by no later backward: free it now.
    if (l + 1 < end) xbar.tape[l - begin] = {};
  }
  return dy;
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
