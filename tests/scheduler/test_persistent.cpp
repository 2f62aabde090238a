// The `persistent` solver: rotor's persistent program (chain_dp.hpp, DpClass::persistent), the
// class the optimal program extends. Checked against the rotor makespans of docs/model.md, the
// independent exhaustive reference, the optimal program (a superset of its options) and the fixed
// strategies that keep every stored item until its backward (segments, recompute-all).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "scheduler/baselines.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#include "tests/reference_bridge.hpp"
#include "tests/spec_examples.hpp"
#include "tests/test_scale.hpp"

namespace rematch {
namespace {

using testing::from_reference;
using testing::to_reference;

SolveOptions persistent() {
  SolveOptions options;
  options.solver = "persistent";
  return options;
}

TEST(PersistentSolver, ReproducesRotorsMakespansOnSpecChainA) {
  // docs/model.md#a-worked-example, row "persistent", M = 6..15.
  const Graph chain_a = testing::spec_chain_a();
  const double rotor[] = {27, 20, 17, 16, 15, 15, 14, 14, 13, 12};
  for (int m = 6; m <= 15; ++m) EXPECT_EQ(solve(chain_a, m, persistent()).makespan, rotor[m - 6]) << "M = " << m;
  try {
    solve(chain_a, 5, persistent());
    ADD_FAILURE() << "solved below the least budget";
  } catch (const InfeasibleBudget& e) {
    EXPECT_EQ(e.min_memory, 6);
  }
}

// The fastest fixed strategy of the persistent class within the budget (infinity if none fits).
double best_persistent_baseline(const Graph& g, double budget) {
  double best = std::numeric_limits<double>::infinity();
  auto offer = [&](const Schedule& ops) {
    const SimulationResult sim = simulate(g, ops, budget);
    if (sim.valid) best = std::min(best, sim.makespan);
  };
  for (int segments = 1; segments <= g.branches[0].stages(); ++segments) offer(segments_schedule(g, segments));
  offer(recompute_all_schedule(g));
  return best;
}

TEST(PersistentSolver, BetweenTheOptimumAndThePersistentFixedStrategiesOnRandomChains) {
  std::mt19937_64 rng(404);
  const reference::RandomSpec spec{.min_stages = 1, .max_stages = 7, .max_size = 12, .max_time = 20, .max_tmp = 4};
  SolveOptions dp_only;
  dp_only.certify_states = 0;
  int pairs = 0, hits = 0;
  for (int c = 0; c < 300 / REMATCH_TEST_SCALE; ++c) {
    const reference::Graph ref = reference::random_chain(rng, spec);
    const Graph g = from_reference(ref);
    const std::vector<reference::Result> profile = reference::optimal_profile(ref);
    const double least = profile.back().peak;
    const double store_all = simulate(g, store_all_schedule(g)).peak;
    for (double budget = least - 1; budget <= store_all; budget += 1) {
      const double optimum = reference::makespan_at(profile, budget);
      const double baseline = best_persistent_baseline(g, budget);
      try {
        const Solution s = solve(g, budget, persistent());
        if (s.exact) {  // store-all fits
          EXPECT_EQ(s.makespan, optimum) << "claimed exact at budget " << budget;
        }
        const reference::Result replay = reference::replay(ref, to_reference(s.ops), budget);  // throws if invalid
        EXPECT_EQ(replay.makespan, s.makespan);
        EXPECT_LE(s.peak, budget);
        EXPECT_GE(s.makespan, optimum);
        // Integer sizes: unit resolution, so the class's optimum is exact in it.
        EXPECT_LE(s.makespan, baseline) << "a fixed persistent strategy beat the persistent program, budget " << budget;
        EXPECT_LE(solve(g, budget, dp_only).makespan, s.makespan) << "the optimal program contains this class";
        ++pairs;
        if (s.makespan == optimum) ++hits;
      } catch (const InfeasibleBudget& e) {
        EXPECT_GE(e.min_memory, least);
        EXPECT_GT(e.min_memory, budget);
        EXPECT_TRUE(std::isinf(baseline)) << "a fixed persistent strategy fits budget " << budget;
      }
    }
  }
  std::printf("[persistent] optimal on %d of %d feasible (chain, budget) pairs (%.1f%%)\n", hits, pairs,
              100.0 * hits / pairs);
  EXPECT_GT(pairs, 0);
}

TEST(PersistentSolver, JoinsAreNeverFasterThanTheBranchSequentialProgram) {
  std::mt19937_64 rng(405);
  const reference::RandomSpec spec{.min_stages = 1, .max_stages = 4, .max_size = 8, .max_time = 9, .max_tmp = 2};
  for (int c = 0; c < 20 / REMATCH_TEST_SCALE; ++c) {
    const reference::Graph ref = reference::random_join(rng, 2 + c % 2, c % 4 < 2, spec);
    const Graph g = from_reference(ref);
    const double store_all = simulate(g, store_all_schedule(g)).peak;
    for (double budget = g.initial_memory(); budget <= store_all; budget += 1) {
      try {
        const Solution s = solve(g, budget, persistent());
        EXPECT_NO_THROW(reference::replay(ref, to_reference(s.ops), budget));
        EXPECT_LE(solve(g, budget, {.solver = "branch-sequential"}).makespan, s.makespan);
      } catch (const InfeasibleBudget& e) {
        EXPECT_GT(e.min_memory, budget);
      }
    }
  }
}

TEST(PersistentSolver, SchedulesDoNotDependOnTheThreadCount) {
  std::mt19937_64 rng(406);
  const reference::RandomSpec spec{.min_stages = 64, .max_stages = 72, .max_size = 50, .max_time = 20, .max_tmp = 10};
  const int threads = omp_get_max_threads();
  for (int k = 0; k < 3; ++k) {
    const Graph g = from_reference(reference::random_chain(rng, spec));
    const double store_all = simulate(g, store_all_schedule(g)).peak;
    SolveOptions options = persistent();
    options.slots = 2000;
    omp_set_num_threads(1);
    const Solution one = solve(g, store_all / 3, options);
    omp_set_num_threads(std::max(2, threads));
    const Solution many = solve(g, store_all / 3, options);
    omp_set_num_threads(threads);
    EXPECT_EQ(one.ops, many.ops);
    EXPECT_EQ(one.makespan, many.makespan);
  }
}

}  // namespace
}  // namespace rematch
