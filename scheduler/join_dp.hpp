// Join graphs as nested chains: the branches run their forward sweeps one after another (in a
// given order), the loss runs once every branch output is there, and the branches are reversed in
// the opposite order. Each branch is a ChainDp whose loss stage is the whole problem of the next
// branch (DpChain::inner_loss), so each branch gets the best checkpointing for the memory the
// others leave it, at every budget. A chain is the case of one branch.
//
// The class of schedules is "branch-sequential": reversals of different branches do not
// interleave (docs/solvers.md says what that misses and how the optimal solver closes the gap on
// small graphs).
#pragma once

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "scheduler/chain_dp.hpp"

namespace rematch {

class NestedJoinDp {
 public:
  // `order`: branch indices, outermost (first forward, last backward) first; sizes in slots of `slot`.
  NestedJoinDp(const Graph& graph, std::vector<int> order, double slot, int max_memory,
               DpClass kind = DpClass::with_drops);

  float value(int memory) const;                 // least makespan, ChainDp::infinity if infeasible
  Schedule emit(int memory) const;               // an optimal schedule of the class

 private:
  const ChainDp& build(int level, int loss_extra);

  const Graph* graph_;
  std::vector<int> order_;
  double slot_;
  int max_memory_;
  DpClass kind_;
  std::map<std::pair<int, int>, std::unique_ptr<ChainDp>> built_;  // by (level, extra loss tmp)
  const ChainDp* outer_ = nullptr;
};

// The least budget of the nested class for `order`, exactly, in the graph's units, and a schedule
// whose peak is that budget (with the budget in `least`, when given: the same value as
// nested_join_min_memory, for the price of one computation).
double nested_join_min_memory(const Graph& graph, const std::vector<int>& order,
                              DpClass kind = DpClass::with_drops);
Schedule nested_join_min_memory_schedule(const Graph& graph, const std::vector<int>& order, double* least = nullptr,
                                         DpClass kind = DpClass::with_drops);

// Every forward order worth trying: all permutations, identical branches counted once.
std::vector<std::vector<int>> distinct_branch_orders(const Graph& graph);

// Tables of the nested DPs for one order at `max_memory` slots (bytes), for budget decisions.
std::size_t nested_join_table_bytes(const Graph& graph, int max_memory, DpClass kind = DpClass::with_drops);

}  // namespace rematch
