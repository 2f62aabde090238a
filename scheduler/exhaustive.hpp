// Exact search over every op sequence of SPEC.md section 2 (drops included): Dijkstra over memory
// states. Exponential in the graph size, so bounded by a state cap; the optimal solver uses it to
// certify (or improve) its dynamic program on small graphs, which is what `"exact": true` rests on.
#pragma once

#include <cstddef>
#include <optional>

#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch {

struct ExhaustiveResult {
  bool finished = false;   // false: the state cap was hit, nothing is known
  bool feasible = false;   // a complete valid schedule exists
  double value = 0;        // least makespan (or least peak, for exhaustive_min_memory)
  Schedule ops;            // a schedule reaching it
};

// Least-makespan complete schedule whose peak stays within memory_limit.
ExhaustiveResult exhaustive_optimum(const Graph& graph, double memory_limit, std::size_t state_cap);

// Least peak over all complete schedules (the least feasible budget).
ExhaustiveResult exhaustive_min_memory(const Graph& graph, std::size_t state_cap);

}  // namespace rematch
