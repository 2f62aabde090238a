// Runs one training step's forward, loss and backward as a schedule prescribes (docs/model.md
// section 2), op by op, holding exactly the items the schedule says are held. Every buffer comes
// from the arena, so its high-water mark is the step's measured peak.
#pragma once

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "autodiff/arena.hpp"
#include "autodiff/model.hpp"
#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch::autodiff {

// A schedule refused before anything runs: the first op that cannot run (or the schedule's
// length when it is incomplete) and why.
class InvalidSchedule : public std::invalid_argument {
 public:
  InvalidSchedule(const std::string& message, std::size_t op_index)
      : std::invalid_argument(message), op_index(op_index) {}
  std::size_t op_index;
};

struct StepResult {
  float loss = 0;
  double seconds = 0;          // wall time of the schedule's ops
  std::size_t arena_peak = 0;  // the arena's high-water mark during the step, bytes
  std::vector<double> op_seconds;  // wall time of each op of the schedule (not of the hook after it)
  double exposed_communication = 0;  // seconds of `seconds` spent waiting for other processes
};

// Floating-point work of one run of `schedule`: every forward op (each recomputation counted
// again) and every backward. Beside the model's useful work (each forward once) it separates
// the machine's rate from the schedule's recompute share.
double executed_flops(const JoinModel& model, const Schedule& schedule);

class Executor {
 public:
  // graph: the model's sizes (bytes) and times, as the profiler measured them. `reserved` bytes
  // of the arena are held outside the schedule (communication buffers): schedules must fit in
  // the rest of its budget.
  Executor(JoinModel& model, Graph graph, Arena& arena, std::size_t reserved = 0);

  const Graph& graph() const { return graph_; }
  // New measurements of the same model (e.g. calibrated times); validated as in the constructor.
  void set_graph(Graph graph);
  // The budget schedules are checked against: the arena's, less the reserved bytes.
  std::size_t schedule_budget() const {
    return arena_.budget() > reserved_ ? arena_.budget() - reserved_ : 0;
  }
  std::size_t reserved() const { return reserved_; }
  // Replays the schedule in the simulator with schedule_budget(); throws InvalidSchedule.
  void check(const Schedule& schedule) const;
  // inputs[j] = x^j_0, allocated from the arena (kept in the encoder's precision from the first
  // op on); grads[j]: branch j's parameter gradients.
  // Checks the schedule first: an invalid one throws before any op runs. after_backward(i) runs
  // right after op i when it is a B; its time counts in `seconds`, not in op i's op_seconds (the
  // op times are the stage times a plan is calibrated with).
  StepResult run(const Schedule& schedule, std::vector<Tensor> inputs,
                 std::vector<Gradients>& grads,
                 const std::function<void(std::size_t)>& after_backward = {});

 private:
  void check_matches_model() const;

  JoinModel& model_;
  Graph graph_;
  Arena& arena_;
  std::size_t reserved_;
};

}  // namespace rematch::autodiff
