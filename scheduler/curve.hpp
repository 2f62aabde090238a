// The time-memory curve: the least makespan the solver finds at every budget from the least
// feasible one to the store-all peak, and the recompute overhead against store-all.
//
//   rematch::Curve c = rematch::time_memory_curve(graph);
//   for (const rematch::CurvePoint& p : c.points) plot(p.budget, p.overhead_pct);
//
// Each point is what solve(graph, point.budget, options) returns (its makespan and its `exact`).
// Where the dynamic program alone decides the makespan at a unit shared by every budget
// (solver.hpp: shared_fill), one table fill per forward order at the store-all peak gives every
// budget. Where the portfolio adds members that depend on the budget (certification, the
// interleaved program and the even split of joins under `optimal`) but sizes are integers, the
// curve solves at every unit budget when there are at most `samples` of them. The curve is
// complete (it lists each budget at which the makespan drops or certification changes) in the
// first case, and in the second for chains and the nested classes. Otherwise (real sizes, whose
// resolution is a fraction of each budget, or too many unit budgets) it solves at `samples`
// evenly spaced budgets.
#pragma once

#include <string>
#include <vector>

#include "scheduler/graph.hpp"
#include "scheduler/solver.hpp"

namespace rematch {

struct CurvePoint {
  double budget = 0;
  double makespan = 0;
  double overhead_pct = 0;  // 100 (makespan / store-all makespan - 1)
  bool certified = false;   // solve's `exact` at this budget
};

struct Curve {
  std::string solver;
  double least = 0;              // least feasible budget of the solver
  double store_all_peak = 0;
  double store_all_makespan = 0;
  // Budgets ascending, the least budget first and the store-all peak last. Complete: the makespan
  // at any budget is that of the last point at or below it. Sampled: only the listed budgets are
  // known.
  std::vector<CurvePoint> points;
  bool complete = false;
  int table_fills = 0;           // complete: the program's table fills (one per forward order)
  int solves = 0;                // sampled: the separate solves (each fills its own tables)
  std::string method;            // how the points were obtained, for people
};

struct CurveOptions {
  SolveOptions solve;
  int samples = 64;  // most budgets solved when the curve cannot be read off one fill (>= 2)
};

// Throws InputError for a bad graph, options or a solver that does not adapt to the budget
// (the fixed strategies have one point: their peak).
Curve time_memory_curve(const Graph& graph, const CurveOptions& options = {});

// The least budget on the curve whose overhead is at most `max_overhead_pct`; nullptr if none.
const CurvePoint* least_budget_within(const Curve& curve, double max_overhead_pct);

}  // namespace rematch
