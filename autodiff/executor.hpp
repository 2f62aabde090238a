// Runs one training step's forward, loss and backward as a schedule prescribes (docs/model.md
// section 2), op by op, holding exactly the items the schedule says are held. Every buffer comes
// from the arena, so its high-water mark is the step's measured peak.
#pragma once

#include <cstddef>
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
  std::vector<double> op_seconds;  // wall time of each op of the schedule
};

class Executor {
 public:
  // graph: the model's sizes (bytes) and times, as the profiler measured them.
  Executor(JoinModel& model, Graph graph, Arena& arena);

  const Graph& graph() const { return graph_; }
  // New measurements of the same model (e.g. calibrated times); validated as in the constructor.
  void set_graph(Graph graph);
  // Replays the schedule in the simulator with the arena's budget; throws InvalidSchedule.
  void check(const Schedule& schedule) const;
  // inputs[j] = x^j_0, allocated from the arena; grads[j]: branch j's parameter gradients.
  // Checks the schedule first: an invalid one throws before any op runs.
  StepResult run(const Schedule& schedule, std::vector<Tensor> inputs,
                 std::vector<Gradients>& grads);

 private:
  void check_matches_model() const;

  JoinModel& model_;
  Graph graph_;
  Arena& arena_;
};

}  // namespace rematch::autodiff
