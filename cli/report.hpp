// What `rematch` prints for people: a header, the op list in compact notation, and memory over
// time (ASCII in the terminal, SVG on request).
#pragma once

#include <string>

#include "scheduler/graph.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"

namespace rematch::cli {

std::string describe_graph(const Graph& graph);
// Header lines, op list, and an ASCII chart of memory against time.
std::string solution_text(const Graph& graph, const Solution& solution);
// Memory against time as a column chart of `width` x `height` characters, with the budget line.
std::string ascii_memory_chart(const SimulationResult& replay, double budget, int width = 72, int height = 12);
// The same as an SVG document: memory while each op runs, memory between ops, and the budget.
std::string svg_memory_plot(const SimulationResult& replay, double budget, const std::string& title);
// The solver registry for help texts: "optimal | branch-sequential | ...", and one line per solver
// with its description.
std::string solver_choices();
std::string solver_list();

}  // namespace rematch::cli
