// The simulator against docs/model.md#memory-and-operations, op by op: requirements, peaks, what stays and what goes.
#include <gtest/gtest.h>

#include "scheduler/simulator.hpp"

namespace rematch {
namespace {

// Sizes chosen pairwise distinct so that every peak identifies the items it counts.
Graph two_stage_chain() {
  Branch b;
  b.fw = {3, 5};
  b.bw = {7, 11};
  b.cw = {1, 2, 4};
  b.cbw = {1, 8, 16};
  b.ftmp = {32, 64};
  b.btmp = {128, 256};
  return {{b}, {13, 512}};
}

Schedule store_all() {
  return {Op::f_all(0, 0), Op::f_all(0, 1), Op::loss_op(), Op::b(0, 1), Op::b(0, 0)};
}

TEST(SimulatorStoreAll, MakespanIsEveryOpOnceAndPeakIsTheLargestOpPeak) {
  const SimulationResult r = simulate(two_stage_chain(), store_all());
  ASSERT_TRUE(r.valid) << r.reason;
  EXPECT_EQ(r.makespan, 3 + 5 + 13 + 11 + 7);
  // loss: x0 + xbar1 + xbar2 held (1 + 8 + 16), plus cw[2] = 4 and loss.tmp = 512.
  EXPECT_EQ(r.peak, 1 + 8 + 16 + 4 + 512);
}

TEST(SimulatorPeaks, EachOpPeakFollowsTheSpecFormula) {
  const Graph g = two_stage_chain();
  MemoryState s(g);
  EXPECT_EQ(s.memory(), 1);
  EXPECT_EQ(s.apply(Op::f_all(0, 0)).peak, 1 + 8 + 32);   // mem + cbw[1] + ftmp[0]
  EXPECT_EQ(s.apply(Op::f_ck(0, 1)).peak, 9 + 4 + 64);    // mem + cw[2] + ftmp[1]
  EXPECT_EQ(s.apply(Op::loss_op()).peak, 13 + 4 + 512);   // mem + cw[n] + loss.tmp
  EXPECT_FALSE(s.holds_x(0, 2)) << "correction (1): the loss frees the plain x_n";
  EXPECT_TRUE(s.holds_y(0, 2));
  MemoryState::Step b1 = s.apply(Op::b(0, 1));
  EXPECT_FALSE(b1.ok) << "B 1 needs xbar_2, which was never produced";
  EXPECT_TRUE(s.apply(Op::f_all(0, 1)).ok);
  b1 = s.apply(Op::b(0, 1));
  ASSERT_TRUE(b1.ok);
  EXPECT_EQ(b1.peak, (1 + 8 + 4 + 16) + 2 + 256);  // mem + cw[1] + btmp[1]
  EXPECT_TRUE(s.holds_xbar(0, 1)) << "B i keeps xbar_i when x_i is not held";
  EXPECT_FALSE(s.holds_y(0, 2));
  EXPECT_FALSE(s.holds_xbar(0, 2));
  const MemoryState::Step b0 = s.apply(Op::b(0, 0));
  ASSERT_TRUE(b0.ok);
  EXPECT_EQ(b0.peak, (1 + 8 + 2) + 1 + 128);
  EXPECT_EQ(s.memory(), 0) << "y_0 leaves memory at once; x_0, y_1 and xbar_1 are consumed";
  EXPECT_TRUE(s.complete());
}

TEST(SimulatorForward, FNoneRemovesXIfHeldElseXbar) {
  const Graph g = two_stage_chain();
  MemoryState s(g);
  ASSERT_TRUE(s.apply(Op::f_all(0, 0)).ok);
  ASSERT_TRUE(s.apply(Op::f_none(0, 1)).ok);  // input is xbar_1 (x_1 not held): xbar_1 goes
  EXPECT_FALSE(s.holds_xbar(0, 1));
  EXPECT_TRUE(s.holds_x(0, 2));
  ASSERT_TRUE(s.apply(Op::f_none(0, 0)).ok);  // input x_0 held: x_0 goes, for good
  EXPECT_FALSE(s.holds_x(0, 0));
  EXPECT_EQ(s.memory(), 2 + 4);
}

TEST(SimulatorForward, BKeepsXbarButConsumesXWhenBothHeld) {
  const Graph g = two_stage_chain();
  MemoryState s(g);
  for (Op op : {Op::f_all(0, 0), Op::f_ck(0, 0), Op::f_all(0, 1), Op::loss_op(), Op::b(0, 1)})
    ASSERT_TRUE(s.apply(op).ok) << to_string(op);
  EXPECT_FALSE(s.holds_x(0, 1));
  EXPECT_TRUE(s.holds_xbar(0, 1));
}

TEST(SimulatorValidity, RejectsTheFirstInvalidOpWithItsIndex) {
  const Graph g = two_stage_chain();
  struct Case {
    Schedule ops;
    std::size_t bad;
    const char* why;
  };
  const std::vector<Case> cases = {
      {{Op::f_all(0, 1)}, 0, "needs x_1 or xbar_1"},
      {{Op::f_all(0, 0), Op::b(0, 0)}, 1, "needs the gradient y_1"},
      {{Op::f_all(0, 0), Op::f_all(0, 1), Op::loss_op(), Op::loss_op()}, 3, "runs exactly once"},
      {{Op::f_ck(0, 0), Op::f_none(0, 1), Op::loss_op(), Op::b(0, 1)}, 3, "needs xbar_2"},
      {{Op::drop(Item::x, 0, 0), Op::f_all(0, 0)}, 1, "needs x_0 or xbar_0"},
      {{Op::drop(Item::xbar, 0, 1)}, 0, "not held"},
      {{Op::f_all(0, 2)}, 0, "out of range"},
      {{Op::f_all(1, 0)}, 0, "branch 1 out of range"},
      {{Op::loss_op()}, 0, "loss needs x or xbar"},
      {{Op::f_all(0, 0), Op::f_all(0, 1), Op::loss_op(), Op::b(0, 1)}, 4, "B 0 0 never ran"},
      {{Op::f_all(0, 0)}, 1, "the loss never ran"},
  };
  for (const Case& c : cases) {
    const SimulationResult r = simulate(g, c.ops);
    EXPECT_FALSE(r.valid);
    EXPECT_EQ(r.bad_op, c.bad) << r.reason;
    EXPECT_NE(r.reason.find(c.why), std::string::npos) << r.reason;
  }
}

TEST(SimulatorBudget, PeakAboveTheBudgetIsInvalidAtThatOp) {
  const Graph g = two_stage_chain();
  const double peak = simulate(g, store_all()).peak;
  EXPECT_TRUE(simulate(g, store_all(), peak).valid);
  const SimulationResult r = simulate(g, store_all(), peak - 1);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.bad_op, 2u) << "the loss is the op at the peak";
  EXPECT_FALSE(simulate(g, store_all(), 0.5).valid) << "the inputs alone exceed the budget";
}

TEST(SimulatorJoin, LossNeedsEveryBranchAndFreesEveryPlainOutput) {
  Graph g = two_stage_chain();
  g.branches.push_back(g.branches[0]);
  MemoryState s(g);
  for (Op op : {Op::f_all(0, 0), Op::f_all(0, 1)}) ASSERT_TRUE(s.apply(op).ok);
  EXPECT_FALSE(s.apply(Op::loss_op()).ok) << "branch 1 has no output yet";
  for (Op op : {Op::f_ck(1, 0), Op::f_none(1, 1)}) ASSERT_TRUE(s.apply(op).ok);
  const double before = s.memory();
  const MemoryState::Step loss = s.apply(Op::loss_op());
  ASSERT_TRUE(loss.ok);
  EXPECT_EQ(loss.peak, before + 4 + 4 + 512);
  EXPECT_TRUE(s.holds_xbar(0, 2));
  EXPECT_FALSE(s.holds_x(1, 2));
  EXPECT_TRUE(s.holds_y(0, 2) && s.holds_y(1, 2));
}

}  // namespace
}  // namespace rematch
