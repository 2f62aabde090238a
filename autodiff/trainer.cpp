#include "autodiff/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace rematch::autodiff {
namespace {

std::size_t exchange_floats(JoinModel& model, const GradientExchange* exchange) {
  if (exchange == nullptr) return 0;
  std::size_t gradient_floats = 0;
  for (int e = 0; e < model.encoders(); ++e) {
    for (const Tensor* p : model.encoder(e).parameters()) {
      gradient_floats += p->data.size();
    }
  }
  return exchange->buffer_floats(gradient_floats);
}

// The schedule is planned in the budget less the exchange's buffers; an infeasible budget names
// the least one including them.
Solution planned(const Executor& executor, const TrainerOptions& options) {
  try {
    return solve(executor.graph(), double(executor.schedule_budget()), options.solve);
  } catch (const InfeasibleBudget& e) {
    if (executor.reserved() == 0) throw;
    throw InfeasibleBudget(std::string(e.what()) + " (plus " +
                               format_bytes(double(executor.reserved())) +
                               " of communication buffers)",
                           e.min_memory + double(executor.reserved()));
  }
}

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

// Adds, for layers [begin, end) of `encoder`, the gradients of every other branch running it into
// those of its first branch, in branch order (fixed, so results do not depend on the schedule).
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

// [encoder][stage]: the op after which that stage's weight gradients are final, i.e. the last B
// of the stage over the branches running the encoder.
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

JoinModel& with_precision(JoinModel& model, Precision activations) {
  model.set_activation_precision(activations);
  return model;
}

}  // namespace

InputRows input_rows(std::span<const float> values) {
  InputRows rows(values.size(), kernels::heap_allocator(), kernels::Uninitialised{});
  std::copy(values.begin(), values.end(), rows.data());
  return rows;
}

Batch copy_of(const Batch& b) {
  Batch out{{}, b.targets};
  for (const InputRows& rows : b.inputs) out.inputs.push_back(input_rows(rows.span()));
  return out;
}

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

Trainer::Trainer(JoinModel& model, Arena& parameters, const TrainerOptions& options)
    : model_(with_precision(model, options.activations)),
      parameters_(parameters),
      exchange_(options.exchange),
      activations_("activations", options.activation_budget),
      plan_(),
      executor_(model, profile(model, options.profile), activations_,
                kernels::aligned_bytes(exchange_floats(model, options.exchange), sizeof(float))) {
  plan_ = planned(executor_, options);
  executor_.check(plan_.ops);
  if (exchange_ != nullptr) {
    exchange_buffer_ = kernels::AlignedBuffer<float>(exchange_floats(model, exchange_), activations_);
    exchange_->attach(exchange_buffer_.span());
  }
  for (int j = 0; j < model_.branches(); ++j) {
    grads_.push_back(model_.encoder_of(j).make_gradients(parameters_));
  }
  for (int e = 0; e < model_.encoders(); ++e) {
    optimizers_.emplace_back(options.optimizer, model_.encoder(e).parameters(), parameters_);
  }
  if (options.calibrate) calibrate_plan(options);
}

void Trainer::calibrate_plan(const TrainerOptions& options) {
  std::vector<Tensor> inputs;  // zeros: kernel times do not depend on the values
  for (int j = 0; j < model_.branches(); ++j) {
    inputs.emplace_back(model_.encoder_of(j).input_shape(0), false, activations_);
  }
  const StepResult timed = executor_.run(plan_.ops, std::move(inputs), grads_);
  executor_.set_graph(calibrate(executor_.graph(), model_, plan_.ops, {timed.op_seconds}));
  plan_ = planned(executor_, options);
  executor_.check(plan_.ops);
}

std::vector<Tensor> Trainer::load_inputs(Batch& batch) {
  if (static_cast<int>(batch.inputs.size()) != model_.branches()) {
    throw std::invalid_argument("batch: " + std::to_string(batch.inputs.size()) +
                                " inputs for a model of " + std::to_string(model_.branches()) +
                                " branches");
  }
  std::vector<Tensor> inputs;
  for (int j = 0; j < model_.branches(); ++j) {
    const BlockShape& shape = model_.encoder_of(j).input_shape(0);
    if (static_cast<std::int64_t>(batch.inputs[j].size()) != shape.rows * shape.cols) {
      throw std::invalid_argument("batch: branch " + std::to_string(j) + " input has " +
                                  std::to_string(batch.inputs[j].size()) + " values, expected " +
                                  std::to_string(shape.rows * shape.cols));
    }
    if (shape.row_major()) {
      // The rows are the tensor: the arena counts their storage from here, no pass copies it.
      batch.inputs[j].transfer_to(activations_);
      inputs.emplace_back().shape = shape;
      inputs.back().data = std::move(batch.inputs[j]);
      continue;
    }
    inputs.emplace_back(shape, false, activations_, kernels::Uninitialised{});
    kernels::pack_into(batch.inputs[j].span(), inputs.back());
    batch.inputs[j] = {};
  }
  return inputs;
}

