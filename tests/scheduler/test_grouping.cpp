// Grouped stages (grouping.hpp): a schedule of the grouped graph expands into a valid schedule of
// the original graph with the same makespan and a peak no higher, and the solver falls back to
// grouping on graphs whose full program exceeds its work limit.
#include "scheduler/grouping.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "scheduler/baselines.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#include "tests/test_scale.hpp"

namespace rematch {
namespace {

Graph random_graph(std::mt19937_64& rng, int branches, int min_n, int max_n, bool identical) {
  std::uniform_real_distribution<double> u(0, 1);
  Graph g;
  for (int j = 0; j < branches; ++j) {
    if (identical && j > 0) {
      g.branches.push_back(g.branches[0]);
      continue;
    }
    const int n = min_n + static_cast<int>(rng() % (max_n - min_n + 1));
    Branch b;
    for (int i = 0; i < n; ++i) {
      b.fw.push_back(std::round(1 + 9 * u(rng)));
      b.bw.push_back(std::round(1 + 19 * u(rng)));
      b.ftmp.push_back(u(rng) < 0.5 ? 0.0 : std::round(3 * u(rng)));
      b.btmp.push_back(u(rng) < 0.5 ? 0.0 : std::round(3 * u(rng)));
    }
    for (int i = 0; i <= n; ++i) {
      b.cw.push_back(std::round(1 + 6 * u(rng)));
      b.cbw.push_back(i == 0 ? b.cw.back() : b.cw.back() + std::round(6 * u(rng)));
    }
    g.branches.push_back(b);
  }
  g.loss = {std::round(3 * u(rng)), std::round(2 * u(rng))};
  return g;
}

// Random increasing starts from 0 to each branch's stage count.
StageGroups random_groups(std::mt19937_64& rng, const Graph& graph) {
  StageGroups groups;
  for (const Branch& b : graph.branches) {
    std::vector<int> s{0};
    for (int i = 1; i < b.stages(); ++i)
      if (rng() % 2) s.push_back(i);
    s.push_back(b.stages());
    groups.push_back(s);
  }
  return groups;
}

TEST(GroupedGraph, GroupsOfOneStageAreTheGraphItself) {
  std::mt19937_64 rng(11);
  for (int t = 0; t < 50; ++t) {
    const Graph g = random_graph(rng, 1 + t % 3, 1, 9, false);
    int longest = 0;
    for (const Branch& b : g.branches) longest = std::max(longest, b.stages());
    const Graph same = grouped_graph(g, even_groups(g, longest));
    ASSERT_EQ(same.branches.size(), g.branches.size());
    for (std::size_t j = 0; j < g.branches.size(); ++j) EXPECT_EQ(same.branches[j], g.branches[j]) << "graph " << t;
    EXPECT_EQ(same.loss, g.loss);
  }
}

TEST(GroupedGraph, EvenGroupsCoverEveryStageInNearlyEqualRuns) {
  Graph g;
  g.branches.push_back(Branch{std::vector<double>(10, 1), std::vector<double>(10, 1), std::vector<double>(11, 1),
                              std::vector<double>(11, 1), std::vector<double>(10, 0), std::vector<double>(10, 0)});
  g.branches.push_back(Branch{std::vector<double>(2, 1), std::vector<double>(2, 1), std::vector<double>(3, 1),
                              std::vector<double>(3, 1), std::vector<double>(2, 0), std::vector<double>(2, 0)});
  const StageGroups s = even_groups(g, 4);
  EXPECT_EQ(s[0], (std::vector<int>{0, 2, 5, 7, 10}));
  EXPECT_EQ(s[1], (std::vector<int>{0, 1, 2}));  // a branch shorter than the group count: one per stage
  EXPECT_THROW(even_groups(g, 0), std::invalid_argument);
  EXPECT_THROW(grouped_graph(g, StageGroups{{0, 5, 5, 10}, {0, 2}}), std::invalid_argument);
  EXPECT_THROW(grouped_graph(g, StageGroups{{0, 10}}), std::invalid_argument);
}

// F_none on a grouped xbar input consumes every member of it; the solvers rarely emit that.
TEST(GroupedGraph, FNoneOnAGroupedXbarInputDropsTheWholeGroup) {
  std::mt19937_64 rng(1);
  const Graph g = random_graph(rng, 1, 4, 4, false);
  const StageGroups groups{{0, 2, 4}};
  const Graph grouped = grouped_graph(g, groups);
  const Schedule coarse{Op::f_all(0, 0), Op::f_none(0, 1), Op::loss_op(), Op::f_all(0, 0),
                        Op::f_all(0, 1),  Op::b(0, 1),      Op::b(0, 0)};
  const SimulationResult want = simulate(grouped, coarse);
  ASSERT_TRUE(want.valid) << want.reason;
  const Schedule ops = expand_grouped(groups, coarse);
  const Schedule expected{Op::f_all(0, 0), Op::f_all(0, 1), Op::drop(Item::xbar, 0, 1), Op::f_none(0, 2),
                          Op::f_none(0, 3), Op::loss_op(), Op::f_all(0, 0), Op::f_all(0, 1), Op::f_all(0, 2),
                          Op::f_all(0, 3), Op::b(0, 3), Op::b(0, 2), Op::b(0, 1), Op::b(0, 0)};
  EXPECT_EQ(ops, expected);
  const SimulationResult got = simulate(g, ops);
  ASSERT_TRUE(got.valid) << got.reason;
  EXPECT_DOUBLE_EQ(got.makespan, want.makespan);
  EXPECT_LE(got.peak, want.peak);
}

// Every schedule the solvers give for the grouped graph (the certified optimum where the grouped
// graph is small, so exhaustive schedules with drops and xbar inputs are among them), at every
// budget from the grouped least to its store-all peak.
TEST(GroupedGraph, ExpandedSchedulesReplayWithTheGroupedMakespanAndNoHigherPeak) {
  std::mt19937_64 rng(5);
  const int graphs = 60 / REMATCH_TEST_SCALE + 6;
  int checked = 0;
  for (int t = 0; t < graphs; ++t) {
    const int k = 1 + t % 3;
    const Graph g = random_graph(rng, k, 2, k == 1 ? 12 : 6, t % 2 == 1);
    const StageGroups groups = random_groups(rng, g);
    const Graph grouped = grouped_graph(g, groups);
    const double least = min_feasible_memory(grouped, {.certify_states = 0});
    const double top = simulate(grouped, store_all_schedule(grouped)).peak;
    for (double m = least; m <= top; m += std::max(1.0, std::floor((top - least) / 8))) {
      for (const std::string solver : {"optimal", "recompute-all", "segments:2", "sqrt", "branch-sequential"}) {
        Solution s;
        try {
          s = solve(grouped, m, {.solver = solver, .certify_states = 200'000});
        } catch (const InfeasibleBudget&) {
          continue;
        }
        const Schedule ops = expand_grouped(groups, s.ops);
        const SimulationResult r = simulate(g, ops, m);
        ASSERT_TRUE(r.valid) << "graph " << t << " M=" << m << " " << solver << ": op " << r.bad_op << ": "
                             << r.reason;
        EXPECT_NEAR(r.makespan, s.makespan, 1e-9 * s.makespan) << "graph " << t << " M=" << m << " " << solver;
        EXPECT_LE(r.peak, s.peak + 1e-9) << "graph " << t << " M=" << m << " " << solver;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 100);
}

// A work limit the full program exceeds (a 60-stage chain, a siamese pair of 25-stage branches):
// the schedule comes from the grouped program (or a baseline, or the least-memory schedule), is
// valid, says it is not exact, and is no slower than any fixed strategy that fits.
TEST(GroupedSolve, GraphsOverTheWorkLimitAreSolvedByGroupingNoSlowerThanTheBaselines) {
  std::mt19937_64 rng(9);
  for (const Graph& g : {random_graph(rng, 1, 60, 60, false), random_graph(rng, 2, 25, 25, true)}) {
    SolveOptions options;
    options.work_limit = 2e6;
    const double least = min_feasible_memory(g, options);
    const double top = simulate(g, store_all_schedule(g)).peak;
    int grouped = 0;
    for (int step = 0; step < 6; ++step) {
      const double m = std::floor(least + (top - least) * step / 6);
      const Solution s = solve(g, m, options);
      EXPECT_FALSE(s.exact);
      EXPECT_LE(s.peak, m);
      // Small budgets mean few slots, whose full program may fit the limit.
      if (s.grouped_runs > 0) {
        ++grouped;
        EXPECT_LT(s.grouped_runs, g.branches[0].stages());
      }
      for (const std::string baseline : {"recompute-all", "segments:4", "sqrt", "revolve"}) {
        if (baseline == "revolve" && !g.is_chain()) continue;
        try {
          EXPECT_LE(s.makespan, solve(g, m, {.solver = baseline}).makespan) << baseline << " M=" << m;
        } catch (const InfeasibleBudget&) {
        }
      }
    }
    EXPECT_GT(grouped, 0) << "the grouped program never gave the schedule (" << g.num_branches() << " branches)";
    EXPECT_THROW(solve(g, least - 1, options), InfeasibleBudget);
  }
}

}  // namespace
}  // namespace rematch
