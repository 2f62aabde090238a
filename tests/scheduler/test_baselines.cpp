// The classic fixed schedules (store-all, recompute-all, segments:N, sqrt) on random chains and
// joins: valid, measured alike by the simulator and the independent reference, ordered by peak as
// their definitions imply, refused below their peak with that peak as the least budget, and never
// faster than `optimal` at a budget they fit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "scheduler/baselines.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#include "tests/reference_bridge.hpp"
#include "tests/test_scale.hpp"

namespace rematch {
namespace {

using testing::from_reference;
using testing::to_reference;

struct Named {
  std::string solver;  // the name solve() knows it by
  Schedule ops;
  SimulationResult sim;
};

int max_stages(const Graph& g) {
  int n = 0;
  for (const Branch& b : g.branches) n = std::max(n, b.stages());
  return n;
}

// Every baseline of `g`, each replayed by the simulator (and required valid).
std::vector<Named> baselines(const Graph& g) {
  std::vector<Named> out;
  out.push_back({"store-all", store_all_schedule(g), {}});
  out.push_back({"recompute-all", recompute_all_schedule(g), {}});
  out.push_back({"sqrt", sqrt_schedule(g), {}});
  for (int n = 1; n <= max_stages(g) + 1; ++n)
    out.push_back({"segments:" + std::to_string(n), segments_schedule(g, n), {}});
  for (Named& b : out) b.sim = simulate(g, b.ops);
  return out;
}

// Random graphs: the reference's small integer instances, plus larger ones with fractional values.
struct Instance {
  std::string name;
  Graph graph;
  reference::Graph ref;
  bool has_ref = false;
};

Graph random_large(std::mt19937_64& rng, int branches, int max_n) {
  std::uniform_real_distribution<double> u(0, 1);
  Graph g;
  for (int j = 0; j < branches; ++j) {
    const int n = 1 + static_cast<int>(rng() % max_n);
    Branch b;
    for (int i = 0; i < n; ++i) {
      b.fw.push_back(0.1 + 5 * u(rng));
      b.bw.push_back(0.1 + 10 * u(rng));
      b.ftmp.push_back(u(rng) < 0.5 ? 0.0 : u(rng));
      b.btmp.push_back(u(rng) < 0.5 ? 0.0 : 2 * u(rng));
    }
    for (int i = 0; i <= n; ++i) {
      b.cw.push_back(0.5 + 4 * u(rng));
      b.cbw.push_back(i == 0 ? b.cw.back() : b.cw.back() + 4 * u(rng));
    }
    g.branches.push_back(b);
  }
  g.loss = {u(rng) * 3, u(rng)};
  return g;
}

std::vector<Instance> instances() {
  std::vector<Instance> out;
  std::mt19937_64 rng(2024);
  reference::RandomSpec spec;
  spec.max_stages = 7;
  const int count = 120 / REMATCH_TEST_SCALE + 5;
  for (int k = 0; k < count; ++k) {
    reference::Graph r = reference::random_chain(rng, spec);
    out.push_back({"chain " + std::to_string(k), from_reference(r), r, true});
  }
  reference::RandomSpec join_spec;
  join_spec.max_stages = 4;
  for (int k = 0; k < count; ++k) {
    reference::Graph r = reference::random_join(rng, 2 + k % 3, k % 2 == 0, join_spec);
    out.push_back({"join " + std::to_string(k), from_reference(r), r, true});
  }
  for (int k = 0; k < count / 2; ++k) {
    out.push_back({"large chain " + std::to_string(k), random_large(rng, 1, 40), {}, false});
    out.push_back({"large join " + std::to_string(k), random_large(rng, 2 + k % 3, 15), {}, false});
  }
  return out;
}

const std::vector<Instance>& all_instances() {
  static const std::vector<Instance> cached = instances();
  return cached;
}

TEST(BaselinesValid, EveryBaselineIsACompleteValidScheduleAndTheReferenceAgrees) {
  for (const Instance& in : all_instances()) {
    SCOPED_TRACE(in.name);
    for (const Named& b : baselines(in.graph)) {
      ASSERT_TRUE(b.sim.valid) << b.solver << ": op " << b.sim.bad_op << ": " << b.sim.reason;
      EXPECT_EQ(simulate(in.graph, b.ops, b.sim.peak).valid, true) << b.solver << " fits its own peak";
      if (!in.has_ref) continue;
      const reference::Result r = reference::replay(in.ref, to_reference(b.ops), std::numeric_limits<double>::infinity());
      EXPECT_EQ(r.makespan, b.sim.makespan) << b.solver;
      EXPECT_EQ(r.peak, b.sim.peak) << b.solver;
    }
  }
}

TEST(BaselinesStoreAll, MakespanIsStoreAllTimeAndItsPeakIsTheLargest) {
  for (const Instance& in : all_instances()) {
    SCOPED_TRACE(in.name);
    const std::vector<Named> all = baselines(in.graph);
    const Named& store_all = all[0];
    ASSERT_TRUE(store_all.sim.valid);
    // Same sum in another order: equal up to rounding (exactly equal with integer times).
    EXPECT_NEAR(store_all.sim.makespan, in.graph.store_all_time(), 1e-12 * in.graph.store_all_time());
    if (in.has_ref) {
      EXPECT_EQ(store_all.sim.makespan, in.graph.store_all_time());
      EXPECT_EQ(store_all.sim.makespan, reference::store_all_makespan(in.ref));
    }
    for (const Named& b : all) {
      EXPECT_FALSE(exceeds(b.sim.peak, store_all.sim.peak)) << b.solver << ": " << b.sim.peak << " > " << store_all.sim.peak;
      EXPECT_GE(b.sim.makespan, store_all.sim.makespan - 1e-9 * store_all.sim.makespan)
          << b.solver << " recomputes, so it cannot be faster";
    }
  }
}

TEST(BaselinesRecomputeAll, HasTheLeastPeakOfTheBaselines) {
  for (const Instance& in : all_instances()) {
    SCOPED_TRACE(in.name);
    const std::vector<Named> all = baselines(in.graph);
    const Named& recompute_all = all[1];
    ASSERT_TRUE(recompute_all.sim.valid);
    for (const Named& b : all) {
      EXPECT_FALSE(exceeds(recompute_all.sim.peak, b.sim.peak)) << b.solver << ": " << b.sim.peak << " < " << recompute_all.sim.peak;
    }
  }
}

TEST(BaselinesSegments, OneSegmentIsStoreAllAndCountsBeyondTheStagesAreClamped) {
  for (const Instance& in : all_instances()) {
    SCOPED_TRACE(in.name);
    const Graph& g = in.graph;
    EXPECT_EQ(segments_schedule(g, 1), store_all_schedule(g));
    const int n = max_stages(g);
    EXPECT_EQ(segments_schedule(g, n + 1), segments_schedule(g, n));
    EXPECT_EQ(segments_schedule(g, n + 1000), segments_schedule(g, n));
    if (g.is_chain()) {
      const int root = static_cast<int>(std::ceil(std::sqrt(double(n))));
      EXPECT_EQ(sqrt_schedule(g), segments_schedule(g, root)) << "sqrt = ceil(sqrt(n)) segments";
    }
    // Each forward and each backward of store-all appears; only forwards are repeated.
    for (int s = 1; s <= n; ++s) {
      const Schedule ops = segments_schedule(g, s);
      std::size_t backwards = 0, losses = 0;
      for (const Op& op : ops) {
        backwards += op.kind == OpKind::B;
        losses += op.kind == OpKind::loss;
        EXPECT_NE(op.kind, OpKind::drop);
      }
      std::size_t stages = 0;
      for (const Branch& b : g.branches) stages += static_cast<std::size_t>(b.stages());
      EXPECT_EQ(backwards, stages);
      EXPECT_EQ(losses, 1u);
    }
  }
}

TEST(BaselinesSolve, BelowItsPeakABaselineIsInfeasibleWithThatPeakAsTheLeastBudget) {
  for (const Instance& in : all_instances()) {
    SCOPED_TRACE(in.name);
    for (const Named& b : baselines(in.graph)) {
      const double peak = b.sim.peak;
      SolveOptions options;
      options.solver = b.solver;
      const Solution at_peak = solve(in.graph, peak, options);
      EXPECT_EQ(at_peak.ops, b.ops) << b.solver;
      EXPECT_EQ(at_peak.peak, peak);
      EXPECT_EQ(at_peak.makespan, b.sim.makespan);
      EXPECT_EQ(at_peak.solver, b.solver);
      EXPECT_FALSE(at_peak.exact) << b.solver << " is a fixed schedule";
      for (double below : {peak - 0.25, peak * 0.5, 0.0}) {
        try {
          solve(in.graph, below, options);
          ADD_FAILURE() << b.solver << " accepted budget " << below << " below its peak " << peak;
        } catch (const InfeasibleBudget& e) {
          EXPECT_EQ(e.min_memory, peak) << b.solver;
          EXPECT_NE(std::string(e.what()).find(b.solver), std::string::npos) << e.what();
        }
      }
    }
  }
}

TEST(BaselinesSolve, NegativeOrNonFiniteBudgetsAreInputErrorsNotInfeasible) {
  const Graph g = all_instances().front().graph;
  for (const char* solver : {"store-all", "recompute-all", "sqrt", "segments:2", "optimal"}) {
    SolveOptions options;
    options.solver = solver;
    for (double bad : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
      try {
        solve(g, bad, options);
        ADD_FAILURE() << solver << " accepted budget " << bad;
      } catch (const InfeasibleBudget& e) {
        ADD_FAILURE() << solver << ": budget " << bad << " reported as infeasible: " << e.what();
      } catch (const InputError&) {
      }
    }
  }
}

// For chains: `optimal` at every budget from its least one to store-all's peak is within the budget,
// and never slower than a baseline (or revolve) that fits the same budget, even where the dynamic
// program rounds fractional sizes up to slots.
TEST(BaselinesVersusOptimal, OptimalIsNeverSlowerThanAFittingBaselineNorAboveBudget) {
  int compared = 0, fractional = 0;
  for (const Instance& in : all_instances()) {
    if (!in.graph.is_chain()) continue;
    const Graph& g = in.graph;
    const bool integral = in.has_ref;  // integer sizes: unit resolution, no rounding
    const int n = g.branches[0].stages();
    if (!integral && (n > 12 || ++fractional > 8)) continue;  // the 4096-slot DP is slow on long chains
    SCOPED_TRACE(in.name);
    const std::vector<Named> all = baselines(g);
    SolveOptions options;
    options.table_budget_bytes = std::size_t{64} << 20;
    if (!integral) options.certify_states = 0;  // the dynamic program alone
    const double least = min_feasible_memory(g, options);
    EXPECT_FALSE(exceeds(least, all[1].sim.peak)) << "recompute-all fits, so the least budget is at most its peak";
    const double lowest = least;
    std::vector<double> budgets = {lowest};
    for (const Named& b : all) budgets.push_back(b.sim.peak);
    const double top = all[0].sim.peak;
    for (int k = 1; k < 5; ++k) budgets.push_back(lowest + (top - lowest) * k / 5.0);
    std::sort(budgets.begin(), budgets.end());
    budgets.erase(std::unique(budgets.begin(), budgets.end()), budgets.end());
    for (double m : budgets) {
      if (m < lowest) continue;
      Solution opt;
      try {
        opt = solve(g, m, options);
      } catch (const InfeasibleBudget& e) {
        ADD_FAILURE() << "optimal refused budget " << m << " (least budget " << least << "): " << e.what();
        continue;
      }
      const SimulationResult replay = simulate(g, opt.ops, m);
      ASSERT_TRUE(replay.valid) << "M = " << m << ": op " << replay.bad_op << ": " << replay.reason;
      EXPECT_FALSE(exceeds(opt.peak, m)) << "M = " << m;
      EXPECT_EQ(replay.makespan, opt.makespan);
      const double slack = 1e-9 * std::max(1.0, opt.makespan);
      for (const Named& b : all) {
        if (b.sim.peak > m) continue;
        EXPECT_LE(opt.makespan, b.sim.makespan + slack) << "M = " << m << ", " << b.solver;
        ++compared;
      }
      try {
        SolveOptions rev;
        rev.solver = "revolve";
        const Solution r = solve(g, m, rev);
        EXPECT_FALSE(exceeds(r.peak, m));
        if (r.peak <= m) {
          EXPECT_LE(opt.makespan, r.makespan + slack) << "M = " << m << ", revolve";
        }
        ++compared;
      } catch (const InfeasibleBudget&) {
      }
    }
  }
  EXPECT_GT(compared, 0);
}

// Fractional sizes, budget exactly the peak of sqrt / segments:2 (a 3-stage chain): the dynamic
// program (certification off) rounds sizes up, no longer sees that schedule, and returns makespan
// 36.29 where sqrt fits with 35.17. Allowed by the model (exact: false, sizes rounded), but `optimal`
// could keep the best fitting baseline. See the report.
TEST(BaselinesVersusOptimal, OptimalMatchesABaselineThatFitsExactly) {
  Branch b;
  b.fw = {1.114065490680053, 4.653630279348917, 3.048014310787903};
  b.bw = {7.080288993302538, 2.807978903256146, 9.244862543226036};
  b.cw = {3.245345592775472, 1.2896350249113326, 2.215097239737996, 2.716053469821184};
  b.cbw = {3.245345592775472, 5.2889246296096095, 5.529606244267379, 4.752396983051435};
  b.ftmp = {0.0, 0.5884277069149484, 0.9426757621083626};
  b.btmp = {1.5057160499740656, 0.0, 1.8340021561230928};
  const Graph g{{b}, {1.4580581916570692, 0.1410741065516188}};
  const SimulationResult sqrt = simulate(g, sqrt_schedule(g));
  SolveOptions options;
  options.certify_states = 0;
  const Solution opt = solve(g, sqrt.peak, options);
  EXPECT_LE(opt.makespan, sqrt.makespan) << opt.method;
}

// BUG (see report): on chains with fractional sizes, min_feasible_memory (and the min_memory of
// InfeasibleBudget) is the dynamic program's least budget in exact arithmetic, but solve() at that
// budget rounds sizes up to slots, refines the slots up to the table budget (minutes and GBs with
// the default 3 GiB), then refuses it with min_memory equal to the budget it was given ("budget
// 16.55 is below the least feasible budget 16.55 of at this memory resolution").
TEST(BaselinesVersusOptimal, AtTheReportedLeastBudgetOptimalSucceeds) {
  std::mt19937_64 rng(5);
  const Graph g = random_large(rng, 1, 12);
  SolveOptions options;
  options.certify_states = 0;
  options.table_budget_bytes = std::size_t{256} << 20;
  const double least = min_feasible_memory(g, options);
  try {
    const Solution s = solve(g, least, options);
    EXPECT_FALSE(exceeds(s.peak, least));
  } catch (const InfeasibleBudget& e) {
    ADD_FAILURE() << e.what() << " (min_memory " << e.min_memory << ")";
    EXPECT_GT(e.min_memory, least) << "the least budget named must be one that works";
  }
}

}  // namespace
}  // namespace rematch
