// Exact search over every op sequence of docs/model.md#memory-and-operations (drops included): A* over memory
// states packed into 64 bits, identical branches folded together. Exponential in the graph size,
// so bounded by a state cap; the optimal solver uses it to certify (or improve) its dynamic
// program, which is what `"exact": true` rests on beyond store-all.
#pragma once

#include <cstddef>
#include <limits>

#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch {

struct ExhaustiveResult {
  bool finished = false;   // false: the state cap was hit (or the graph does not pack), nothing is known
  bool feasible = false;   // a complete valid schedule exists within the bounds asked for
  double value = 0;        // least makespan (or least peak, for exhaustive_min_memory)
  Schedule ops;            // a schedule reaching it
};

// Whether the graph's memory states pack into the search's 64-bit keys (about 20 stages in all).
bool exhaustive_applies(const Graph& graph);

// Least-makespan complete schedule whose peak stays within memory_limit, among those strictly
// faster than `better_than` (beyond floating-point noise). finished && !feasible then proves that
// no schedule beats `better_than`: that is how a known schedule is certified optimal.
ExhaustiveResult exhaustive_optimum(const Graph& graph, double memory_limit, std::size_t state_cap,
                                    double better_than = std::numeric_limits<double>::infinity());

// Least peak over all complete schedules whose peak is at most `at_most` (the least feasible
// budget, when it is at most `at_most`).
ExhaustiveResult exhaustive_min_memory(const Graph& graph, std::size_t state_cap,
                                       double at_most = std::numeric_limits<double>::infinity());

}  // namespace rematch
