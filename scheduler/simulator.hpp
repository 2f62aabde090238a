// The independent judge of schedules: replays SPEC.md section 2 op by op, checks every
// requirement, and measures makespan and peak. Solvers never report their own tables' numbers;
// what users see is what this replay measured.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch {

// True when `peak` exceeds `limit` beyond floating-point noise (sizes are sums of doubles; with
// integer sizes the comparison is exact).
bool exceeds(double peak, double limit);

// Which items are held at one moment, and the op rules that change it.
class MemoryState {
 public:
  explicit MemoryState(const Graph& graph);

  struct Step {
    bool ok = false;
    double peak = 0;     // memory while the op runs
    double cost = 0;     // its time
    std::string reason;  // why it cannot run, when !ok
  };
  // Applies `op` if its requirements hold (the state is unchanged otherwise). The memory limit
  // is not checked here: the caller compares Step::peak with its budget.
  Step apply(const Op& op);

  double memory() const { return memory_; }
  bool loss_done() const { return loss_done_; }
  bool complete() const;  // every y^j_0 produced
  bool branch_done(int branch) const { return branch_done_[branch]; }
  bool holds_x(int branch, int i) const { return x_[branch][i]; }
  bool holds_xbar(int branch, int i) const { return xbar_[branch][i]; }
  bool holds_y(int branch, int i) const { return y_[branch][i]; }

 private:
  void put(std::vector<char>& held, int i, double size);
  void take(std::vector<char>& held, int i, double size);
  std::string check_stage(const Op& op, int stage_count) const;

  const Graph* graph_;
  std::vector<std::vector<char>> x_, xbar_, y_;
  std::vector<char> branch_done_;
  bool loss_done_ = false;
  double memory_ = 0;
};

// One op of a replay, for timelines and plots.
struct TraceStep {
  double start = 0, end = 0;  // time
  double peak = 0;            // memory while it runs
  double after = 0;           // memory once it is done
};

struct SimulationResult {
  bool valid = false;
  std::size_t bad_op = 0;   // index of the first invalid op (== ops.size() when incomplete)
  std::string reason;       // why it is invalid
  double makespan = 0;
  double peak = 0;          // largest of the initial memory and every op's peak
  std::vector<TraceStep> trace;
};

// Replays `schedule`; valid when every op's requirements hold, no peak exceeds `memory_limit`, and
// the schedule is complete.
SimulationResult simulate(const Graph& graph, const Schedule& schedule,
                          double memory_limit = std::numeric_limits<double>::infinity());

}  // namespace rematch
