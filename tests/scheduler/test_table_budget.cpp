// The table budget is an honest bound: each program's table estimate covers what it allocates
// (counted by the tables' allocator, table_memory.hpp), and a whole solve (every member of the
// portfolio, the even split's chains included) never holds more tables at once than
// SolveOptions::table_budget_bytes; the solution says when the budget made the slots coarser.
#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "scheduler/baselines.hpp"
#include "scheduler/chain_dp.hpp"
#include "scheduler/interleaved_dp.hpp"
#include "scheduler/join_dp.hpp"
#include "scheduler/resolution.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#include "scheduler/table_memory.hpp"
#include "tests/reference_bridge.hpp"

namespace rematch {
namespace {

// A random graph with sizes that are not integers, so the programs run over slots.
Graph fractional(const reference::Graph& r) {
  Graph g = testing::from_reference(r);
  for (Branch& b : g.branches)
    for (auto* sizes : {&b.cw, &b.cbw, &b.ftmp, &b.btmp})
      for (double& v : *sizes) v = v * 1.37 + 0.11;
  g.loss.tmp = g.loss.tmp * 1.37 + 0.11;
  return g;
}

Graph chain(std::mt19937_64& rng, int stages) {
  return fractional(reference::random_chain(rng, {.min_stages = stages, .max_stages = stages}));
}

Graph join(std::mt19937_64& rng, int branches, bool identical, int stages) {
  return fractional(reference::random_join(rng, branches, identical, {.min_stages = stages, .max_stages = stages}));
}

// The table bytes `make` allocates and holds, counted by the allocator.
template <class Make>
std::size_t held_by(Make&& make) {
  const std::size_t before = table_bytes_held();
  const auto program = make();
  return table_bytes_held() - before;
}

TEST(TableBudget, ChainTablesAreWhatTheEstimateCounts) {
  std::mt19937_64 rng(11);
  for (int stages : {1, 4, 17, 40})
    for (int slots : {16, 100, 1000, 4096})
      for (DpClass kind : {DpClass::with_drops, DpClass::persistent}) {
        SCOPED_TRACE(::testing::Message() << stages << " stages, " << slots << " slots, class " << int(kind));
        const Graph g = chain(rng, stages);
        const std::size_t held = held_by([&] {
          return ChainDp(make_dp_chain<int>(g, 0, 0.5, kind), slots);
        });
        const std::size_t estimate = chain_dp_table_bytes(stages + 1, slots, kind);
        EXPECT_LE(held, estimate);
        EXPECT_GE(double(held), 0.9 * double(estimate)) << "the estimate is that of the tables, not a loose bound";
      }
}

TEST(TableBudget, NestedJoinTablesAreWithinTheEstimate) {
  std::mt19937_64 rng(12);
  for (int branches : {2, 3})
    for (bool identical : {false, true})
      for (int slots : {16, 500, 2000})
        for (DpClass kind : {DpClass::with_drops, DpClass::persistent}) {
          const Graph g = join(rng, branches, identical, 12);
          SCOPED_TRACE(::testing::Message() << branches << " branches, " << slots << " slots, class " << int(kind));
          for (const std::vector<int>& order : distinct_branch_orders(g)) {
            const std::size_t held = held_by([&] { return NestedJoinDp(g, order, 0.5, slots, kind); });
            EXPECT_LE(held, nested_join_table_bytes(g, slots, kind));
          }
        }
}

TEST(TableBudget, InterleavedTablesAreWithinTheEstimate) {
  std::mt19937_64 rng(13);
  for (bool identical : {false, true})
    for (int slots : {16, 300}) {
      const Graph g = join(rng, 2, identical, 6);
      const std::size_t held = held_by([&] { return InterleavedJoinDp(g, 0.5, slots); });
      EXPECT_LE(held, InterleavedJoinDp::table_bytes(g, slots)) << slots << " slots";
    }
}

// Every solver of the portfolio on chains and joins at table budgets that force coarser slots: the
// most tables held at once stay within the budget, and the solution says when slots were reduced.
TEST(TableBudget, SolveHoldsNoMoreTablesThanTheBudget) {
  std::mt19937_64 rng(14);
  std::vector<Graph> graphs;
  for (int stages : {20, 30}) graphs.push_back(chain(rng, stages));
  graphs.push_back(join(rng, 2, true, 20));
  graphs.push_back(join(rng, 2, false, 15));
  graphs.push_back(join(rng, 3, false, 8));
  int reduced = 0;
  for (const Graph& g : graphs)
    for (const char* solver : {"optimal", "branch-sequential", "persistent", "even-split"})
      for (std::size_t budget : {std::size_t{1} << 20, std::size_t{6} << 20, std::size_t{64} << 20}) {
        SCOPED_TRACE(::testing::Message() << g.num_branches() << " branches of " << g.branches[0].stages()
                                        << " stages, solver " << solver << ", table budget " << budget);
        SolveOptions options;
        options.solver = solver;
        options.table_budget_bytes = budget;
        options.certify_states = 0;
        const double least = min_feasible_memory(g, options);
        const double top = simulate(g, store_all_schedule(g)).peak;
        for (double memory : {least + (top - least) / 4, least + (top - least) / 2}) {
          reset_table_peak();
          const std::size_t before = table_bytes_held();
          Solution s;
          try {
            s = solve(g, memory, options);
          } catch (const InfeasibleBudget&) {
            continue;  // rounding to coarse slots; the bound on tables is what is checked here
          }
          const DpClass kind = std::string(solver) == "persistent" ? DpClass::persistent : DpClass::with_drops;
          if (s.slots > 0 && nested_join_table_bytes(g, 16, kind) > budget) {
            EXPECT_EQ(s.slots, 16) << "the coarsest resolution, whatever its tables need";
            continue;
          }
          EXPECT_LE(table_bytes_peak() - before, budget) << "at budget " << memory;
          if (s.slots > 0) {
            EXPECT_EQ(s.slots_reduced, nested_join_table_bytes(g, default_slots, kind) > budget);
            EXPECT_EQ(s.slots_reduced, s.slots < default_slots);
            reduced += s.slots_reduced;
          }
        }
      }
  EXPECT_GT(reduced, 0) << "the table budgets above are small enough to reduce the slots";
}

}  // namespace
}  // namespace rematch
