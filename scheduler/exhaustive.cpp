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

// One bit per item (x, xbar, y at every position of every branch), plus the loss and the
// per-branch completion flags: what determines every later op's legality and peak.
std::string encode(const MemoryState& state, const Graph& graph) {
  std::string key;
  unsigned char byte = 0;
  int bits = 0;
  auto push = [&](bool bit) {
    byte = static_cast<unsigned char>(byte | (bit << bits));
    if (++bits == 8) {
      key.push_back(static_cast<char>(byte));
      byte = 0;
      bits = 0;
    }
  };
  push(state.loss_done());
  for (int j = 0; j < graph.num_branches(); ++j) {
    push(state.branch_done(j));
    for (int p = 0; p <= graph.branches[j].stages(); ++p) {
      push(state.holds_x(j, p));
      push(state.holds_xbar(j, p));
      push(state.holds_y(j, p));
    }
  }
  key.push_back(static_cast<char>(byte));
  return key;
}

// Ops worth trying from `state`. Skipped, without loss of optimality: forwards whose output is
// already held (the state would be unchanged, or lose the input, at a cost >= 0 that a drop does
// for free).
void candidate_ops(const MemoryState& state, const Graph& graph, std::vector<Op>& ops) {
  ops.clear();
  if (!state.loss_done()) ops.push_back(Op::loss_op());
  for (int j = 0; j < graph.num_branches(); ++j) {
    const int n = graph.branches[j].stages();
    for (int i = 0; i <= n; ++i) {
      if (state.holds_x(j, i)) ops.push_back(Op::drop(Item::x, j, i));
      if (state.holds_xbar(j, i)) ops.push_back(Op::drop(Item::xbar, j, i));
      if (i == n || !(state.holds_x(j, i) || state.holds_xbar(j, i))) continue;
      if (!state.holds_xbar(j, i + 1)) ops.push_back(Op::f_all(j, i));
      if (!state.holds_x(j, i + 1)) {
        ops.push_back(Op::f_ck(j, i));
        ops.push_back(Op::f_none(j, i));
      }
      if (state.holds_y(j, i + 1) && state.holds_xbar(j, i + 1)) ops.push_back(Op::b(j, i));
    }
  }
}

struct Node {
  MemoryState state;
  double label;
  std::size_t parent;
  Op op;
};

// Dijkstra where a path's label is combined op by op by `extend` (monotone, so Dijkstra is exact).
ExhaustiveResult search(const Graph& graph, std::size_t state_cap,
                        const std::function<double(double label, const MemoryState::Step&)>& extend,
                        double initial_label) {
  ExhaustiveResult result;
  std::vector<Node> nodes;
  std::unordered_map<std::string, std::size_t> index;
  using Entry = std::pair<double, std::size_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  std::vector<char> settled;

  nodes.push_back({MemoryState(graph), initial_label, 0, Op::loss_op()});
  index.emplace(encode(nodes[0].state, graph), 0);
  settled.push_back(0);
  queue.push({initial_label, 0});
  std::vector<Op> ops;
  while (!queue.empty()) {
    const auto [label, id] = queue.top();
    queue.pop();
    if (settled[id] || label > nodes[id].label) continue;
    settled[id] = 1;
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
      auto [it, inserted] = index.emplace(encode(next, graph), nodes.size());
      if (inserted) {
        if (nodes.size() >= state_cap) return result;  // unfinished: nothing is known
        nodes.push_back({std::move(next), next_label, id, op});
        settled.push_back(0);
        queue.push({next_label, it->second});
      } else if (!settled[it->second] && next_label < nodes[it->second].label) {
        nodes[it->second].label = next_label;
        nodes[it->second].parent = id;
        nodes[it->second].op = op;
        queue.push({next_label, it->second});
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
      0.0);
}

ExhaustiveResult exhaustive_min_memory(const Graph& graph, std::size_t state_cap) {
  return search(
      graph, state_cap, [](double label, const MemoryState::Step& step) { return std::max(label, step.peak); },
      graph.initial_memory());
}

}  // namespace rematch
