// The trainer's hook for data parallelism: an exchange sums each step's weight gradients over the
// processes of a run. The trainer hands it every stage's gradient tensors as soon as they are
// final (the last backward of that stage over the branches sharing its encoder), always in the
// same order (encoders in order, each from its last stage to its first: the order in which any
// valid schedule finalizes one encoder's stages), so every process hands over the same stream
// whatever schedule it runs. The exchange may start communicating at once and must have written
// the sums back by the end of finish().
//
// Its buffers come from the activation arena: the trainer reserves buffer_floats() there and
// plans the schedule in what remains of the budget.
#pragma once

#include <cstddef>
#include <span>

namespace rematch::autodiff {

class GradientExchange {
 public:
  virtual ~GradientExchange() = default;

  // Processes taking part; 1 means nothing is exchanged.
  virtual int processes() const = 0;
  // Floats of buffer the exchange needs, given the total number of gradient floats per step.
  virtual std::size_t buffer_floats(std::size_t gradient_floats) const = 0;
  // The buffer (buffer_floats() floats, cache-line aligned) the exchange uses from now on.
  virtual void attach(std::span<float> buffer) = 0;
  // Tensors whose values are final for this step; communication may start.
  virtual void stage_final(std::span<const std::span<float>> tensors) = 0;
  // Lets outstanding communication advance (called between backward ops).
  virtual void progress() = 0;
  // The mean over the processes of a per-process scalar (the step's loss); called once per step,
  // after the last stage_final and before finish.
  virtual float mean(float local) = 0;
  // Waits for every exchange of the step: each tensor now holds the mean over the processes of
  // their values. Returns the seconds spent waiting in this step (also in stage_final and mean).
  virtual double finish() = 0;
};

}  // namespace rematch::autodiff
