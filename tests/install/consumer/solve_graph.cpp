// solve_graph GRAPH.json BUDGET: the optimal schedule's makespan and peak, through the installed headers.
#include <cstdlib>
#include <iostream>
#include <rematch/scheduler/io/graph_io.hpp>
#include <rematch/scheduler/solver.hpp>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: solve_graph GRAPH.json BUDGET\n";
    return 3;
  }
  const rematch::Graph graph = rematch::read_graph_file(argv[1]);
  const rematch::Solution s = rematch::solve(graph, std::atof(argv[2]));
  std::cout << s.solver << " makespan " << s.makespan << " peak " << s.peak << " ops " << s.ops.size() << "\n";
  return s.ops.empty() ? 1 : 0;
}
