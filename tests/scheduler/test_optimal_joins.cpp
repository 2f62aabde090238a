// The `optimal` solver on join graphs (siamese, triplet, cross-modal shapes) against the
// independent exhaustive reference, at every budget from infeasible to store-all.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "scheduler/baselines.hpp"
#include "scheduler/interleaved_dp.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#include "tests/reference_bridge.hpp"
#include "tests/test_scale.hpp"

namespace rematch {
namespace {

using testing::from_reference;
using testing::to_reference;

struct Tally {
  int pairs = 0, feasible = 0, dp_hits = 0, exact = 0;
  std::vector<std::string> misses;
};

void check_graph(const reference::Graph& ref, Tally& tally) {
  const Graph g = from_reference(ref);
  const std::vector<reference::Result> profile = reference::optimal_profile(ref);
  const double least = profile.back().peak;
  const double store_all = simulate(g, store_all_schedule(g)).peak;
  SolveOptions dp_only;
  dp_only.certify_states = 0;
  for (double budget = least - 1; budget <= store_all; budget += 1) {
    ++tally.pairs;
    const double optimum = reference::makespan_at(profile, budget);
    if (std::isinf(optimum)) {
      try {
        solve(g, budget);
        ADD_FAILURE() << "solved an infeasible budget";
      } catch (const InfeasibleBudget& e) {
        EXPECT_EQ(e.min_memory, least);
      }
      continue;
    }
    ++tally.feasible;
    const Solution best = solve(g, budget);
    EXPECT_NO_THROW(reference::replay(ref, to_reference(best.ops), budget));
    EXPECT_GE(best.makespan, optimum);
    if (best.exact) {
      ++tally.exact;
      EXPECT_EQ(best.makespan, optimum) << "claimed exact at budget " << budget;
    }
    try {
      const Solution dp = solve(g, budget, dp_only);
      EXPECT_NO_THROW(reference::replay(ref, to_reference(dp.ops), budget));
      if (dp.makespan == optimum) {
        ++tally.dp_hits;
        continue;
      }
      char line[160];
      std::snprintf(line, sizeof line, "k=%zu M=%g: DP %g vs optimum %g", ref.branches.size(), budget, dp.makespan,
                    optimum);
      tally.misses.push_back(line);
    } catch (const InfeasibleBudget&) {
      tally.misses.push_back("DP infeasible at a feasible budget");
    }
  }
}

void report(const char* name, const Tally& t) {
  std::printf("[%s] %d (graph, budget) pairs, %d feasible: uncertified optimal (dynamic programs or even split) hits %d (%.2f%%); "
              "optimal solver certified exact on %d\n",
              name, t.pairs, t.feasible, t.dp_hits, 100.0 * t.dp_hits / std::max(1, t.feasible), t.exact);
  for (std::size_t k = 0; k < std::min<std::size_t>(t.misses.size(), 10); ++k) std::printf("  miss: %s\n", t.misses[k].c_str());
}

Tally sweep(std::uint64_t seed, int graphs, int branches, bool identical, int max_stages) {
  std::mt19937_64 rng(seed);
  const reference::RandomSpec spec{.min_stages = 1, .max_stages = max_stages, .max_size = 6, .max_time = 9, .max_tmp = 2};
  Tally tally;
  for (int k = 0; k < graphs; ++k) check_graph(reference::random_join(rng, branches, identical, spec), tally);
  return tally;
}

struct JoinFamily {
  const char* name;
  std::uint64_t seed;
  int graphs, branches;
  bool identical;
  int max_stages;
};

class OptimalJoinVsExhaustive : public ::testing::TestWithParam<JoinFamily> {};

TEST_P(OptimalJoinVsExhaustive, ValidEverywhereAndExactWhereClaimed) {
  const JoinFamily& f = GetParam();
  const Tally t = sweep(f.seed, std::max(1, f.graphs / REMATCH_TEST_SCALE), f.branches, f.identical, f.max_stages);
  report(f.name, t);
  EXPECT_EQ(t.exact, t.feasible) << "every graph here is small enough to certify";
}

INSTANTIATE_TEST_SUITE_P(Families, OptimalJoinVsExhaustive,
                         ::testing::Values(JoinFamily{"siamese_k2", 11, 1000, 2, true, 4},
                                           JoinFamily{"crossmodal_k2", 12, 1000, 2, false, 4},
                                           JoinFamily{"triplet_k3", 13, 200, 3, true, 3},
                                           JoinFamily{"different_k3", 14, 200, 3, false, 3},
                                           JoinFamily{"triplet_k3_up_to_4", 18, 10, 3, true, 4},
                                           JoinFamily{"different_k3_up_to_4", 19, 8, 3, false, 4}),
                         [](const ::testing::TestParamInfo<JoinFamily>& info) { return std::string(info.param.name); });

TEST(OptimalJoinSymmetry, PermutingBranchesNeverChangesTheMakespan) {
  std::mt19937_64 rng(15);
  const reference::RandomSpec spec{.min_stages = 2, .max_stages = 8, .max_size = 6, .max_time = 9, .max_tmp = 2};
  SolveOptions dp_only;
  dp_only.certify_states = 0;
  for (int k = 0; k < 40 / REMATCH_TEST_SCALE; ++k) {
    const Graph g = from_reference(reference::random_join(rng, 2 + k % 3, false, spec));
    Graph permuted = g;
    std::reverse(permuted.branches.begin(), permuted.branches.end());
    const double least = min_feasible_memory(g, dp_only);
    EXPECT_EQ(least, min_feasible_memory(permuted, dp_only));
    for (double budget = least; budget < least + 12; budget += 3)
      EXPECT_EQ(solve(g, budget, dp_only).makespan, solve(permuted, budget, dp_only).makespan);
  }
}

// The interleaved program on its own (the optimal solver keeps only schedules that replay, so a
// wrong table would otherwise go unnoticed): at unit resolution its value is the makespan of the
// schedule it emits, that schedule is valid in the reference, never beats the true optimum, and its
// least budget is never below the true least budget.
TEST(InterleavedJoinDp, EmittedSchedulesReplayAtTheTablesValueAndNeverBeatTheOptimum) {
  std::mt19937_64 rng(21);
  const reference::RandomSpec spec{.min_stages = 1, .max_stages = 4, .max_size = 6, .max_time = 9, .max_tmp = 2};
  reference::RandomSpec short_spec = spec;  // four branches: the reference's profile stays quick
  short_spec.max_stages = 2;
  int checked = 0;
  for (int k = 0; k < std::max(2, 40 / REMATCH_TEST_SCALE); ++k) {
    const int branches = 2 + k % 3;
    const reference::Graph ref = reference::random_join(rng, branches, k % 2 == 0, branches == 4 ? short_spec : spec);
    const Graph g = from_reference(ref);
    const std::vector<reference::Result> profile = reference::optimal_profile(ref);
    const double store_all = simulate(g, store_all_schedule(g)).peak;
    const InterleavedJoinDp dp(g, 1.0, static_cast<int>(store_all));
    EXPECT_GE(dp.least_memory(), profile.back().peak);
    for (int budget = dp.least_memory(); budget <= store_all; ++budget) {
      const float value = dp.value(budget);
      ASSERT_LT(value, ChainDp::infinity) << "the table is non-increasing in memory";
      const Schedule ops = dp.emit(budget);
      const reference::Result replay = reference::replay(ref, to_reference(ops), budget);
      EXPECT_EQ(replay.makespan, value) << "budget " << budget;
      EXPECT_GE(replay.makespan, reference::makespan_at(profile, budget));
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

// Its table is filled by all threads, one digit sum at a time: nothing may depend on the count.
TEST(InterleavedJoinDp, TablesDoNotDependOnTheThreadCount) {
  std::mt19937_64 rng(22);
  const reference::RandomSpec spec{.min_stages = 10, .max_stages = 14, .max_size = 40, .max_time = 20, .max_tmp = 8};
  const int threads = omp_get_max_threads();
  for (int k = 0; k < 2; ++k) {
    const Graph g = from_reference(reference::random_join(rng, 2, k == 0, spec));
    const int slots = 1500;
    const double slot = simulate(g, store_all_schedule(g)).peak / slots;
    omp_set_num_threads(1);
    const InterleavedJoinDp one(g, slot, slots);
    omp_set_num_threads(std::max(2, threads));
    const InterleavedJoinDp many(g, slot, slots);
    omp_set_num_threads(threads);
    ASSERT_EQ(one.least_memory(), many.least_memory());
    for (int budget = one.least_memory(); budget <= slots; budget += 37) {
      EXPECT_EQ(one.value(budget), many.value(budget));
      EXPECT_EQ(one.emit(budget), many.emit(budget));
    }
  }
}

// Identical branches are folded (only states with their checkpoints in ascending order are
// computed): every value must equal the unfolded table's, and the schedules, unfolded back to the
// real branches, must replay at that value, also when the identical branches are not adjacent.
TEST(InterleavedJoinDp, FoldingIdenticalBranchesChangesNoValue) {
  std::mt19937_64 rng(23);
  const reference::RandomSpec spec{.min_stages = 1, .max_stages = 5, .max_size = 8, .max_time = 9, .max_tmp = 3};
  int checked = 0;
  for (int k = 0; k < std::max(3, 24 / REMATCH_TEST_SCALE); ++k) {
    Graph g = from_reference(reference::random_join(rng, 2 + k % 2, true, spec));
    if (k % 3 == 2) {  // A, B, A: a group of two with another branch between them
      const Graph other = from_reference(reference::random_chain(rng, spec));
      g.branches = {g.branches[0], other.branches[0], g.branches[0]};
    }
    const int top = static_cast<int>(simulate(g, store_all_schedule(g)).peak);
    const InterleavedJoinDp folded(g, 1.0, top), unfolded(g, 1.0, top, false);
    ASSERT_EQ(folded.least_memory(), unfolded.least_memory());
    for (int budget = folded.least_memory(); budget <= top; ++budget) {
      ASSERT_EQ(folded.value(budget), unfolded.value(budget)) << "budget " << budget;
      const SimulationResult sim = simulate(g, folded.emit(budget), budget);
      ASSERT_TRUE(sim.valid) << "budget " << budget << ": op " << sim.bad_op << ": " << sim.reason;
      EXPECT_EQ(sim.makespan, folded.value(budget));
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(JoinBaselines, EvenSplitAndBranchSequentialAreValidAndNeverFasterThanOptimal) {
  std::mt19937_64 rng(17);
  const reference::RandomSpec spec{.min_stages = 1, .max_stages = 3, .max_size = 6, .max_time = 9, .max_tmp = 2};
  for (int k = 0; k < 20 / REMATCH_TEST_SCALE; ++k) {
    const Graph g = from_reference(reference::random_join(rng, 2 + k % 2, k % 3 == 0, spec));
    const double store_all = simulate(g, store_all_schedule(g)).peak;
    for (double budget = min_feasible_memory(g); budget <= store_all; budget += 2) {
      const Solution best = solve(g, budget);
      for (const char* name : {"even-split", "branch-sequential"}) {
        try {
          const Solution s = solve(g, budget, {.solver = name});
          EXPECT_TRUE(simulate(g, s.ops, budget).valid) << name;
          EXPECT_GE(s.makespan, best.makespan) << name << " at budget " << budget;
        } catch (const InfeasibleBudget& e) {
          EXPECT_GT(e.min_memory, budget) << name;
        }
      }
    }
  }
}

TEST(OptimalJoinLeastBudget, TheReportedLeastBudgetIsSolvableWithFractionalSizes) {
  std::mt19937_64 rng(18);
  std::uniform_real_distribution<double> size(0.5, 6.0), time(0.5, 9.0), tmp(0.0, 2.0);
  for (int k = 0; k < 12 / REMATCH_TEST_SCALE; ++k) {
    Graph g;
    for (int j = 0; j < 2 + k % 2; ++j) {
      Branch b;
      const int n = 4 + k % 5;
      for (int i = 0; i < n; ++i) {
        b.fw.push_back(time(rng));
        b.bw.push_back(time(rng));
        b.ftmp.push_back(tmp(rng));
        b.btmp.push_back(tmp(rng));
      }
      for (int i = 0; i <= n; ++i) {
        b.cw.push_back(size(rng));
        b.cbw.push_back(b.cw.back() + (i ? size(rng) : 0.0));
      }
      g.branches.push_back(b);
    }
    g.loss = {time(rng), tmp(rng)};
    SolveOptions options;
    options.table_budget_bytes = std::size_t{64} << 20;  // coarse slots: rounding bites hardest
    options.certify_states = 0;                            // the dynamic programs' own least budget
    const double least = min_feasible_memory(g, options);
    const Solution s = solve(g, least, options);
    EXPECT_TRUE(simulate(g, s.ops, least).valid);
    EXPECT_THROW(solve(g, least * (1 - 1e-6), options), InfeasibleBudget);
  }
}

TEST(OptimalJoinOneBranch, AgreesWithTheChainFormulation) {
  std::mt19937_64 rng(16);
  const reference::RandomSpec spec{.min_stages = 2, .max_stages = 9, .max_size = 6, .max_time = 9, .max_tmp = 2};
  for (int k = 0; k < 30; ++k) {
    const Graph chain = from_reference(reference::random_chain(rng, spec));
    Graph as_join = chain;  // the same graph written through the join layout
    const double least = min_feasible_memory(chain);
    for (double budget = least; budget < least + 10; budget += 2)
      EXPECT_EQ(solve(chain, budget).makespan, solve(as_join, budget).makespan);
  }
}

}  // namespace
}  // namespace rematch
