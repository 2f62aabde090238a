// The `optimal` chain solver against the independent exhaustive reference (tests/reference), on
// thousands of random small chains at every budget from infeasible to store-all.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>

#include "scheduler/baselines.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#include "tests/reference_bridge.hpp"
#include "tests/test_scale.hpp"

namespace rematch {
namespace {

using testing::from_reference;
using testing::to_reference;

struct Tally {
  int pairs = 0, feasible = 0, dp_hits = 0, dp_infeasible_misses = 0, exact_claims = 0;
  double worst_gap = 0;
};

// Checks one (chain, budget) pair: validity everywhere, exactness where claimed, DP hits tallied.
void check_pair(const reference::Graph& ref, const Graph& g, double budget, const std::vector<reference::Result>& profile,
                double least, Tally& tally) {
  const double optimum = reference::makespan_at(profile, budget);
  ++tally.pairs;
  SolveOptions dp_only;
  dp_only.certify_states = 0;
  if (std::isinf(optimum)) {
    try {
      solve(g, budget, dp_only);
      ADD_FAILURE() << "solved an infeasible budget " << budget;
    } catch (const InfeasibleBudget& e) {
      EXPECT_GE(e.min_memory, least) << "a least budget below the true one";
    }
    try {
      solve(g, budget);
      ADD_FAILURE() << "solved an infeasible budget " << budget;
    } catch (const InfeasibleBudget& e) {
      EXPECT_EQ(e.min_memory, least) << "the certified least budget must be exact";
    }
    ++tally.dp_hits;
    return;
  }
  ++tally.feasible;
  try {
    const Solution dp = solve(g, budget, dp_only);
    const reference::Result replay = reference::replay(ref, to_reference(dp.ops), budget);  // throws if invalid
    EXPECT_EQ(replay.makespan, dp.makespan) << "the library's simulator and the reference disagree";
    EXPECT_LE(dp.peak, budget);
    EXPECT_GE(dp.makespan, optimum);
    if (dp.makespan == optimum) ++tally.dp_hits;
    else tally.worst_gap = std::max(tally.worst_gap, dp.makespan / optimum - 1);
    if (dp.exact) {
      EXPECT_EQ(dp.makespan, optimum) << "claimed exact at budget " << budget;
    }
  } catch (const InfeasibleBudget&) {
    ++tally.dp_infeasible_misses;
  }
  const Solution best = solve(g, budget);
  EXPECT_NO_THROW(reference::replay(ref, to_reference(best.ops), budget));
  if (best.exact) {
    ++tally.exact_claims;
    EXPECT_EQ(best.makespan, optimum) << "claimed exact at budget " << budget;
  }
}

Tally sweep(std::uint64_t seed, int chains, const reference::RandomSpec& spec) {
  std::mt19937_64 rng(seed);
  Tally tally;
  for (int c = 0; c < chains; ++c) {
    const reference::Graph ref = reference::random_chain(rng, spec);
    const Graph g = from_reference(ref);
    const std::vector<reference::Result> profile = reference::optimal_profile(ref);
    const double least = profile.back().peak;
    const double store_all = simulate(g, store_all_schedule(g)).peak;
    for (double budget = least - 2; budget <= store_all; budget += 1) check_pair(ref, g, budget, profile, least, tally);
  }
  return tally;
}

void report(const char* name, const Tally& t) {
  std::printf("[%s] %d (chain, budget) pairs: DP alone optimal on %d (%.2f%%), %d DP-infeasible but feasible, "
              "worst DP gap %.2f%%; certified exact %d\n",
              name, t.pairs, t.dp_hits, 100.0 * t.dp_hits / t.pairs, t.dp_infeasible_misses, 100 * t.worst_gap,
              t.exact_claims);
  ::testing::Test::RecordProperty(std::string(name) + "_pairs", t.pairs);
  ::testing::Test::RecordProperty(std::string(name) + "_dp_hits", t.dp_hits);
}

TEST(OptimalChainVsExhaustive, ValidEverywhereAndExactWhereClaimedOnIssueSizes) {
  const reference::RandomSpec spec{.min_stages = 2, .max_stages = 6, .max_size = 6, .max_time = 9, .max_tmp = 2};
  const Tally t = sweep(2026, 2000 / REMATCH_TEST_SCALE, spec);
  report("issue_sizes", t);
  // Every chain here is small enough to certify: the default solver is exact at every feasible budget.
  EXPECT_EQ(t.exact_claims, t.feasible);
  EXPECT_GE(t.dp_hits, 0.99 * t.pairs) << "the DP alone regressed below 99% optimal";
}

TEST(OptimalChainVsExhaustive, ValidEverywhereOnWiderRanges) {
  const reference::RandomSpec spec{.min_stages = 1, .max_stages = 7, .max_size = 12, .max_time = 20, .max_tmp = 4};
  const Tally t = sweep(7, 300 / REMATCH_TEST_SCALE, spec);
  report("wide_ranges", t);
  EXPECT_GE(t.dp_hits, 0.98 * t.pairs);
}

}  // namespace
}  // namespace rematch

namespace rematch {
namespace {

// The chain tables are filled by all threads, one sub-chain length at a time; every entry is
// computed the same way on any thread, so schedules must not depend on the thread count.
TEST(OptimalChainThreads, SchedulesDoNotDependOnTheThreadCount) {
  std::mt19937_64 rng(31);
  // Long enough (>= 64 stages) for the least-memory recursion to share its lengths too.
  const reference::RandomSpec spec{.min_stages = 64, .max_stages = 72, .max_size = 50, .max_time = 20, .max_tmp = 10};
  const int threads = omp_get_max_threads();
  for (int k = 0; k < 3; ++k) {
    const Graph g = from_reference(reference::random_chain(rng, spec));
    omp_set_num_threads(1);
    const double least = min_feasible_memory(g);
    const double budget = least + (simulate(g, store_all_schedule(g)).peak - least) / 4;
    const Solution one = solve(g, budget, {.slots = 2000});
    const Solution one_least = solve(g, least, {.slots = 2000});
    omp_set_num_threads(std::max(2, threads));
    EXPECT_EQ(min_feasible_memory(g), least);
    const Solution many = solve(g, budget, {.slots = 2000});
    const Solution many_least = solve(g, least, {.slots = 2000});
    omp_set_num_threads(threads);
    EXPECT_EQ(one.ops, many.ops);
    EXPECT_EQ(one.makespan, many.makespan);
    EXPECT_EQ(one_least.ops, many_least.ops);
  }
}

}  // namespace
}  // namespace rematch
