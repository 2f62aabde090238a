#include "scheduler/portfolio.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "scheduler/baselines.hpp"
#include "scheduler/cancel.hpp"
#include "scheduler/chain_dp.hpp"
#include "scheduler/exhaustive.hpp"
#include "scheduler/grouping.hpp"
#include "scheduler/interleaved_dp.hpp"
#include "scheduler/join_dp.hpp"
#include "scheduler/resolution.hpp"
#include "scheduler/revolve.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solution_check.hpp"

namespace rematch {

namespace {

constexpr double interleaved_work_limit = 3e9;  // 1-2 s of table filling (three 32-stage siamese branches at 500 slots)
constexpr int certify_max_stages = 16;    // beyond this the exhaustive state space dwarfs any cap

// The class of schedules a nested-program solver searches.
DpClass program_class(const std::string& solver) {
  return solver == "persistent" ? DpClass::persistent : DpClass::with_drops;
}

// The interleaved program (interleaved_dp.hpp) for a join at budget `memory`, at the finest
// resolution its tables allow; empty for chains, or when its tables or its work do not fit (long
// branches, three or more of them).
std::optional<std::pair<InterleavedJoinDp, Resolution>> interleaved_program(const Graph& graph, double memory,
                                                                            const SolveOptions& options) {
  if (graph.is_chain()) return std::nullopt;
  const std::optional<Resolution> res = resolution_for(graph, memory, options, InterleavedJoinDp::table_bytes);
  if (!res || InterleavedJoinDp::work(graph, res->slots) > interleaved_work_limit) return std::nullopt;
  return std::pair{InterleavedJoinDp(graph, res->slot, res->slots), *res};
}

// Keeps the fastest of the schedules offered that are valid within the budget (each replayed once).
class Fastest {
 public:
  Fastest(const Graph& graph, double memory_limit) : graph_(graph), memory_limit_(memory_limit) {}

  // True when `ops` became the fastest.
  bool offer(Schedule ops, std::string method) {
    const SimulationResult sim = simulate(graph_, ops, memory_limit_);
    if (!sim.valid || sim.makespan >= time_) return false;
    time_ = sim.makespan;
    ops_ = std::move(ops);
    method_ = std::move(method);
    return true;
  }
  // The same, naming in the method what it beat.
  bool offer_over(Schedule ops, const std::string& what) {
    return offer(std::move(ops), what + (time_ < std::numeric_limits<double>::infinity() ? " (faster than the " + method_ + ")" : ""));
  }

  Schedule& ops() { return ops_; }
  std::string& method() { return method_; }
  double makespan() const { return time_; }

