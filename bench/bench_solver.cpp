// Solve time of the `optimal` chain solver on heterogeneous chains (issue: L = 50..400 stages at
// 500 and 4096 memory slots), beside rotor's persistent program (`persistent`), the class the
// optimal program extends. Prints the setup and a table; --json FILE writes the figures.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scheduler/baselines.hpp"
#include "scheduler/chain_dp.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#include "bench/random_graphs.hpp"

namespace {

using namespace rematch;

Graph heterogeneous_chain(int stages, std::uint64_t seed) { return {{bench::heterogeneous_branch(stages, seed)}, {1.0, 0.0}}; }

struct Timed {
  Solution solution;
  double seconds = 0;
};

Timed timed_solve(const Graph& graph, double budget, const SolveOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  Solution solution = solve(graph, budget, options);
  return {std::move(solution), std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

std::string program_of(const Solution& s) {
  return s.grouped_runs > 0 ? "grouped into " + std::to_string(s.grouped_runs) : "full";
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // rows appear as they are measured, even in a pipe
  std::string json_path;
  std::vector<int> lengths = {50, 100, 200, 400};
  std::vector<int> slot_counts = {500, 4096};
  double budget_fraction = 0.25;  // of the way from the least feasible budget to store-all
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--json" && a + 1 < argc) json_path = argv[++a];
    else if (arg == "--quick") lengths = {50, 100}, slot_counts = {500};
    else if (arg == "--budget-fraction" && a + 1 < argc) budget_fraction = std::stod(argv[++a]);
    else if (arg == "--max-stages" && a + 1 < argc) {
      const int most = std::stoi(argv[++a]);
      std::erase_if(lengths, [most](int length) { return length > most; });
    }
    else {
      std::fprintf(stderr, "usage: bench_solver [--quick] [--max-stages L] [--budget-fraction F] [--json FILE]\n");
      return 3;
    }
  }
  std::printf("bench_solver: optimal chain solver (dynamic program, no exhaustive certification),\n"
              "beside rotor's persistent program (solver persistent)\n"
              "chains: random heterogeneous (fw 1..10, bw = 2 fw, cw 1..20, cbw = cw + 0..20, tmp 0..4), seed = L\n"
              "budget: least feasible + %.2f x (store-all peak - least feasible)\n\n",
              budget_fraction);
  std::printf("%6s %7s %10s %9s %10s %10s %9s %10s %10s  %s\n", "L", "slots", "budget", "solve_s", "table_MiB",
              "overhead%", "rotor_s", "rotor_ovh%", "sqrt_ovh%", "program (optimal / persistent)");
  nlohmann::json results = nlohmann::json::array();
  for (int length : lengths) {
    const Graph g = heterogeneous_chain(length, length);
    const double least = min_feasible_memory(g);
    const double store_all = simulate(g, store_all_schedule(g)).peak;
    const double budget = least + budget_fraction * (store_all - least);
    for (int slots : slot_counts) {
      SolveOptions options;
      options.slots = slots;
      options.certify_states = 0;
      options.table_budget_bytes = std::size_t{8} << 30;
      Timed optimal, persistent;
      try {
        optimal = timed_solve(g, budget, options);
        options.solver = "persistent";
        persistent = timed_solve(g, budget, options);
      } catch (const InputError& e) {
        std::printf("%6d %7d   skipped: %s\n", length, slots, e.what());
        results.push_back({{"stages", length}, {"slots", slots}, {"skipped", e.what()}});
        continue;
      }
      const Solution& s = optimal.solution;
      const double base = g.store_all_time();
      double sqrt_overhead = -1;
      try {
        sqrt_overhead = 100 * (solve(g, budget, {.solver = "sqrt"}).makespan / base - 1);
      } catch (const InfeasibleBudget&) {
      }
      // Stages grouped into runs when the full program exceeds the solver's work limit (solver.hpp).
      const int program_stages = s.grouped_runs > 0 ? s.grouped_runs : length;
      const std::string program = program_of(s);
      // The tables of the program that ran (the loss is a stage of the DP chain).
      const double table_mib = double(chain_dp_table_bytes(program_stages + 1, slots)) / 1048576.0;
      const double rotor_overhead = 100 * (persistent.solution.makespan / base - 1);
      std::printf("%6d %7d %10.1f %9.4f %10.1f %10.2f %9.4f %10.2f %10s  %s / %s\n", length, slots, budget,
                  optimal.seconds, table_mib, 100 * (s.makespan / base - 1), persistent.seconds, rotor_overhead,
                  sqrt_overhead < 0 ? "over budget" : std::to_string(sqrt_overhead).substr(0, 6).c_str(),
                  program.c_str(), program_of(persistent.solution).c_str());
      results.push_back({{"stages", length}, {"slots", slots}, {"budget", budget}, {"least_budget", least},
                         {"store_all_peak", store_all}, {"solve_seconds", optimal.seconds}, {"table_mib", table_mib},
                         {"makespan", s.makespan}, {"store_all_makespan", base},
                         {"overhead_pct", 100 * (s.makespan / base - 1)}, {"peak", s.peak},
                         {"program", program}, {"method", s.method},
                         {"persistent", {{"solve_seconds", persistent.seconds},
                                         {"makespan", persistent.solution.makespan},
                                         {"overhead_pct", rotor_overhead},
                                         {"peak", persistent.solution.peak},
                                         {"program", program_of(persistent.solution)},
                                         {"method", persistent.solution.method}}}});
    }
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"benchmark", "bench_solver"}, {"results", results}}.dump(1) << "\n";
    std::printf("\nwrote %s\n", json_path.c_str());
  }
  return 0;
}
