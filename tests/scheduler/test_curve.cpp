// The time-memory curve (curve.hpp) against separate solves: every budget step of a complete
// curve, every sample of a sampled one, on random chains and joins with integer and real sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "scheduler/curve.hpp"
#include "scheduler/join_dp.hpp"
#include "tests/reference_bridge.hpp"
#include "tests/test_scale.hpp"

namespace rematch {
namespace {

using testing::from_reference;

CurveOptions with_solver(const std::string& solver, bool certify = true) {
  CurveOptions options;
  options.solve.solver = solver;
  if (!certify) options.solve.certify_states = 0;
  options.samples = 9;
  return options;
}

// Sizes times a non-integer factor: the solver's resolution becomes a fraction of each budget.
Graph with_real_sizes(Graph g, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> factor(1.01, 1.99);
  for (Branch& b : g.branches)
    for (auto* values : {&b.cw, &b.cbw, &b.ftmp, &b.btmp})
      for (double& v : *values) v *= factor(rng);
  g.loss.tmp *= factor(rng);
  for (Branch& b : g.branches)
    for (std::size_t i = 0; i < b.cw.size(); ++i) b.cbw[i] = std::max(b.cbw[i], b.cw[i]);
  return g;
}

// A complete curve gives solve's makespan at every unit budget from the least to the peak (the
// last point at or below it), and solve refuses the unit below the least.
void expect_complete_curve_matches(const Graph& graph, const CurveOptions& options, const std::string& what) {
  const Curve curve = time_memory_curve(graph, options);
  ASSERT_TRUE(curve.complete) << what;
  ASSERT_FALSE(curve.points.empty()) << what;
  if (curve.solves == 0) {
    EXPECT_EQ(curve.table_fills, int(distinct_branch_orders(graph).size())) << what;
  }
  EXPECT_EQ(curve.points.front().budget, curve.least) << what;
  EXPECT_EQ(curve.points.back().budget, curve.store_all_peak) << what;
  EXPECT_EQ(curve.points.back().makespan, curve.store_all_makespan) << what;
  if (curve.least >= 1) {
    EXPECT_THROW(solve(graph, curve.least - 1, options.solve), InfeasibleBudget) << what;
  }
  std::size_t p = 0;
  for (double b = curve.least; b <= curve.store_all_peak; b += 1) {
    while (p + 1 < curve.points.size() && curve.points[p + 1].budget <= b) ++p;
    const Solution s = solve(graph, b, options.solve);
    EXPECT_EQ(curve.points[p].makespan, s.makespan) << what << " at budget " << b;
    EXPECT_EQ(curve.points[p].certified, s.exact) << what << " at budget " << b;
    if (p > 0) {  // a point is a drop, or where solve's certification changes
      EXPECT_TRUE(curve.points[p].makespan < curve.points[p - 1].makespan ||
                  curve.points[p].certified != curve.points[p - 1].certified)
          << what;
    }
  }
}

void expect_samples_match(const Graph& graph, const CurveOptions& options, const std::string& what) {
  const Curve curve = time_memory_curve(graph, options);
  ASSERT_FALSE(curve.complete) << what;
  ASSERT_LE(curve.points.size(), std::size_t(options.samples)) << what;
  EXPECT_EQ(curve.solves, int(curve.points.size())) << what;
  EXPECT_EQ(curve.points.front().budget, curve.least) << what;
  EXPECT_EQ(curve.points.back().budget, curve.store_all_peak) << what;
  for (const CurvePoint& point : curve.points) {
    const Solution s = solve(graph, point.budget, options.solve);
    EXPECT_EQ(point.makespan, s.makespan) << what << " at budget " << point.budget;
    EXPECT_EQ(point.certified, s.exact) << what << " at budget " << point.budget;
    EXPECT_NEAR(point.overhead_pct, 100 * (s.makespan / graph.store_all_time() - 1), 1e-9) << what;
  }
}

TEST(TimeMemoryCurve, OneFillEqualsSeparateSolvesAtEveryBudgetOnRandomChains) {
  std::mt19937_64 rng(2001);
  reference::RandomSpec spec;
  spec.max_stages = 12;
  for (int trial = 0; trial < 40 / REMATCH_TEST_SCALE; ++trial) {
    const Graph chain = from_reference(reference::random_chain(rng, spec));
    for (const char* solver : {"optimal", "persistent"})
      expect_complete_curve_matches(chain, with_solver(solver, false),
                                    std::string(solver) + " chain trial " + std::to_string(trial));
  }
}

TEST(TimeMemoryCurve, OneFillPerOrderEqualsSeparateSolvesAtEveryBudgetOnRandomJoins) {
  std::mt19937_64 rng(2002);
  reference::RandomSpec spec;
  spec.max_stages = 5;
  for (int trial = 0; trial < 24 / REMATCH_TEST_SCALE; ++trial) {
    const Graph join = from_reference(reference::random_join(rng, 2 + trial % 2, trial % 3 == 0, spec));
    for (const char* solver : {"branch-sequential", "persistent"})
      expect_complete_curve_matches(join, with_solver(solver),
                                    std::string(solver) + " join trial " + std::to_string(trial));
  }
}

TEST(TimeMemoryCurve, SamplesEqualSeparateSolvesWhereThePortfolioDependsOnTheBudget) {
  std::mt19937_64 rng(2003);
  reference::RandomSpec spec;
  spec.max_stages = 4;
  for (int trial = 0; trial < 12 / REMATCH_TEST_SCALE; ++trial) {
    const std::string id = " trial " + std::to_string(trial);
    // Certified chains and optimal joins (interleaved program, even split, certification).
    CurveOptions many = with_solver("optimal");
    many.samples = 1000;
    expect_complete_curve_matches(from_reference(reference::random_chain(rng, spec)), many, "certified chain" + id);
    expect_samples_match(from_reference(reference::random_join(rng, 2, trial % 2 == 0, spec)), with_solver("optimal"),
                         "optimal join" + id);
  }
}

TEST(TimeMemoryCurve, SamplesEqualSeparateSolvesWithRealSizes) {
  std::mt19937_64 rng(2004);
  reference::RandomSpec spec;
  spec.max_stages = 8;
  for (int trial = 0; trial < 12 / REMATCH_TEST_SCALE; ++trial) {
    const std::string id = " trial " + std::to_string(trial);
    const Graph chain = with_real_sizes(from_reference(reference::random_chain(rng, spec)), rng);
    expect_samples_match(chain, with_solver("optimal", false), "real chain" + id);
    expect_samples_match(chain, with_solver("revolve"), "revolve real chain" + id);
    expect_samples_match(chain, with_solver("persistent"), "persistent real chain" + id);
    const Graph join = with_real_sizes(from_reference(reference::random_join(rng, 2, false, spec)), rng);
    expect_samples_match(join, with_solver("branch-sequential"), "real join" + id);
  }
}

TEST(TimeMemoryCurve, LeastBudgetWithinAnOverheadIsTheFirstPointThatFits) {
  std::mt19937_64 rng(2005);
  reference::RandomSpec spec;
  spec.min_stages = 6;
  spec.max_stages = 10;
  const Graph chain = from_reference(reference::random_chain(rng, spec));
  const Curve curve = time_memory_curve(chain, with_solver("optimal", false));
  for (double bound : {0.0, 5.0, 10.0, 50.0, 1e9}) {
    const CurvePoint* p = least_budget_within(curve, bound);
    ASSERT_NE(p, nullptr) << bound;  // store-all has overhead 0
    EXPECT_LE(p->overhead_pct, bound);
    for (const CurvePoint& q : curve.points)
      if (q.budget < p->budget) {
        EXPECT_GT(q.overhead_pct, bound);
      }
  }
  EXPECT_EQ(least_budget_within(curve, -1), nullptr);
}

TEST(TimeMemoryCurve, RejectsFixedStrategiesAndTooFewSamples) {
  std::mt19937_64 rng(2006);
  const Graph chain = from_reference(reference::random_chain(rng, {}));
  EXPECT_THROW(time_memory_curve(chain, with_solver("store-all")), InputError);
  EXPECT_THROW(time_memory_curve(chain, with_solver("segments:2")), InputError);
  CurveOptions one = with_solver("optimal");
  one.samples = 1;
  EXPECT_THROW(time_memory_curve(chain, one), InputError);
}

}  // namespace
}  // namespace rematch