void Trainer::sum_branches(int encoder, int stage) {
  const auto [begin, end] = stage_layer_range(model_.encoder(encoder), stage);
  sum_branch_layers(model_, grads_, encoder, begin, end);
}

std::vector<std::span<float>> Trainer::stage_gradients(int encoder, int stage) {
  const auto [begin, end] = stage_layer_range(model_.encoder(encoder), stage);
  std::vector<std::span<float>> out;
  for (int l = begin; l < end; ++l) {
    for (Tensor& g : grads_[first_branch(model_, encoder)][l]) out.push_back(g.data.span());
  }
  return out;
}

void Trainer::update_stage(int encoder, int stage, bool branch_summed) {
  const auto [begin, end] = stage_layer_range(model_.encoder(encoder), stage);
  const int first = first_branch(model_, encoder);
  std::size_t offset = 0;  // the stage's first parameter in the encoder's parameters() order
  for (int l = 0; l < begin; ++l) offset += grads_[first][l].size();
  // Per parameter, its gradient of every branch running the encoder in branch order, or the first
  // branch's alone where it already holds their sum.
  std::vector<std::vector<const Tensor*>> parts;
  for (int l = begin; l < end; ++l) {
    for (std::size_t p = 0; p < grads_[first][l].size(); ++p) {
      parts.push_back({&grads_[first][l][p]});
      for (int j = first + 1; j < model_.branches() && !branch_summed; ++j) {
        if (model_.encoder_index(j) == encoder) parts.back().push_back(&grads_[j][l][p]);
      }
    }
  }
  optimizers_[encoder].update(offset, parts);
}

StepResult Trainer::step(Batch batch) {
  model_.loss().set_targets(std::move(batch.targets));
  model_.set_step(steps_++);
  const auto finalizing = finalizing_ops(plan_.ops, model_);
  for (Optimizer& optimizer : optimizers_) optimizer.begin_step();
  if (exchange_ == nullptr) {
    // Each stage is updated right after the backward that completes its gradients: the last
    // branch's gradient is then as fresh in cache as it gets, and no later op of the step reads
    // the stage's weights (every forward of a stage precedes its backward on the same branch).
    auto update_final = [&](std::size_t index) {
      const Op& op = plan_.ops[index];
      const int e = model_.encoder_index(op.branch);
      if (finalizing[e][op.stage] == index) update_stage(e, op.stage, false);
    };
    return executor_.run(plan_.ops, load_inputs(batch), grads_, update_final);
  }
  std::vector<std::vector<bool>> final(finalizing.size());
  for (std::size_t e = 0; e < finalizing.size(); ++e) final[e].assign(finalizing[e].size(), false);
  // The exchange takes the stages in a fixed order (encoders in order, stages last to first),
  // whatever order this process's schedule finalizes them in.
  int next_encoder = 0, next_stage = static_cast<int>(final[0].size()) - 1;
  // The exchange sends branch-summed stages.
  auto on_backward = [&](std::size_t index) {
    const Op& op = plan_.ops[index];
    const int e = model_.encoder_index(op.branch);
    if (finalizing[e][op.stage] == index) {
      sum_branches(e, op.stage);
      final[e][op.stage] = true;
      while (next_encoder < model_.encoders() && final[next_encoder][next_stage]) {
        exchange_->stage_final(stage_gradients(next_encoder, next_stage));
        if (--next_stage < 0 && ++next_encoder < model_.encoders()) {
          next_stage = static_cast<int>(final[next_encoder].size()) - 1;
        }
      }
    }
    exchange_->progress();
  };
  StepResult result = executor_.run(plan_.ops, load_inputs(batch), grads_, on_backward);
  const auto wait_start = std::chrono::steady_clock::now();
  result.loss = exchange_->mean(result.loss);
  result.exposed_communication = exchange_->finish();
  result.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
  // The update waits for the exchanged sums, all of which finish() delivers at once.
  for (int e = 0; e < model_.encoders(); ++e) {
    for (int stage = 0; stage < model_.encoder(e).stages(); ++stage) update_stage(e, stage, true);
  }
  return result;
}

std::vector<float> Trainer::embed(int branch, std::span<const float> inputs) {
  Encoder& encoder = model_.encoder_of(branch);
  const BlockShape& in = encoder.input_shape(0);
  if (static_cast<std::int64_t>(inputs.size()) != in.rows * in.cols) {
    throw std::invalid_argument("embed: expected " + std::to_string(in.rows * in.cols) + " values");
  }
  model_.set_scratch_allocator(&activations_.transient());
  model_.set_step(Layer::kInference);
  Tensor x(in, false, activations_, kernels::Uninitialised{});
  kernels::pack_into(inputs, x);
  x = encoder.forward_all(std::move(x), activations_);
  model_.set_scratch_allocator(nullptr);
  const BlockShape& out = x.shape;
  std::vector<float> plain(std::size_t(out.rows * out.cols));
  kernels::unpack(x, plain);
  return plain;
}

}  // namespace rematch::autodiff
