// The library call "train this model within M bytes": profile the model on the real kernels,
// solve for the least-time schedule whose peak fits M, check it, and run training steps with
// every activation in an arena of M bytes.
//
//   autodiff::Arena weights("parameters");
//   auto model = models::siamese_mlp(config, weights);        // see models/zoo.hpp
//   autodiff::Trainer trainer(*model, weights, {.activation_budget = 2ull << 30});
//   for (...) trainer.step(batch);                              // StepResult: loss, time, peak
//
// M bounds the step's activations, saved tensors, activation gradients and kernel scratch;
// TrainerOptions::activations = Precision::bf16 keeps what steps hold between ops at half size.
// Weights, their gradients and optimizer state live in the `parameters` arena, reported apart.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "autodiff/arena.hpp"
#include "autodiff/executor.hpp"
#include "autodiff/gradient_exchange.hpp"
#include "autodiff/model.hpp"
#include "autodiff/optimizer.hpp"
#include "autodiff/profiler.hpp"
#include "scheduler/solver.hpp"

namespace rematch::autodiff {

struct TrainerOptions {
  std::size_t activation_budget = 0;  // bytes
  SolveOptions solve;                 // solver name and resolution
  OptimizerConfig optimizer;
  ProfileOptions profile;
  // What steps keep between ops (autodiff/stored.hpp): the model's encoders are set to it
  // before profiling.
  Precision activations = Precision::fp32;
  // Run one step of the plan on placeholder inputs, take its measured op times as the stage
  // times (profiler.hpp: calibrate) and plan again with them.
  bool calibrate = true;
  // Data parallelism: sums the weight gradients over the processes before each update (not
  // owned; null for a one-process run). Its buffers are reserved in the activation arena.
  GradientExchange* exchange = nullptr;
};

// A branch's input rows in the encoder's plain input layout (batch x features, row-major), in
// 64-byte aligned storage. Where the encoder's first layer reads its input in that very layout
// (kernels::BlockShape::row_major: an MLP whose first layer is narrow, on a batch the row blocks
// divide), a step takes this storage as its input tensor without copying it; otherwise it copies
// the rows into the layout.
using InputRows = kernels::AlignedBuffer<float>;
// Rows copied from values held elsewhere.
InputRows input_rows(std::span<const float> values);

// One batch: for each branch, its input rows, and the loss targets.
struct Batch {
  std::vector<InputRows> inputs;
  std::vector<float> targets;
};
// A copy of b, for a caller that steps on the same batch more than once (a step consumes its own).
Batch copy_of(const Batch& b);

class Trainer {
 public:
  // Throws InfeasibleBudget (with the least feasible budget in bytes) when the model cannot
  // train within options.activation_budget.
  Trainer(JoinModel& model, Arena& parameters, const TrainerOptions& options);

  const Graph& graph() const { return executor_.graph(); }
  const Solution& plan() const { return plan_; }
  Arena& activations() { return activations_; }
  // Bytes of the activation budget held by the gradient exchange's buffers (0 without one).
  std::size_t exchange_bytes() const { return exchange_buffer_.bytes(); }
  Arena& parameters() { return parameters_; }

  // Forward, loss and backward by the plan, and the optimizer update. The batch's inputs count
  // against the activation budget from the step's start, taken as they are or released once
  // copied into the arena, so they do not sit beside the step's peak uncounted. Without an
  // exchange each stage's parameters are updated right after the backward that completes their
  // gradients (the stage's last backward over the branches sharing its encoder), the optimizer
  // adding the branches' gradients in branch order as it reads them; the result is bitwise that
  // of one update after the whole backward, and `seconds` includes the updates. With an exchange,
  // each stage's branch sum is formed as soon as its last backward ran and handed over then, the
  // update follows the exchange's finish(), the loss is the mean over the processes and `seconds`
  // includes the wait for the last exchanges (not the update).
  StepResult step(Batch batch);
  // Branch `branch`'s encoder on a batch of inputs (no tape, no gradients): plain output rows.
  std::vector<float> embed(int branch, std::span<const float> inputs);

 private:
  std::vector<Tensor> load_inputs(Batch& batch);
  void calibrate_plan(const TrainerOptions& options);
  JoinModel& model_;
  Arena& parameters_;
  GradientExchange* exchange_;
  Arena activations_;
  kernels::AlignedBuffer<float> exchange_buffer_;
  Solution plan_;
  Executor executor_;
  std::vector<Gradients> grads_;  // per branch
  std::vector<Optimizer> optimizers_;  // per encoder
  std::int64_t steps_ = 0;             // steps taken: the dropout masks' step key
};

}  // namespace rematch::autodiff
