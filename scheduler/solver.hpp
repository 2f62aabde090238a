// The library call: a graph and a memory budget in, a schedule (checked by the simulator) out.
//
//   rematch::Graph graph = rematch::read_graph_file("net.json");
//   rematch::Solution s = rematch::solve(graph, 8e9);            // optimal within 8 GB
//   for (const rematch::Op& op : s.ops) run(op);
#pragma once

#include <atomic>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/chain_dp.hpp"
#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch {

// The budget is below what the solver can work with; min_memory is the least budget it accepts
// (for `optimal`: the least feasible budget of the graph).
class InfeasibleBudget : public InputError {
 public:
  InfeasibleBudget(const std::string& message, double min_memory)
      : InputError(message), min_memory(min_memory) {}
  double min_memory;
};

struct SolveOptions {
  // A name of the registry (solvers()).
  std::string solver = "optimal";
  // Memory resolution of the dynamic program: 0 picks it (unit resolution for integer sizes when
  // the tables fit in table_budget_bytes, else the finest slot count that fits).
  int slots = 0;
  // The most bytes of dynamic-program tables a solve holds at once, all allocated (an address-space
  // limit counts untouched pages too): the portfolio's programs run one after another, each with
  // the finest resolution whose tables fit (at least 16 slots, whatever they need).
  std::size_t table_budget_bytes = std::size_t{3} << 30;
  // States the exhaustive search may visit to certify (or improve) the result; 0 disables it.
  std::size_t certify_states = 1'000'000;
  // Table-fill work (cell updates, about (stages + branches)^3 / 6 x slots per forward order) above
  // which runs of consecutive stages are solved as one stage (grouping.hpp; "exact": false). The
  // default lets a 200-stage chain at 4096 slots (about 12 s on two AMD EPYC Zen 3 vCPUs) run in full.
  double work_limit = 6e9;
  // When set, another thread may store true to stop the solve: it then throws Cancelled
  // (cancel.hpp) at its next table row.
  const std::atomic<bool>* cancel = nullptr;
};

struct Solution {
  std::string solver;
  bool exact = false;      // proven optimal over every docs/model.md op sequence
  double memory_limit = 0;
  Schedule ops;
  double makespan = 0;     // measured by the simulator on `ops`
  double peak = 0;         // measured by the simulator on `ops`
  std::string method;      // how it was obtained (resolution, certification), for people
  int grouped_runs = 0;    // > 0: the program ran over that many runs of stages per branch (work_limit)
  int slots = 0;           // > 0: the dynamic program's tables ran over that many memory slots
  bool slots_reduced = false;  // fewer than the default 4096 slots: the tables had to fit table_budget_bytes
};

// Throws InputError for a bad graph, budget or solver name, InfeasibleBudget below the least budget,
// Cancelled when options.cancel is set during the solve.
Solution solve(const Graph& graph, double memory_limit, const SolveOptions& options = {});

// The least budget at which `optimal` finds a schedule (exact over all op sequences where the
// exhaustive search can certify it, else the least budget of the dynamic program's class).
double min_feasible_memory(const Graph& graph, const SolveOptions& options = {});

// Whether one table fill of the nested program at `memory_limit` gives solve()'s makespan at every
// budget up to it (curve.hpp reads them all off it): `applies` when solve() indexes the tables by
// the same unit at all those budgets (integer sizes, tables that fit at memory_limit), runs the
// program in full (no grouping) and nothing else of its portfolio depends on the budget (the
// solver is branch-sequential or persistent, or optimal on a chain without certification).
struct SharedFill {
  bool applies = false;
  double unit = 0;                     // > 0: the nested tables' unit at every budget up to memory_limit
  DpClass kind = DpClass::with_drops;  // the program's class
  double least = 0;                    // when it applies: the least budget solve() accepts
};
SharedFill shared_fill(const Graph& graph, double memory_limit, const SolveOptions& options = {});

// One solver of the registry. solve() validates the graph and the budget, then runs the entry
// that SolveOptions::solver names.
struct SolverEntry {
  std::string_view name;         // "segments:N" stands for segments:1, segments:2, ...
  std::string_view description;  // one line, for help texts and docs
  Solution (*run)(const Graph& graph, double memory_limit, const SolveOptions& options);
};

// The registry, in the order help texts list it.
std::span<const SolverEntry> solvers();

// The registry's names, for help texts.
std::vector<std::string> solver_names();

}  // namespace rematch
