#include "scheduler/solution_check.hpp"

#include <sstream>
#include <stdexcept>

#include "scheduler/simulator.hpp"

namespace rematch {

std::string number_text(double value) {
  std::ostringstream text;
  text.precision(15);
  text << value;
  return text.str();
}

Solution replayed_solution(const Graph& graph, double memory_limit, std::string solver, Schedule ops, bool exact,
                           std::string method) {
  const SimulationResult sim = simulate(graph, ops, memory_limit);
  if (!sim.valid)
    throw std::logic_error("solver " + solver + " produced an invalid schedule: op " + std::to_string(sim.bad_op) +
                           ": " + sim.reason);
  return {std::move(solver), exact, memory_limit, std::move(ops), sim.makespan, sim.peak, std::move(method)};
}

void throw_infeasible(double memory_limit, double min_memory, const std::string& who) {
  throw InfeasibleBudget("memory budget " + number_text(memory_limit) + " is below the least feasible budget " +
                             number_text(min_memory) + (who.empty() ? "" : " of " + who),
                         min_memory);
}

}  // namespace rematch
