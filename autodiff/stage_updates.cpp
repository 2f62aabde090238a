#include "autodiff/stage_updates.hpp"

#include <cstdint>
#include <stdexcept>
#include <utility>

namespace rematch::autodiff {
namespace {

// Layers [first, second) of an encoder's stage.
std::pair<int, int> stage_layer_range(const Encoder& encoder, int stage) {
  int first = 0;
  for (int s = 0; s < stage; ++s) first += static_cast<int>(encoder.stage_layers(s).size());
  return {first, first + static_cast<int>(encoder.stage_layers(stage).size())};
}

int first_branch(const JoinModel& model, int encoder) {
  for (int j = 0; j < model.branches(); ++j) {
    if (model.encoder_index(j) == encoder) return j;
  }
  throw std::logic_error("model: encoder without a branch");
}

// sum_shared_gradients for layers [begin, end) of `encoder`.
void sum_branch_layers(const JoinModel& model, std::vector<Gradients>& grads, int encoder, int begin, int end) {
  const int first = first_branch(model, encoder);
  for (int j = first + 1; j < model.branches(); ++j) {
    if (model.encoder_index(j) != encoder) continue;
    for (int l = begin; l < end; ++l) {
      for (std::size_t p = 0; p < grads[first][l].size(); ++p) {
        float* total = grads[first][l][p].data.data();
        const float* add = grads[j][l][p].data.data();
        const auto n = static_cast<std::int64_t>(grads[first][l][p].data.size());
#pragma omp parallel for schedule(static)
        for (std::int64_t i = 0; i < n; ++i) total[i] += add[i];
      }
    }
  }
}

}  // namespace

std::vector<std::vector<const Tensor*>> sum_shared_gradients(const JoinModel& model,
                                                             std::vector<Gradients>& grads) {
  std::vector<std::vector<const Tensor*>> out;
  for (int e = 0; e < model.encoders(); ++e) {
    const int first = first_branch(model, e);
    sum_branch_layers(model, grads, e, 0, static_cast<int>(grads[first].size()));
    std::vector<const Tensor*> flat;
    for (const auto& layer : grads[first]) {
      for (const Tensor& g : layer) flat.push_back(&g);
    }
    out.push_back(std::move(flat));
  }
  return out;
}

void sum_stage_branches(const JoinModel& model, std::vector<Gradients>& grads, int encoder, int stage) {
  const auto [begin, end] = stage_layer_range(model.encoder(encoder), stage);
  sum_branch_layers(model, grads, encoder, begin, end);
}

std::vector<std::span<float>> stage_gradients(const JoinModel& model, std::vector<Gradients>& grads,
                                              int encoder, int stage) {
  const auto [begin, end] = stage_layer_range(model.encoder(encoder), stage);
  std::vector<std::span<float>> out;
  for (int l = begin; l < end; ++l) {
    for (Tensor& g : grads[first_branch(model, encoder)][l]) out.push_back(g.data.span());
  }
  return out;
}

std::vector<std::vector<std::size_t>> finalizing_ops(const Schedule& schedule, const JoinModel& model) {
  std::vector<std::vector<std::size_t>> last(model.encoders());
  for (int j = 0; j < model.branches(); ++j) {
    last[model.encoder_index(j)].resize(model.encoder_of(j).stages(), 0);
  }
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    if (schedule[i].kind == OpKind::B) last[model.encoder_index(schedule[i].branch)][schedule[i].stage] = i;
  }
  return last;
}

void update_stage(const JoinModel& model, const std::vector<Gradients>& grads,
                  std::vector<Optimizer>& optimizers, int encoder, int stage, bool branch_summed) {
  const auto [begin, end] = stage_layer_range(model.encoder(encoder), stage);
  const int first = first_branch(model, encoder);
  std::size_t offset = 0;  // the stage's first parameter in the encoder's parameters() order
  for (int l = 0; l < begin; ++l) offset += grads[first][l].size();
  // Per parameter, its gradient of every branch running the encoder in branch order, or the first
  // branch's alone where it already holds their sum.
  std::vector<std::vector<const Tensor*>> parts;
  for (int l = begin; l < end; ++l) {
    for (std::size_t p = 0; p < grads[first][l].size(); ++p) {
      parts.push_back({&grads[first][l][p]});
      for (int j = first + 1; j < model.branches() && !branch_summed; ++j) {
        if (model.encoder_index(j) == encoder) parts.back().push_back(&grads[j][l][p]);
      }
    }
  }
  optimizers[encoder].update(offset, parts);
}

std::function<void(std::size_t)> stage_updates(const Schedule& schedule, const JoinModel& model,
                                               const std::vector<Gradients>& grads,
                                               std::vector<Optimizer>& optimizers) {
  for (Optimizer& optimizer : optimizers) optimizer.begin_step();
  return [&schedule, &model, &grads, &optimizers, finalizing = finalizing_ops(schedule, model)](std::size_t index) {
    const Op& op = schedule[index];
    const int e = model.encoder_index(op.branch);
    if (finalizing[e][op.stage] == index) update_stage(model, grads, optimizers, e, op.stage, false);
  };
}

}  // namespace rematch::autodiff
