// The independent judge of schedules: replays docs/model.md#memory-and-operations op by op, checks every
// requirement, and measures makespan and peak. Solvers never report their own tables' numbers;
// what users see is what this replay measured.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
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
  bool loss_done() const { return flags_[0]; }
  bool complete() const;  // every y^j_0 produced
  bool branch_done(int branch) const { return flags_[(*slots_)[branch]]; }
  bool holds_x(int branch, int i) const { return flags_[slot(branch, i, kX)]; }
  bool holds_xbar(int branch, int i) const { return flags_[slot(branch, i, kXbar)]; }
  bool holds_y(int branch, int i) const { return flags_[slot(branch, i, kY)]; }

 private:
  enum Kind { kX = 0, kXbar = 1, kY = 2 };
  // flags_[0]: loss done; per branch j from (*slots_)[j]: done, then x, xbar, y of each position.
  int slot(int branch, int i, Kind kind) const { return (*slots_)[branch] + 1 + 3 * i + kind; }
  void put(int branch, int i, Kind kind, double size);
  void take(int branch, int i, Kind kind, double size);
  std::string check_stage(const Op& op, int stage_count) const;

  const Graph* graph_;
  std::shared_ptr<const std::vector<int>> slots_;  // shared by copies: states copy one vector
  std::vector<std::uint8_t> flags_;
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
