#include "scheduler/curve.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "scheduler/baselines.hpp"
#include "scheduler/join_dp.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solution_check.hpp"

namespace rematch {
namespace {

CurvePoint point(const Curve& curve, double budget, double makespan, bool certified) {
  const double base = curve.store_all_makespan;
  // No schedule beats store-all: a value below it differs by the order of the sums only.
  return {budget, makespan, base > 0 ? std::max(0.0, 100.0 * (makespan / base - 1)) : 0.0, certified};
}

// The least budget solve() accepts: what it names when refusing budget 0.
double least_budget(const Graph& graph, const SolveOptions& options) {
  try {
    solve(graph, 0, options);
    return 0;
  } catch (const InfeasibleBudget& e) {
    return e.min_memory;
  }
}

// Every budget step read off one fill per forward order at the store-all peak: at t units, the
// fastest emitted schedule over the orders (what solve's portfolio keeps at unit resolution).
// A schedule is emitted and replayed only where some order's table value changes.
void read_off_fill(const Graph& graph, const SharedFill& fill, Curve& curve, const SolveOptions& options) {
  const int top = static_cast<int>(std::floor(curve.store_all_peak / fill.unit));
  std::vector<std::unique_ptr<NestedJoinDp>> programs;
  for (const std::vector<int>& order : distinct_branch_orders(graph))
    programs.push_back(std::make_unique<NestedJoinDp>(graph, order, fill.unit, top, fill.kind));
  curve.table_fills = static_cast<int>(programs.size());
  std::vector<float> last(programs.size(), -1);
  double makespan = std::numeric_limits<double>::infinity();
  for (int t = static_cast<int>(std::ceil(curve.least / fill.unit - 1e-9)); t <= top; ++t) {
    const double budget = t * fill.unit;
    if (!exceeds(curve.store_all_peak, budget)) {
      curve.points.push_back(point(curve, budget, curve.store_all_makespan, true));
      return;
    }
    bool changed = false;
    for (std::size_t o = 0; o < programs.size(); ++o) {
      const float v = programs[o]->value(t);
      changed |= v != last[o];
      last[o] = v;
    }
    if (!changed) continue;
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t o = 0; o < programs.size(); ++o)
      if (last[o] < ChainDp::infinity) best = std::min(best, simulate(graph, programs[o]->emit(t), budget).makespan);
    // Rounding-free tables always find a schedule above the class's least budget; should one not,
    // solve's fallbacks (least-memory schedule, fixed strategies) decide, so ask it.
    if (!(best < std::numeric_limits<double>::infinity())) best = solve(graph, budget, options).makespan;
    if (best < makespan) {
      makespan = best;
      curve.points.push_back(point(curve, budget, best, false));
    }
  }
}

}  // namespace

Curve time_memory_curve(const Graph& graph, const CurveOptions& options) {
  validate(graph);
  if (options.samples < 2) throw InputError("curve: at least 2 sampled budgets are needed (got " + std::to_string(options.samples) + ")");
  const std::string& solver = options.solve.solver;
  if (solver != "optimal" && solver != "branch-sequential" && solver != "persistent" && solver != "even-split" &&
      solver != "revolve")
    throw InputError("curve: solver " + solver + " does not adapt to the budget (use optimal, branch-sequential, "
                     "persistent, even-split or revolve)");
  if (solver == "revolve" && !graph.is_chain()) throw InputError("solver revolve: binomial checkpointing needs a chain");
  Curve curve;
  curve.solver = solver;
  const SimulationResult store_all = simulate(graph, store_all_schedule(graph));
  curve.store_all_peak = store_all.peak;
  curve.store_all_makespan = store_all.makespan;

  const SharedFill fill = shared_fill(graph, curve.store_all_peak, options.solve);
  curve.least = fill.applies ? fill.least : least_budget(graph, options.solve);
  if (fill.applies) {
    read_off_fill(graph, fill, curve, options.solve);
    curve.complete = true;
    curve.method = "one table fill per forward order at the store-all peak, unit " + number_text(fill.unit) +
                   ": every budget step";
    return curve;
  }
  // With integer sizes every unit budget is solved when there are at most `samples` of them. The
  // curve is then complete where each budget's makespan is that of the unit budget below it:
  // sizes are multiples of the unit and no member of the portfolio rounds a share of the budget
  // (chains, or the nested classes alone; the even split of joins solves each branch in 1/k).
  const bool floors = graph.is_chain() || solver == "branch-sequential" || solver == "persistent";
  const double steps = fill.unit > 0 ? std::round((curve.store_all_peak - curve.least) / fill.unit) : 0;
  if (fill.unit > 0 && steps + 1 <= options.samples) {
    for (double t = 0; t <= steps; ++t) {
      const double budget = curve.least + t * fill.unit;
      const Solution s = solve(graph, budget, options.solve);
      if (!floors || curve.points.empty() || t == steps || s.makespan < curve.points.back().makespan ||
          s.exact != curve.points.back().certified)
        curve.points.push_back(point(curve, budget, s.makespan, s.exact));
    }
    curve.solves = static_cast<int>(steps) + 1;
    curve.complete = floors;
    curve.method = "solved at every budget step of unit " + number_text(fill.unit) +
                   " (the solver's portfolio depends on the budget)";
    return curve;
  }
  const int n = curve.least < curve.store_all_peak ? options.samples : 1;
  for (int i = 0; i < n; ++i) {
    // The last sample is the peak itself, not a sum that may round below it.
    const double budget =
        i + 1 == n ? curve.store_all_peak : curve.least + (curve.store_all_peak - curve.least) * i / (n - 1);
    const Solution s = solve(graph, budget, options.solve);
    curve.points.push_back(point(curve, budget, s.makespan, s.exact));
  }
  curve.solves = n;
  curve.method = "solved at " + std::to_string(n) + " evenly spaced budgets (the solver's resolution or "
                 "portfolio depends on the budget)";
  return curve;
}

const CurvePoint* least_budget_within(const Curve& curve, double max_overhead_pct) {
  for (const CurvePoint& p : curve.points)
    if (p.overhead_pct <= max_overhead_pct) return &p;
  return nullptr;
}

}  // namespace rematch
