#include "scheduler/solver.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <exception>

#include "scheduler/baselines.hpp"
#include "scheduler/cancel.hpp"
#include "scheduler/portfolio.hpp"
#include "scheduler/revolve.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solution_check.hpp"

namespace rematch {

namespace {

void check_budget(double memory_limit) {
  if (!std::isfinite(memory_limit) || memory_limit < 0)
    throw InputError("memory budget must be a non-negative finite number (got " + number_text(memory_limit) + ")");
}

// A schedule that does not adapt to the budget: refused when its peak exceeds it.
Solution fixed(const Graph& graph, double memory_limit, const std::string& solver, Schedule ops) {
  const double peak = simulate(graph, ops).peak;
  if (exceeds(peak, memory_limit)) throw_infeasible(memory_limit, peak, "solver " + solver);
  return replayed_solution(graph, memory_limit, solver, std::move(ops), false, "fixed schedule");
}

Solution run_segments(const Graph& graph, double memory_limit, const SolveOptions& options) {
  const std::string& name = options.solver;
  const std::string count = name.substr(9);
  std::size_t used = 0;
  int segments = 0;
  try {
    segments = std::stoi(count, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != count.size() || used == 0 || segments < 1)
    throw InputError("solver " + name + ": the segment count must be a positive integer");
  return fixed(graph, memory_limit, name, segments_schedule(graph, segments));
}

Solution run_revolve(const Graph& graph, double memory_limit, const SolveOptions&) {
  if (!graph.is_chain()) throw InputError("solver revolve: binomial checkpointing needs a chain");
  const double least = revolve_min_memory(graph);
  if (exceeds(least, memory_limit)) throw_infeasible(memory_limit, least, "solver revolve");
  std::uint64_t snaps = 0;
  Schedule ops = revolve_schedule(graph, memory_limit, &snaps);
  return replayed_solution(graph, memory_limit, "revolve", std::move(ops), false,
                           "binomial checkpointing with " + std::to_string(snaps) + " snapshots");
}

const std::array<SolverEntry, 9> registry = {{
    {"optimal",
     "the fastest of the dynamic programs, fixed strategies and even split; exhaustive search certifies small graphs",
     [](const Graph& g, double m, const SolveOptions& o) { return solve_portfolio(g, m, o, "optimal", can_certify(g, o)); }},
    {"branch-sequential", "the nested dynamic program alone: branches reversed one after another",
     [](const Graph& g, double m, const SolveOptions& o) { return solve_portfolio(g, m, o, "branch-sequential", false); }},
    {"persistent", "rotor's persistent program: no early drops, branch-sequential for joins",
     [](const Graph& g, double m, const SolveOptions& o) { return solve_portfolio(g, m, o, "persistent", false); }},
    {"even-split", "each branch optimal as its own chain within 1/k of the budget, run side by side",
     [](const Graph& g, double m, const SolveOptions& o) { return even_split(g, m, o); }},
    {"store-all", "every forward with tape, the loss, every backward: no recomputation",
     [](const Graph& g, double m, const SolveOptions& o) { return fixed(g, m, o.solver, store_all_schedule(g)); }},
    {"recompute-all", "only the inputs kept; each backward recomputes from x_0",
     [](const Graph& g, double m, const SolveOptions& o) { return fixed(g, m, o.solver, recompute_all_schedule(g)); }},
    {"segments:N", "N runs per branch, each recomputed just before its backward (checkpoint_sequential)",
     run_segments},
    {"sqrt", "segments:N with N = ceil(sqrt(stages)) per branch (Chen et al.)",
     [](const Graph& g, double m, const SolveOptions& o) { return fixed(g, m, o.solver, sqrt_schedule(g)); }},
    {"revolve", "binomial checkpointing with the most snapshots that fit (chains only)", run_revolve},
}};

// The entry `name` selects: its own name, or a "prefix:N" entry whose prefix it starts with.
const SolverEntry* find_solver(const std::string& name) {
  for (const SolverEntry& entry : registry) {
    const std::string_view prefix = entry.name.substr(0, entry.name.find(':') + 1);
    if (name == entry.name || (prefix.ends_with(':') && name.starts_with(prefix))) return &entry;
  }
  return nullptr;
}

}  // namespace

std::span<const SolverEntry> solvers() { return registry; }

SharedFill shared_fill(const Graph& graph, double memory_limit, const SolveOptions& options) {
  validate(graph);
  check_budget(memory_limit);
  return portfolio_shared_fill(graph, memory_limit, options);
}

std::vector<std::string> solver_names() {
  std::vector<std::string> names;
  for (const SolverEntry& entry : registry) names.emplace_back(entry.name);
  return names;
}

Solution solve(const Graph& graph, double memory_limit, const SolveOptions& options) {
  const CancelPoint::Scope cancel(options.cancel);
  validate(graph);
  check_budget(memory_limit);
  if (const SolverEntry* entry = find_solver(options.solver)) return entry->run(graph, memory_limit, options);
  std::string known;
  for (const SolverEntry& entry : registry) known += (known.empty() ? "" : ", ") + std::string(entry.name);
  throw InputError("unknown solver '" + options.solver + "' (known: " + known + ")");
}

}  // namespace rematch
