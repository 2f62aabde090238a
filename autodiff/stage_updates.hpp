// Weight gradients of the branches that share an encoder, and the optimizer update of an
// encoder's parameters one stage at a time, as a step's backward completes each stage's
// gradients. Every trainer of the runtime updates through these, so all of them update in the
// same order and get bitwise the same weights.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <vector>

#include "autodiff/model.hpp"
#include "autodiff/optimizer.hpp"
#include "scheduler/schedule.hpp"

namespace rematch::autodiff {

// Adds the gradients of every branch running encoder e into those of its first branch, in branch
// order (fixed, so results do not depend on the schedule). Returns, per encoder, its parameters'
// gradients in parameters() order.
std::vector<std::vector<const Tensor*>> sum_shared_gradients(const JoinModel& model,
                                                             std::vector<Gradients>& grads);
// The same for the layers of one stage of encoder e.
void sum_stage_branches(const JoinModel& model, std::vector<Gradients>& grads, int encoder, int stage);
// The gradients of encoder e's stage parameters held by its first branch.
std::vector<std::span<float>> stage_gradients(const JoinModel& model, std::vector<Gradients>& grads,
                                              int encoder, int stage);

// [encoder][stage]: the index of the op after which that stage's weight gradients are final,
// i.e. the last B of the stage over the branches running the encoder.
std::vector<std::vector<std::size_t>> finalizing_ops(const Schedule& schedule, const JoinModel& model);

// The update of encoder e's stage parameters by optimizers[e] from their gradients of every branch
// running e, added in branch order as the update reads them (bitwise the update of their sum), or
// (branch_summed) from the first branch's, which holds their sum.
void update_stage(const JoinModel& model, const std::vector<Gradients>& grads,
                  std::vector<Optimizer>& optimizers, int encoder, int stage, bool branch_summed);

// Begins a step on every optimizer (one per encoder) and returns the Executor::run hook that
// updates each stage right after the op that finalizes its gradients: the last branch's gradient
// is then as fresh in cache as it gets, and no later op of the step reads the stage's weights
// (every forward of a stage precedes its backward on the same branch). Bitwise the weights of one
// update after the whole backward, for any valid schedule.
std::function<void(std::size_t)> stage_updates(const Schedule& schedule, const JoinModel& model,
                                               const std::vector<Gradients>& grads,
                                               std::vector<Optimizer>& optimizers);

}  // namespace rematch::autodiff
