// What the `optimal` solver runs: the nested dynamic program over every forward order (the
// `branch-sequential` and `persistent` solvers are that program alone), the interleaved program for
// joins, the least-memory schedule, the fixed strategies, the even split, the grouped program for
// graphs too long for the full one, and the exhaustive search that certifies small graphs. The
// fastest schedule that the simulator accepts within the budget wins.
#pragma once

#include <string>

#include "scheduler/graph.hpp"
#include "scheduler/solver.hpp"

namespace rematch {

// True when the exhaustive search may certify `graph` (small enough, and options.certify_states > 0).
bool can_certify(const Graph& graph, const SolveOptions& options);

// The portfolio for `solver` ("optimal", "branch-sequential" or "persistent"); `certify` runs the
// exhaustive search too.
Solution solve_portfolio(const Graph& graph, double memory_limit, const SolveOptions& options,
                         const std::string& solver, bool certify);

// The least budget of the dynamic programs' classes (nested over every forward order, and
// interleaved for two branches).
double program_min_memory(const Graph& graph, const SolveOptions& options);

// shared_fill (solver.hpp) on a validated graph and budget.
SharedFill portfolio_shared_fill(const Graph& graph, double memory_limit, const SolveOptions& options);

// Each branch solved as its own chain within an even share of the budget, run side by side (each
// chain's tables within options.table_budget_bytes, one after another).
Solution even_split(const Graph& graph, double memory_limit, const SolveOptions& options);

}  // namespace rematch
