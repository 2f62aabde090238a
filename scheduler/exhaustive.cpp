#include "scheduler/exhaustive.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <queue>
#include <string>
#include <unordered_map>

#include "scheduler/simulator.hpp"

namespace rematch {

namespace {

std::string encode(const MemoryState& state) {
  const std::vector<std::uint8_t>& flags = state.flags();
  return {flags.begin(), flags.end()};
}

// A lower bound on the time still needed (A*): the loss if it has not run, every pending
// backward, and a taped forward for each pending B i whose xbar_{i+1} is not held. Consistent:
// no op lowers it by more than its own cost.
double remaining_time_bound(const MemoryState& state, const Graph& graph) {
  double bound = state.loss_done() ? 0.0 : graph.loss.time;
  for (int j = 0; j < graph.num_branches(); ++j) {
    if (state.branch_done(j)) continue;
    const Branch& b = graph.branches[j];
    int frontier = b.stages();
    if (state.loss_done())
      while (frontier > 0 && !state.holds_y(j, frontier)) --frontier;
    for (int i = 0; i < frontier; ++i) bound += b.bw[i] + (state.holds_xbar(j, i + 1) ? 0.0 : b.fw[i]);
  }
  return bound;
}

// Ops worth trying from `state`. Skipped, without loss of optimality:
// - forwards whose output is already held (the state would be unchanged, or lose the input, at a
//   cost >= 0 that a drop does for free);
// - forwards at or above a branch's gradient frontier y_p (their outputs only feed stages whose
//   backward is done) and on finished branches;
// - dropping x^j_0 or F_none j 0: B j 0 needs x^j_0, which can never be recreated.
void candidate_ops(const MemoryState& state, const Graph& graph, std::vector<Op>& ops) {
  ops.clear();
  if (!state.loss_done()) ops.push_back(Op::loss_op());
  for (int j = 0; j < graph.num_branches(); ++j) {
    if (state.branch_done(j)) continue;
    const int n = graph.branches[j].stages();
    int frontier = n;
    if (state.loss_done())
      while (frontier > 0 && !state.holds_y(j, frontier)) --frontier;
    for (int i = 0; i <= n; ++i) {
      if (i > 0 && state.holds_x(j, i)) ops.push_back(Op::drop(Item::x, j, i));
      if (state.holds_xbar(j, i)) ops.push_back(Op::drop(Item::xbar, j, i));
      if (i == n || !(state.holds_x(j, i) || state.holds_xbar(j, i))) continue;
      if (i < frontier) {
        if (!state.holds_xbar(j, i + 1)) ops.push_back(Op::f_all(j, i));
        if (!state.holds_x(j, i + 1)) {
          ops.push_back(Op::f_ck(j, i));
          if (i > 0) ops.push_back(Op::f_none(j, i));
        }
      }
      if (state.holds_y(j, i + 1) && state.holds_xbar(j, i + 1)) ops.push_back(Op::b(j, i));
    }
  }
}

struct Node {
  MemoryState state;
  double label;   // of the best path found so far
  double bound;   // heuristic part of the priority
  std::size_t parent;
  Op op;
};

using Heuristic = std::function<double(const MemoryState&)>;

// Dijkstra where a path's label is combined op by op by `extend` (monotone, so Dijkstra is exact).
ExhaustiveResult search(const Graph& graph, std::size_t state_cap,
                        const std::function<double(double label, const MemoryState::Step&)>& extend,
                        double initial_label, const Heuristic& heuristic) {
  ExhaustiveResult result;
  std::vector<Node> nodes;
  std::unordered_map<std::string, std::size_t> index;
  using Entry = std::pair<double, std::size_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  std::vector<char> settled;

  MemoryState start(graph);
  const double start_bound = heuristic(start);
  nodes.push_back({std::move(start), initial_label, start_bound, 0, Op::loss_op()});
  index.emplace(encode(nodes[0].state), 0);
  settled.push_back(0);
  queue.push({initial_label + start_bound, 0});
  std::vector<Op> ops;
  while (!queue.empty()) {
    const auto [priority, id] = queue.top();
    queue.pop();
    if (settled[id] || priority > nodes[id].label + nodes[id].bound) continue;
    settled[id] = 1;
    const double label = nodes[id].label;
    if (nodes[id].state.complete()) {
      result.finished = result.feasible = true;
      result.value = label;
      for (std::size_t k = id; k != 0; k = nodes[k].parent) result.ops.push_back(nodes[k].op);
      std::reverse(result.ops.begin(), result.ops.end());
      return result;
    }
    candidate_ops(nodes[id].state, graph, ops);
    for (const Op& op : ops) {
      MemoryState next = nodes[id].state;
      const MemoryState::Step step = next.apply(op);
      if (!step.ok) continue;
      const double next_label = extend(label, step);
      if (!(next_label < std::numeric_limits<double>::infinity())) continue;
      auto [it, inserted] = index.emplace(encode(next), nodes.size());
      if (inserted) {
        if (nodes.size() >= state_cap) return result;  // unfinished: nothing is known
        const double bound = heuristic(next);
        nodes.push_back({std::move(next), next_label, bound, id, op});
        settled.push_back(0);
        queue.push({next_label + bound, it->second});
      } else if (Node& known = nodes[it->second]; !settled[it->second] && next_label < known.label) {
        known.label = next_label;
        known.parent = id;
        known.op = op;
        queue.push({next_label + known.bound, it->second});
      }
    }
  }
  result.finished = true;  // every reachable state explored: infeasible
  return result;
}

}  // namespace

ExhaustiveResult exhaustive_optimum(const Graph& graph, double memory_limit, std::size_t state_cap) {
  if (exceeds(graph.initial_memory(), memory_limit)) return {true, false, 0, {}};
  return search(
      graph, state_cap,
      [memory_limit](double label, const MemoryState::Step& step) {
        return exceeds(step.peak, memory_limit) ? std::numeric_limits<double>::infinity() : label + step.cost;
      },
      0.0, [&graph](const MemoryState& state) { return remaining_time_bound(state, graph); });
}

ExhaustiveResult exhaustive_min_memory(const Graph& graph, std::size_t state_cap) {
  return search(
      graph, state_cap, [](double label, const MemoryState::Step& step) { return std::max(label, step.peak); },
      graph.initial_memory(), [](const MemoryState&) { return 0.0; });
}

}  // namespace rematch
