// The model's per-op memory rule (scheduler/op_memory.hpp) is the one every peak comes from: the
// simulator steps by it, and the dynamic programs and the exhaustive search, which compute their
// own peaks on fused ops or packed states, claim least budgets that the replay of their schedules
// measures exactly. A solver whose peak arithmetic drifts from the rule fails here.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "scheduler/baselines.hpp"
#include "scheduler/exhaustive.hpp"
#include "scheduler/interleaved_dp.hpp"
#include "scheduler/join_dp.hpp"
#include "scheduler/op_memory.hpp"
#include "scheduler/simulator.hpp"
#include "tests/reference_bridge.hpp"

namespace rematch {
namespace {

// Sizes are distinct powers of two, so each term of a peak is visible in the sum.
Branch distinct_sizes_branch() {
  Branch b;
  b.fw = {1, 1};
  b.bw = {1, 1};
  b.cw = {1, 2, 4};
  b.cbw = {1, 8, 16};
  b.ftmp = {32, 64};
  b.btmp = {128, 256};
  return b;
}

TEST(MemoryRule, EachOpAddsItsOutputAndItsTransient) {
  const Branch b = distinct_sizes_branch();
  EXPECT_EQ(peak_while(0, stage_op_memory(b, OpKind::F_all, 0)), 8 + 32);    // xbar_1, ftmp 0
  EXPECT_EQ(peak_while(0, stage_op_memory(b, OpKind::F_ck, 1)), 4 + 64);     // x_2, ftmp 1
  EXPECT_EQ(peak_while(0, stage_op_memory(b, OpKind::F_none, 1)), 4 + 64);   // x_2, ftmp 1
  EXPECT_EQ(peak_while(0, stage_op_memory(b, OpKind::B, 1)), 2 + 256);       // y_1, btmp 1
  const Graph join{{b, b}, Loss{1, 512}};
  EXPECT_EQ(peak_while(1000, loss_memory(join)), 1000 + 4 + 4 + 512);        // both y_2, loss tmp
}

TEST(MemoryRule, TheSimulatorStepsByTheRule) {
  const Graph g{{distinct_sizes_branch()}, Loss{1, 512}};
  MemoryState state(g);
  for (const Op& op : store_all_schedule(g)) {
    const double held = state.memory();
    const double expected =
        peak_while(held, op.kind == OpKind::loss ? loss_memory(g) : stage_op_memory(g.branches[0], op.kind, op.stage));
    const MemoryState::Step step = state.apply(op);
    ASSERT_TRUE(step.ok) << to_string(op);
    EXPECT_EQ(step.peak, expected) << to_string(op);
  }
}

// Integer sizes with transients, so each solver's own peak arithmetic is exact and must equal the
// replay's.
Graph random_graph(std::mt19937_64& rng, int branches) {
  reference::RandomSpec spec;
  spec.max_stages = branches == 1 ? 6 : 3;
  spec.max_tmp = 4;
  return testing::from_reference(branches == 1 ? reference::random_chain(rng, spec)
                                                : reference::random_join(rng, branches, false, spec));
}

TEST(MemoryRule, DynamicProgramsLeastBudgetsAreTheReplayedPeaks) {
  std::mt19937_64 rng(18);
  for (int trial = 0; trial < 150; ++trial) {
    const Graph g = random_graph(rng, 1 + trial % 2);
    for (DpClass kind : {DpClass::with_drops, DpClass::persistent}) {
      const std::vector<int> order = distinct_branch_orders(g).front();
      double least = 0;
      const Schedule ops = nested_join_min_memory_schedule(g, order, &least, kind);
      const SimulationResult replay = simulate(g, ops);
      ASSERT_TRUE(replay.valid) << replay.reason;
      EXPECT_EQ(replay.peak, least) << "trial " << trial;
      // At unit slots the tables' value at that budget is the replayed makespan of their schedule.
      const NestedJoinDp dp(g, order, 1, static_cast<int>(least), kind);
      ASSERT_LT(dp.value(static_cast<int>(least)), ChainDp::infinity) << "trial " << trial;
      const SimulationResult at_least = simulate(g, dp.emit(static_cast<int>(least)), least);
      ASSERT_TRUE(at_least.valid) << "trial " << trial << ": " << at_least.reason;
      EXPECT_FLOAT_EQ(at_least.makespan, dp.value(static_cast<int>(least)));
    }
    if (!g.is_chain()) {
      const InterleavedJoinDp il(g, 1, 200);
      const int least = il.least_memory();
      const SimulationResult replay = simulate(g, il.emit(least));
      ASSERT_TRUE(replay.valid) << replay.reason;
      EXPECT_EQ(replay.peak, least) << "trial " << trial;
    }
  }
}

TEST(MemoryRule, ExhaustiveLeastBudgetIsTheReplayedPeakAndNoSolverGoesBelowIt) {
  std::mt19937_64 rng(1818);
  for (int trial = 0; trial < 60; ++trial) {
    const Graph g = random_graph(rng, 1 + trial % 2);
    const ExhaustiveResult least = exhaustive_min_memory(g, 2'000'000);
    ASSERT_TRUE(least.finished && least.feasible);
    EXPECT_EQ(simulate(g, least.ops).peak, least.value) << "trial " << trial;
    EXPECT_LE(least.value, nested_join_min_memory(g, distinct_branch_orders(g).front())) << "trial " << trial;
    const ExhaustiveResult fastest = exhaustive_optimum(g, least.value, 2'000'000);
    ASSERT_TRUE(fastest.finished && fastest.feasible);
    const SimulationResult replay = simulate(g, fastest.ops, least.value);
    ASSERT_TRUE(replay.valid) << replay.reason;
    EXPECT_DOUBLE_EQ(replay.makespan, fastest.value);
  }
}

}  // namespace
}  // namespace rematch