 private:
  const Graph& graph_;
  double memory_limit_;
  double time_ = std::numeric_limits<double>::infinity();
  Schedule ops_;
  std::string method_;
};

// Offers the fixed strategies (segments:N for every N, recompute-all, revolve).
void offer_baselines(const Graph& graph, double memory_limit, Fastest& fastest) {
  int longest = 0;
  for (const Branch& b : graph.branches) longest = std::max(longest, b.stages());
  for (int segments = 1; segments <= longest; ++segments)
    fastest.offer_over(segments_schedule(graph, segments), "segments:" + std::to_string(segments));
  fastest.offer_over(recompute_all_schedule(graph), "recompute-all");
  if (graph.is_chain() && !exceeds(revolve_min_memory(graph), memory_limit))
    fastest.offer_over(revolve_schedule(graph, memory_limit), "revolve");
}

// Offers the branch-sequential schedule (join_dp.hpp) of every forward order; false when
// rounding sizes up to slots made the budget infeasible for all of them.
bool offer_nested(const Graph& graph, const Resolution& res, const std::string& method, DpClass kind,
                  Fastest& fastest) {
  bool any = false;
  for (const std::vector<int>& order : distinct_branch_orders(graph)) {
    const NestedJoinDp dp(graph, order, res.slot, res.slots, kind);
    if (!(dp.value(res.slots) < ChainDp::infinity)) continue;
    fastest.offer(dp.emit(res.slots), method);
    any = true;
  }
  return any;
}

// The forward order of least budget, and that budget.
std::pair<std::vector<int>, double> least_memory_order(const Graph& graph, DpClass kind) {
  std::pair<std::vector<int>, double> best{{}, std::numeric_limits<double>::infinity()};
  for (const std::vector<int>& order : distinct_branch_orders(graph))
    if (const double least = nested_join_min_memory(graph, order, kind); least < best.second) best = {order, least};
  return best;
}

// The interleaved class's least budget (at most `upper`, else empty) and a schedule of that peak:
// exact for integer sizes at unit resolution, else the peak of the least schedule over slots.
std::optional<std::pair<double, Schedule>> interleaved_least(const Graph& graph, double upper,
                                                             const SolveOptions& options) {
  const auto program = interleaved_program(graph, upper, options);
  if (!program) return std::nullopt;
  const int least = program->first.least_memory();
  if (least > program->second.slots) return std::nullopt;
  Schedule ops = program->first.emit(least);
  const SimulationResult sim = simulate(graph, ops);
  if (!sim.valid) return std::nullopt;  // only what the simulator accepts may set the least budget
  return std::pair{sim.peak, std::move(ops)};
}

// Groups per branch when the full program at `full_slots` would exceed options.work_limit and
// grouping helps: the most whose program fits the limit at the slots asked for (else at most 4096,
// solve_grouped's resolution); else 0.
int group_count(const Graph& graph, int full_slots, const SolveOptions& options, DpClass kind) {
  if (nested_program_work(graph, full_slots, kind) <= options.work_limit) return 0;
  int longest = 0;
  for (const Branch& b : graph.branches) longest = std::max(longest, b.stages());
  const int slots = options.slots > 0 ? options.slots : default_slots;
  int lo = 1, hi = longest;
  while (lo < hi) {
    const int mid = lo + (hi - lo + 1) / 2;
    if (nested_program_work(grouped_graph(graph, even_groups(graph, mid)), slots, kind) <=
        options.work_limit)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo < longest ? lo : 0;
}

// For graphs too long for the full program: the program over `count` runs of consecutive stages
// per branch (grouping.hpp), next to the least-memory schedule and the fixed strategies.
Solution solve_grouped(const Graph& graph, double memory_limit, const SolveOptions& options, const std::string& solver,
                       int count, Schedule least_ops) {
  const StageGroups groups = even_groups(graph, count);
  const Graph grouped = grouped_graph(graph, groups);
  SolveOptions inner = options;
  inner.certify_states = 0;
  inner.slots = options.slots > 0 ? options.slots
                                  : fitting_slots(grouped, options, nested_table_bytes(program_class(solver)));

  Fastest fastest(graph, memory_limit);
  int slots = 0;
  try {
    const Solution coarse = solve_portfolio(grouped, memory_limit, inner, solver, false);
    slots = coarse.slots;
    fastest.offer(expand_grouped(groups, coarse.ops),
                  "stages grouped into " + std::to_string(count) + " runs per branch (the full program's table "
                  "fill exceeds its work limit): " + coarse.method);
  } catch (const InfeasibleBudget&) {
    // The grouped graph needs more memory than the original (its transients bound several ops).
  }
  fastest.offer_over(std::move(least_ops), "least-memory schedule");
  offer_baselines(graph, memory_limit, fastest);
  Solution solution =
      replayed_solution(graph, memory_limit, solver, std::move(fastest.ops()), false, std::move(fastest.method()));
  solution.grouped_runs = count;
  solution.slots = slots;
  solution.slots_reduced = options.slots == 0 && slots > 0 && slots < default_slots;
  return solution;
}

}  // namespace

bool can_certify(const Graph& graph, const SolveOptions& options) {
  return options.certify_states > 0 && total_stages(graph) <= certify_max_stages && exhaustive_applies(graph);
}

double program_min_memory(const Graph& graph, const SolveOptions& options) {
  const double nested = least_memory_order(graph, DpClass::with_drops).second;
  const auto interleaved = interleaved_least(graph, nested, options);
  return interleaved ? std::min(nested, interleaved->first) : nested;
}

Solution even_split(const Graph& graph, double memory_limit, const SolveOptions& options) {
  const int k = graph.num_branches();
  SolveOptions chain_options;
  chain_options.table_budget_bytes = options.table_budget_bytes;
  chain_options.certify_states = 0;
  std::vector<Schedule> before(k), after(k);
  double least = 0;
  bool feasible = true;
  for (int j = 0; j < k; ++j) {
    const Graph alone{{graph.branches[j]}, {graph.loss.time, graph.loss.tmp / k}};
    least = std::max(least, k * min_feasible_memory(alone, chain_options));
    if (!feasible) continue;
    try {
      const Schedule ops = solve(alone, memory_limit / k, chain_options).ops;
      const auto loss = std::find(ops.begin(), ops.end(), Op::loss_op());
      for (auto it = ops.begin(); it != ops.end(); ++it)
        if (it != loss) (it < loss ? before[j] : after[j]).push_back({it->kind, j, it->stage, it->item});
    } catch (const InfeasibleBudget&) {
      feasible = false;
    }
  }
  if (!feasible) throw_infeasible(memory_limit, least, "solver even-split");
  Schedule ops;
  for (const Schedule& part : before) ops.insert(ops.end(), part.begin(), part.end());
  ops.push_back(Op::loss_op());
  for (const Schedule& part : after) ops.insert(ops.end(), part.begin(), part.end());
  return replayed_solution(graph, memory_limit, "even-split", std::move(ops), false,
                           "each branch optimal as a chain within 1/" + std::to_string(k) + " of the budget");
}

Solution solve_portfolio(const Graph& graph, double memory_limit, const SolveOptions& options,
                         const std::string& solver, bool certify) {
  const DpClass kind = program_class(solver);
  const Schedule store_all = store_all_schedule(graph);
  if (!exceeds(simulate(graph, store_all).peak, memory_limit))
    return replayed_solution(graph, memory_limit, solver, store_all, true,
                             "store-all fits: no recomputation needed");

  const std::vector<std::vector<int>> orders = distinct_branch_orders(graph);
  const std::optional<Resolution> full = resolution_for(graph, memory_limit, options, nested_table_bytes(kind));
  const int count = group_count(graph, full ? full->slots : options.slots, options, kind);
  if (count > 0 && kind == DpClass::with_drops && orders.size() == 1) {
    // Too long for the full program: its exact least budget (a recursion of ~12 L^3 steps, minutes
    // at a few thousand stages) matters only below the persistent class's, which bounds it from
    // above at a twelfth of the work; above that, the persistent least-memory schedule is the
    // fallback that fits by construction.
    double persistent_least = 0;
    Schedule least_ops =
        nested_join_min_memory_schedule(graph, orders.front(), &persistent_least, DpClass::persistent);
    if (!exceeds(persistent_least, memory_limit))
      return solve_grouped(graph, memory_limit, options, solver, count, std::move(least_ops));
  }

  // The least budget of the nested class (over the forward orders). With one order (chains,
  // identical branches) its least-memory schedule comes from the same recursion; with several, the
  // schedule of the best order is emitted if it is needed.
  double dp_least = 0;
  std::vector<int> least_order;
  std::optional<Schedule> least_ops;
  if (orders.size() == 1) {
    least_order = orders.front();
    least_ops = nested_join_min_memory_schedule(graph, least_order, &dp_least, kind);
  } else {
    std::tie(least_order, dp_least) = least_memory_order(graph, kind);
  }
  if (solver == "optimal")
    if (auto interleaved = interleaved_least(graph, dp_least, options); interleaved && interleaved->first < dp_least) {
      dp_least = interleaved->first;
      least_ops = std::move(interleaved->second);
    }
  if (exceeds(dp_least, memory_limit)) {
    if (certify) {
      if (ExhaustiveResult ex = exhaustive_optimum(graph, memory_limit, options.certify_states); ex.finished) {
        if (ex.feasible)
          return replayed_solution(graph, memory_limit, solver, ex.ops, true,
                                   "exhaustive search (below the DP's least budget)");
        throw_infeasible(memory_limit, min_feasible_memory(graph, options), "");
      }
    }
    throw_infeasible(memory_limit, dp_least, "");
  }

  auto least_schedule = [&] {
    return least_ops ? std::move(*least_ops) : nested_join_min_memory_schedule(graph, least_order, nullptr, kind);
  };
  if (count > 0) return solve_grouped(graph, memory_limit, options, solver, count, least_schedule());
  Resolution res = nested_resolution(full, graph, options, kind);
  auto describe = [&] {
    return describe_program(std::string(kind == DpClass::persistent ? "persistent (rotor) " : "") +
                                (graph.is_chain() ? "" : "branch-sequential "),
                            res);
  };
  Fastest fastest(graph, memory_limit);
  // Rounding sizes up to slots can lose the few units that made the budget feasible: refine
  // (twice at most), then rely on the least-memory schedule below, which fits by construction.
  bool solved = offer_nested(graph, res, describe(), kind, fastest);
  for (int refine = 0; refine < 2 && !solved && !res.unit && options.slots == 0 &&
                       nested_join_table_bytes(graph, res.slots * 2, kind) <= options.table_budget_bytes;
       ++refine) {
    res.slots *= 2;
    res.slot = memory_limit / res.slots;
    solved = offer_nested(graph, res, describe(), kind, fastest);
  }
  if (solver == "optimal")
    if (const auto program = interleaved_program(graph, memory_limit, options)) {
      const auto& [dp, il_res] = *program;
      if (dp.value(il_res.slots) < ChainDp::infinity)
        fastest.offer_over(dp.emit(il_res.slots), describe_program("interleaved ", il_res));
    }
  if (!res.unit || !(fastest.makespan() < std::numeric_limits<double>::infinity())) {
    // Near the least budget, rounding can leave the tables little room: the least-memory
    // schedule (exact units) may then be faster; a fixed strategy that fits exactly may be too.
    // (At unit resolution only the interleaved tables can be coarser, when they are too large.)
    fastest.offer_over(least_schedule(), "least-memory schedule");
    offer_baselines(graph, memory_limit, fastest);
  }
  if (!graph.is_chain() && solver == "optimal") {
    // Branch-sequential schedules reverse the branches last-in first-out; the even split runs
    // them side by side, which is sometimes faster.
    try {
      fastest.offer_over(even_split(graph, memory_limit, options).ops, "even split");
    } catch (const InfeasibleBudget&) {
    }
  }
  bool certified = false;
  if (certify) {
    if (ExhaustiveResult ex = exhaustive_optimum(graph, memory_limit, options.certify_states, fastest.makespan());
        ex.finished) {
      if (!ex.feasible || !fastest.offer_over(std::move(ex.ops), "exhaustive search"))
        fastest.method() += ", certified optimal by exhaustive search";
      certified = true;
    }
  }
  Solution solution = replayed_solution(graph, memory_limit, solver, std::move(fastest.ops()), certified,
                                        std::move(fastest.method()));
  solution.slots = res.unit ? 0 : res.slots;
  solution.slots_reduced = res.reduced;
  return solution;
}

double min_feasible_memory(const Graph& graph, const SolveOptions& options) {
  const CancelPoint::Scope cancel(options.cancel);
  validate(graph);
  const double dp_least = program_min_memory(graph, options);
  if (can_certify(graph, options))
    if (ExhaustiveResult ex = exhaustive_min_memory(graph, options.certify_states, dp_least); ex.finished)
      return ex.value;
  return dp_least;
}

SharedFill portfolio_shared_fill(const Graph& graph, double memory_limit, const SolveOptions& options) {
  if (options.slots > 0) return {};
  const DpClass kind = program_class(options.solver);
  const std::optional<Resolution> res = resolution_for(graph, memory_limit, options, nested_table_bytes(kind));
  if (!res || !res->unit) return {};
  const bool nested_only = options.solver == "branch-sequential" || options.solver == "persistent" ||
                           (options.solver == "optimal" && graph.is_chain() && !can_certify(graph, options));
  if (!nested_only || group_count(graph, res->slots, options, kind) > 0) return {false, res->slot, kind, 0};
  return {true, res->slot, kind, least_memory_order(graph, kind).second};
}

}  // namespace rematch
