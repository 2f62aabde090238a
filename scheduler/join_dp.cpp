#include "scheduler/join_dp.hpp"

#include <algorithm>
#include <cmath>

namespace rematch {

namespace {

// The pieces of a DpChain that depend on the nesting: the inner inputs held before the loss
// stage, and (innermost) the outer gradients the real loss allocates beside its own.
template <class Size>
DpChain<Size> nested_chain(const Graph& graph, const std::vector<int>& order, int level, double slot, Size loss_extra,
                           DpClass kind) {
  DpChain<Size> c = make_dp_chain<Size>(graph, order[level], slot, kind);
  const int n = c.stages - 1;
  for (std::size_t m = level + 1; m < order.size(); ++m) {
    const double x0 = graph.branches[order[m]].cw[0];
    if constexpr (std::is_integral_v<Size>) c.pre_loss_extra += static_cast<Size>(std::ceil(x0 / slot - 1e-9));
    else c.pre_loss_extra += x0;
  }
  if (level + 1 == static_cast<int>(order.size())) {
    c.btmp[n] += loss_extra;
  } else {
    // Held by this branch while the inner problem runs: x_n, whose gradient the loss then puts
    // in its place (same size), or xbar_n and, from the loss on, its gradient too.
    c.inner_loss = true;
    c.loss_reserve[0] = c.x[n];
    c.loss_reserve[1] = c.xb[n] + c.x[n];
  }
  return c;
}

// The nested chain of `level` in the graph's own units, with its inner problems' least budgets.
DpChain<double> least_chain(const Graph& graph, const std::vector<int>& order, int level, double loss_extra,
                            DpClass kind);

double least(const Graph& graph, const std::vector<int>& order, int level, double loss_extra, DpClass kind) {
  return dp_min_memory(least_chain(graph, order, level, loss_extra, kind));
}

// An inner problem's extra loss memory: the outer gradient, when the outer branch holds plain x_n.
double inner_loss_extra(const DpChain<double>& outer, Input kind, double loss_extra) {
  return kind == Input::x ? loss_extra + outer.x[outer.stages - 1] : loss_extra;
}

DpChain<double> least_chain(const Graph& graph, const std::vector<int>& order, int level, double loss_extra,
                            DpClass kind) {
  DpChain<double> c = nested_chain<double>(graph, order, level, 0, loss_extra, kind);
  if (c.inner_loss)
    for (Input in : {Input::x, Input::xbar})
      c.inner_least[static_cast<int>(in)] = least(graph, order, level + 1, inner_loss_extra(c, in, loss_extra), kind);
  return c;
}

// Returns the least budget of `level` (least(graph, order, level, loss_extra, kind)).
double emit_least(const Graph& graph, const std::vector<int>& order, int level, double loss_extra, DpClass kind,
                  Schedule& out) {
  const DpChain<double> c = least_chain(graph, order, level, loss_extra, kind);
  return dp_min_memory_schedule(c, order[level], [&](Input in, Schedule& ops) {
    emit_least(graph, order, level + 1, inner_loss_extra(c, in, loss_extra), kind, ops);
  }, out);
}

}  // namespace

NestedJoinDp::NestedJoinDp(const Graph& graph, std::vector<int> order, double slot, int max_memory, DpClass kind)
    : graph_(&graph), order_(std::move(order)), slot_(slot), max_memory_(max_memory), kind_(kind) {
  outer_ = &build(0, 0);
}

const ChainDp& NestedJoinDp::build(int level, int loss_extra) {
  auto& slot = built_[{level, loss_extra}];
  if (slot) return *slot;
  DpChain<int> c = nested_chain<int>(*graph_, order_, level, slot_, loss_extra, kind_);
  InnerProblem inner_x, inner_xbar;
  if (c.inner_loss) {
    const int n = c.stages - 1;
    inner_x = {&build(level + 1, loss_extra + c.x[n]), order_[level + 1]};
    inner_xbar = {&build(level + 1, loss_extra), order_[level + 1]};
  }
  slot = std::make_unique<ChainDp>(std::move(c), max_memory_, inner_x, inner_xbar);
  return *slot;
}

float NestedJoinDp::value(int memory) const {
  return outer_->value(0, outer_->chain().stages - 1, whole_problem, memory);
}

Schedule NestedJoinDp::emit(int memory) const {
  Schedule ops;
  outer_->emit(0, outer_->chain().stages - 1, whole_problem, memory, order_[0], ops);
  return ops;
}

double nested_join_min_memory(const Graph& graph, const std::vector<int>& order, DpClass kind) {
  return least(graph, order, 0, 0, kind);
}

Schedule nested_join_min_memory_schedule(const Graph& graph, const std::vector<int>& order, double* least,
                                         DpClass kind) {
  Schedule ops;
  const double budget = emit_least(graph, order, 0, 0, kind, ops);
  if (least) *least = budget;
  return ops;
}

std::vector<std::vector<int>> distinct_branch_orders(const Graph& graph) {
  // Label each branch by its first identical branch; permute labels; map back to indices.
  std::vector<int> label(graph.num_branches());
  for (int j = 0; j < graph.num_branches(); ++j) label[j] = graph.first_identical(j);
  std::vector<int> labels = label;
  std::sort(labels.begin(), labels.end());
  std::vector<std::vector<int>> orders;
  do {
    std::vector<int> order, used(graph.num_branches(), 0);
    for (int l : labels)
      for (int j = 0; j < graph.num_branches(); ++j)
        if (label[j] == l && !used[j]) {
          used[j] = 1;
          order.push_back(j);
          break;
        }
    orders.push_back(order);
  } while (std::next_permutation(labels.begin(), labels.end()));
  return orders;
}

std::size_t nested_join_table_bytes(const Graph& graph, int max_memory, DpClass kind) {
  // Level m of the nesting has up to 2^m variants (by the kinds of the outer x_n): 2^k - 1 tables
  // at most, each no larger than the longest branch's.
  int longest = 0;
  for (const Branch& b : graph.branches) longest = std::max(longest, b.stages());
  return ((std::size_t{1} << graph.num_branches()) - 1) * chain_dp_table_bytes(longest + 1, max_memory, kind);
}

}  // namespace rematch
