// Join-graph solver (issue 3): solve time for siamese (k = 2, 3) and cross-modal (24 + 48 stages)
// graphs, and the recompute overhead of optimal vs branch-sequential vs even split at budgets from
// the least feasible one to store-all. Prints the setup and tables; --json FILE writes the figures.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/random_graphs.hpp"
#include "scheduler/baselines.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"

namespace {

using namespace rematch;

struct Case {
  std::string name;
  Graph graph;
};

std::vector<Case> cases(int stages) {
  const Branch encoder = bench::heterogeneous_branch(stages, 1);
  return {{"siamese k=2", {{encoder, encoder}, {1.0, 0.0}}},
          {"siamese k=3", {{encoder, encoder, encoder}, {1.0, 0.0}}},
          {"cross-modal 24+48", {{bench::heterogeneous_branch(24, 2), bench::heterogeneous_branch(48, 3)}, {1.0, 0.0}}}};
}

double overhead(const Graph& g, double budget, const std::string& solver, int slots) {
  SolveOptions options;
  options.solver = solver;
  options.slots = slots;
  options.certify_states = 0;
  try {
    return 100 * (solve(g, budget, options).makespan / g.store_all_time() - 1);
  } catch (const InfeasibleBudget&) {
    return -1;  // infeasible for this solver
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string json_path;
  int stages = 32;
  std::vector<int> slot_counts = {500, 2048};
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--json" && a + 1 < argc) json_path = argv[++a];
    else if (arg == "--quick") stages = 12, slot_counts = {500};
    else {
      std::fprintf(stderr, "usage: bench_join [--quick] [--json FILE]\n");
      return 3;
    }
  }
  std::printf("bench_join: join solvers, siamese branches of %d heterogeneous stages (fw 1..10, bw = 2 fw, "
              "cw 1..20, cbw = cw + 0..20, tmp 0..4), no exhaustive certification\n\n", stages);
  nlohmann::json results = nlohmann::json::array();
  std::printf("%-18s %6s %10s %10s\n", "graph", "slots", "budget", "solve_s");
  for (const Case& c : cases(stages)) {
    const double least = min_feasible_memory(c.graph, {.certify_states = 0});
    const double top = simulate(c.graph, store_all_schedule(c.graph)).peak;
    const double budget = least + 0.25 * (top - least);
    for (int slots : slot_counts) {
      SolveOptions options;
      options.slots = slots;
      options.certify_states = 0;
      const auto start = std::chrono::steady_clock::now();
      const Solution s = solve(c.graph, budget, options);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%-18s %6d %10.1f %10.3f\n", c.name.c_str(), slots, budget, seconds);
      results.push_back({{"graph", c.name}, {"slots", slots}, {"budget", budget}, {"solve_seconds", seconds},
                         {"makespan", s.makespan}});
    }
  }
  std::printf("\nrecompute overhead over store-all (%%; '-' = infeasible for that solver), %d slots\n", slot_counts[0]);
  std::printf("%-18s %8s %10s %18s %11s\n", "graph", "budget", "optimal", "branch-sequential", "even-split");
  for (const Case& c : cases(stages)) {
    const double least = min_feasible_memory(c.graph, {.certify_states = 0});
    const double top = simulate(c.graph, store_all_schedule(c.graph)).peak;
    for (double f : {0.0, 0.1, 0.25, 0.5, 0.75, 1.0}) {
      const double budget = least + f * (top - least);
      double figures[3];
      const char* names[3] = {"optimal", "branch-sequential", "even-split"};
      std::printf("%-18s %8.1f", c.name.c_str(), budget);
      for (int k = 0; k < 3; ++k) {
        figures[k] = overhead(c.graph, budget, names[k], slot_counts[0]);
        if (figures[k] < 0) std::printf(" %*s", k == 1 ? 18 : (k == 0 ? 10 : 11), "-");
        else std::printf(" %*.2f", k == 1 ? 18 : (k == 0 ? 10 : 11), figures[k]);
      }
      std::printf("\n");
      results.push_back({{"graph", c.name}, {"budget", budget}, {"budget_fraction", f},
                         {"overhead_pct", {{"optimal", figures[0]}, {"branch_sequential", figures[1]},
                                           {"even_split", figures[2]}}}});
    }
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"benchmark", "bench_join"}, {"results", results}}.dump(1) << "\n";
    std::printf("\nwrote %s\n", json_path.c_str());
  }
  return 0;
}
