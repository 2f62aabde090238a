#include "autodiff/trainer.hpp"

#include "autodiff/stage_updates.hpp"

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

StepResult Trainer::step(Batch batch) {
  model_.loss().set_targets(std::move(batch.targets));
  model_.set_step(steps_++);
  std::vector<Tensor> inputs = load_inputs(batch);
  if (exchange_ == nullptr) {
    return executor_.run(plan_.ops, std::move(inputs), grads_,
                         stage_updates(plan_.ops, model_, grads_, optimizers_));
  }
  for (Optimizer& optimizer : optimizers_) optimizer.begin_step();
  const auto finalizing = finalizing_ops(plan_.ops, model_);
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
      sum_stage_branches(model_, grads_, e, op.stage);
      final[e][op.stage] = true;
      while (next_encoder < model_.encoders() && final[next_encoder][next_stage]) {
        exchange_->stage_final(stage_gradients(model_, grads_, next_encoder, next_stage));
        if (--next_stage < 0 && ++next_encoder < model_.encoders()) {
          next_stage = static_cast<int>(final[next_encoder].size()) - 1;
        }
      }
    }
    exchange_->progress();
  };
  StepResult result = executor_.run(plan_.ops, std::move(inputs), grads_, on_backward);
  const auto wait_start = std::chrono::steady_clock::now();
  result.loss = exchange_->mean(result.loss);
  result.exposed_communication = exchange_->finish();
  result.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
  // The update waits for the exchanged sums, all of which finish() delivers at once.
  for (int e = 0; e < model_.encoders(); ++e) {
    for (int stage = 0; stage < model_.encoder(e).stages(); ++stage) {
      update_stage(model_, grads_, optimizers_, e, stage, true);
    }
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
