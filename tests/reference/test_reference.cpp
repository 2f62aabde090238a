// Tests of the exhaustive reference itself: the worked example of docs/model.md, the replay's rules,
// and self-consistency on random chains and join graphs.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/reference/exhaustive.hpp"

namespace rematch::reference {
namespace {

Graph chain_a() {
  return chain_from_rotor({1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1},
                          {1, 2, 2, 2, 2, 2, 2}, {0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0});
}

// Parses model-notation chain ops ("F_all 0, loss, B 5, drop x 1"): branch 0 implied.
std::vector<Op> parse_chain_ops(const std::string& text) {
  std::vector<Op> ops;
  std::stringstream list(text);
  std::string item;
  while (std::getline(list, item, ',')) {
    std::stringstream words(item);
    std::string name, what;
    words >> name;
    Op op{OpKind::loss};
    if (name == "drop") {
      words >> what >> op.stage;
      op.kind = what == "x" ? OpKind::drop_x : OpKind::drop_xbar;
    } else if (name != "loss") {
      words >> op.stage;
      op.kind = name == "F_all" ? OpKind::F_all
                : name == "F_ck"  ? OpKind::F_ck
                : name == "F_none" ? OpKind::F_none
                                   : OpKind::B;
    }
    ops.push_back(op);
  }
  return ops;
}

// Sum of every item's size plus the largest transient: no op can ever peak above it.
double store_everything_budget(const Graph& g) {
  double total = g.loss_tmp;
  for (const Branch& b : g.branches) {
    for (std::size_t i = 0; i < b.cw.size(); ++i) total += 2 * b.cw[i] + b.cbw[i];
    for (std::size_t i = 0; i < b.fw.size(); ++i) total += b.ftmp[i] + b.btmp[i];
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// docs/model.md#a-worked-example

TEST(ChainA, OptimalMakespanAtEveryBudget) {
  const Graph g = chain_a();
  const double expected[] = {27, 19, 17, 15, 15, 14, 14, 13, 13, 12};
  for (int m = 6; m <= 15; ++m) {
    const Result r = optimal_schedule(g, m);
    ASSERT_TRUE(r.feasible) << "M=" << m;
    EXPECT_EQ(r.makespan, expected[m - 6]) << "M=" << m;
    const Result again = replay(g, r.ops, m);
    EXPECT_EQ(again.makespan, r.makespan) << "M=" << m;
    EXPECT_LE(again.peak, m);
  }
  EXPECT_EQ(optimal_schedule(g, 100).makespan, 12);
  EXPECT_FALSE(optimal_schedule(g, 5).feasible);
}

TEST(ChainA, ProfileMatchesTable) {
  const Graph g = chain_a();
  const std::vector<Result> profile = optimal_profile(g);
  const double expected[] = {27, 19, 17, 15, 15, 14, 14, 13, 13, 12};
  for (int m = 6; m <= 15; ++m) EXPECT_EQ(makespan_at(profile, m), expected[m - 6]) << m;
  EXPECT_TRUE(std::isinf(makespan_at(profile, 5.5)));
}

TEST(ChainA, LeastFeasibleBudgetIsSix) { EXPECT_EQ(min_feasible_memory(chain_a()), 6); }

TEST(ChainA, SpecExampleScheduleForSeven) {
  const std::vector<Op> ops = parse_chain_ops(
      "F_all 0, F_none 1, F_none 2, F_all 3, F_none 4, F_all 5, loss, B 5, F_ck 3, F_all 4, B 4, "
      "F_ck 0, F_all 3, B 3, F_all 1, drop x 1, F_all 2, B 2, F_all 0, B 1, B 0");
  ASSERT_EQ(ops.size(), 21U);
  const Result r = replay(chain_a(), ops, 7);
  EXPECT_EQ(r.makespan, 19);
  EXPECT_EQ(r.peak, 7);
}

// ---------------------------------------------------------------------------------------------
// replay rejects each broken rule at the right index

Graph two_stage_chain() {
  return chain_from_rotor({1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 2, 2}, {0, 0}, {0, 0, 0});
}

void expect_rejected(const Graph& g, const std::string& ops, double budget, std::size_t index,
                     const std::string& rule) {
  try {
    replay(g, parse_chain_ops(ops), budget);
    ADD_FAILURE() << "accepted: " << ops;
  } catch (const ReplayError& e) {
    EXPECT_EQ(e.index, index) << ops << ": " << e.what();
    EXPECT_EQ(e.rule, rule) << ops << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find("op " + std::to_string(index)), std::string::npos);
  }
}

TEST(Replay, AcceptsStoreAll) {
  const Result r =
      replay(two_stage_chain(), parse_chain_ops("F_all 0, F_all 1, loss, B 1, B 0"), 10);
  EXPECT_EQ(r.makespan, 5);
  EXPECT_EQ(r.peak, 7);  // B 1: x0 + xbar1 + xbar2 + y2 held, plus y1 produced
}

TEST(Replay, RejectsMissingInput) {
  expect_rejected(two_stage_chain(), "F_all 1", 10, 0, "missing_input");
  expect_rejected(two_stage_chain(), "F_none 0, F_all 0", 10, 1, "x0_lost");
  expect_rejected(two_stage_chain(), "F_ck 0, loss", 10, 1, "missing_input");
}

TEST(Replay, RejectsBackwardBeforeLoss) {
  expect_rejected(two_stage_chain(), "F_all 0, F_all 1, B 1", 10, 2, "before_loss");
}

TEST(Replay, RejectsSecondLoss) {
  expect_rejected(two_stage_chain(), "F_all 0, F_all 1, loss, loss", 10, 3, "loss_repeated");
}

TEST(Replay, RejectsMissingGradientOrTape) {
  expect_rejected(two_stage_chain(), "F_all 0, F_all 1, loss, B 0", 10, 3, "missing_gradient");
  expect_rejected(two_stage_chain(), "F_all 0, F_ck 1, loss, B 1", 10, 3, "missing_xbar");
  expect_rejected(two_stage_chain(), "F_all 0, F_all 1, loss, B 1, B 1", 10, 4, "missing_gradient");
}

TEST(Replay, RejectsPeakOverBudget) {
  expect_rejected(two_stage_chain(), "F_all 0, F_all 1, loss, B 1, B 0", 4, 1, "over_budget");
  expect_rejected(two_stage_chain(), "", 0.5, 0, "over_budget");  // initial memory counts
}

TEST(Replay, RejectsUsingDroppedInput) {
  expect_rejected(two_stage_chain(), "drop x 0, F_all 0", 10, 1, "x0_lost");
  expect_rejected(two_stage_chain(), "F_all 0, F_all 1, loss, B 1, drop x 0, B 0", 10, 5,
                  "x0_lost");
  expect_rejected(two_stage_chain(), "F_all 0, drop xbar 1, drop xbar 1", 10, 2, "not_held");
}

TEST(Replay, RejectsIncompleteSchedule) {
  expect_rejected(two_stage_chain(), "F_all 0, F_all 1, loss, B 1", 10, 4, "incomplete");
  expect_rejected(two_stage_chain(), "", 10, 0, "incomplete");
}

TEST(Replay, RejectsBadIndices) {
  expect_rejected(two_stage_chain(), "F_all 2", 10, 0, "bad_op");
  expect_rejected(two_stage_chain(), "drop x 3", 10, 0, "bad_op");
}

TEST(Replay, JoinNeedsEveryBranchOutputForLoss) {
  Graph g = two_stage_chain();
  g.branches.push_back(g.branches.front());
  const std::vector<Op> ops = {{OpKind::F_all, 0, 0}, {OpKind::F_all, 0, 1}, {OpKind::loss}};
  try {
    replay(g, ops, 100);
    ADD_FAILURE();
  } catch (const ReplayError& e) {
    EXPECT_EQ(e.index, 2U);
    EXPECT_EQ(e.rule, "missing_input");
  }
}

// ---------------------------------------------------------------------------------------------
// An unpruned Dijkstra, written separately and literally from the model table (no pruning at all,
// duplicates allowed), for tiny graphs: it checks the pruning rules of the main search.

class UnprunedSearch {
 public:
  explicit UnprunedSearch(const Graph& g) : g_(g) {
    for (const Branch& b : g.branches) {
      base_.push_back(bits_);
      bits_ += 3 * static_cast<int>(b.cw.size()) + 1;  // x, xbar, y per position; complete flag
    }
    loss_bit_ = bits_++;
  }

  // Optimal makespan, or +infinity.
  double solve(double budget) const {
    std::uint64_t start = 0;
    for (std::size_t j = 0; j < g_.branches.size(); ++j) start |= bit(j, 'x', 0);
    if (memory(start) > budget) return INFINITY;
    std::map<std::uint64_t, double> best{{start, 0}};
    using Entry = std::pair<double, std::uint64_t>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
    queue.push({0, start});
    while (!queue.empty()) {
      const auto [t, s] = queue.top();
      queue.pop();
      if (t > best[s]) continue;
      if (complete(s)) return t;
      for_each_successor(s, [&](std::uint64_t next, double peak, double cost) {
        if (peak > budget) return;
        const auto it = best.find(next);
        if (it != best.end() && it->second <= t + cost) return;
        best[next] = t + cost;
        queue.push({t + cost, next});
      });
    }
    return INFINITY;
  }

 private:
  std::uint64_t bit(std::size_t j, char item, std::size_t i) const {
    const std::size_t n1 = g_.branches[j].cw.size();
    const std::size_t offset = item == 'x' ? 0 : item == 'b' ? n1 : item == 'y' ? 2 * n1 : 3 * n1;
    return std::uint64_t{1} << (base_[j] + offset + i);
  }
  bool has(std::uint64_t s, std::size_t j, char item, std::size_t i) const {
    return (s & bit(j, item, i)) != 0;
  }
  bool complete(std::uint64_t s) const {
    for (std::size_t j = 0; j < g_.branches.size(); ++j) {
      if (!has(s, j, 'c', 0)) return false;
    }
    return true;
  }
  double memory(std::uint64_t s) const {
    double mem = 0;
    for (std::size_t j = 0; j < g_.branches.size(); ++j) {
      const Branch& b = g_.branches[j];
      for (std::size_t i = 0; i < b.cw.size(); ++i) {
        mem += (has(s, j, 'x', i) ? b.cw[i] : 0) + (has(s, j, 'b', i) ? b.cbw[i] : 0) +
               (has(s, j, 'y', i) ? b.cw[i] : 0);
      }
    }
    return mem;
  }

  template <class F>
  void for_each_successor(std::uint64_t s, F&& visit) const {
    const double mem = memory(s);
    const bool loss_done = (s >> loss_bit_) & 1U;
    bool outputs_ready = !loss_done;
    double outputs = 0;
    std::uint64_t after_loss = s | (std::uint64_t{1} << loss_bit_);
    for (std::size_t j = 0; j < g_.branches.size(); ++j) {
      const Branch& b = g_.branches[j];
      const std::size_t n = b.fw.size();
      for (std::size_t i = 0; i < n; ++i) {
        const bool has_x = has(s, j, 'x', i);
        if (!has_x && !has(s, j, 'b', i)) continue;
        visit(s | bit(j, 'b', i + 1), mem + b.cbw[i + 1] + b.ftmp[i], b.fw[i]);
        visit(s | bit(j, 'x', i + 1), mem + b.cw[i + 1] + b.ftmp[i], b.fw[i]);
        const std::uint64_t freed = has_x ? bit(j, 'x', i) : bit(j, 'b', i);
        visit((s | bit(j, 'x', i + 1)) & ~freed, mem + b.cw[i + 1] + b.ftmp[i], b.fw[i]);
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (!has(s, j, 'y', i + 1) || !has(s, j, 'b', i + 1)) continue;
        if (!has(s, j, 'x', i) && !has(s, j, 'b', i)) continue;
        std::uint64_t next = s & ~bit(j, 'y', i + 1) & ~bit(j, 'b', i + 1) & ~bit(j, 'x', i);
        next |= i == 0 ? bit(j, 'c', 0) : bit(j, 'y', i);
        visit(next, mem + b.cw[i] + b.btmp[i], b.bw[i]);
      }
      for (std::size_t i = 0; i <= n; ++i) {
        if (has(s, j, 'x', i)) visit(s & ~bit(j, 'x', i), mem, 0);
        if (has(s, j, 'b', i)) visit(s & ~bit(j, 'b', i), mem, 0);
      }
      outputs_ready = outputs_ready && (has(s, j, 'x', n) || has(s, j, 'b', n));
      outputs += b.cw[n];
      after_loss = (after_loss & ~bit(j, 'x', n)) | bit(j, 'y', n);
    }
    if (outputs_ready) visit(after_loss, mem + outputs + g_.loss_tmp, g_.loss_time);
  }

  const Graph& g_;
  std::vector<int> base_;
  int bits_ = 0;
  int loss_bit_ = 0;
};

TEST(Pruning, MatchesUnprunedSearchOnTinyGraphs) {
  std::mt19937_64 rng(7);
  const RandomSpec spec{1, 3, 4, 5, 1};
  for (int trial = 0; trial < 60; ++trial) {
    const Graph g = trial % 3 == 2 ? random_join(rng, 2, trial % 2 == 0, RandomSpec{1, 2, 3, 5, 1})
                                   : random_chain(rng, spec);
    const UnprunedSearch unpruned(g);
    const double least = min_feasible_memory(g);
    for (double m = least - 1; m <= store_everything_budget(g); m += 1) {
      const Result r = optimal_schedule(g, m);
      const double expected = unpruned.solve(m);
      if (std::isinf(expected)) {
        EXPECT_FALSE(r.feasible) << "trial " << trial << " M=" << m;
      } else {
        EXPECT_EQ(r.makespan, expected) << "trial " << trial << " M=" << m;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Self-consistency on random instances

// Checks every budget of `g` from infeasible up to store-everything against its profile.
void check_all_budgets(const Graph& g, const std::string& label, bool solve_each_budget) {
  const std::vector<Result> profile = optimal_profile(g);
  ASSERT_FALSE(profile.empty()) << label;
  const double least = min_feasible_memory(g);
  EXPECT_EQ(least, profile.back().peak) << label;
  EXPECT_EQ(profile.front().makespan, store_all_makespan(g)) << label;
  for (std::size_t k = 0; k < profile.size(); ++k) {
    const Result& step = profile[k];
    const Result again = replay(g, step.ops, step.peak);
    EXPECT_EQ(again.makespan, step.makespan) << label;
    EXPECT_EQ(again.peak, step.peak) << label;
    if (k > 0) {
      EXPECT_LT(step.peak, profile[k - 1].peak) << label;
      EXPECT_GT(step.makespan, profile[k - 1].makespan) << label;
    }
  }
  EXPECT_FALSE(optimal_schedule(g, least - 0.5).feasible) << label;
  if (!solve_each_budget) return;
  double previous = INFINITY;
  for (double m = least - 1; m <= store_everything_budget(g); m += 1) {
    const Result r = optimal_schedule(g, m);
    const double expected = makespan_at(profile, m);
    if (std::isinf(expected)) {
      EXPECT_FALSE(r.feasible) << label << " M=" << m;
      continue;
    }
    ASSERT_TRUE(r.feasible) << label << " M=" << m;
    EXPECT_EQ(r.makespan, expected) << label << " M=" << m;
    EXPECT_LE(r.makespan, previous) << label << " M=" << m;  // non-increasing in M
    previous = r.makespan;
    const Result again = replay(g, r.ops, m);
    EXPECT_EQ(again.makespan, r.makespan) << label << " M=" << m;
    EXPECT_EQ(again.peak, r.peak) << label << " M=" << m;
    EXPECT_LE(again.peak, m) << label << " M=" << m;
  }
}

TEST(Random, ChainsEveryBudget) {
  std::mt19937_64 rng(1);
  const RandomSpec spec{2, 6, 6, 9, 2};
  for (int trial = 0; trial < 200; ++trial) {
    check_all_budgets(random_chain(rng, spec), "chain " + std::to_string(trial), trial < 40);
  }
}

TEST(Random, JoinsEveryBudget) {
  std::mt19937_64 rng(2);
  for (int trial = 0; trial < 60; ++trial) {
    const int k = 2 + trial % 2;
    const RandomSpec spec{1, k == 2 ? 4 : 3, 6, 9, 2};
    const Graph g = random_join(rng, k, trial % 4 < 2, spec);
    check_all_budgets(g, "join " + std::to_string(trial), trial < 10);
  }
}

TEST(Random, StoreAllAtHugeBudget) {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 100; ++trial) {
    const Graph g = trial % 2 ? random_chain(rng, {}) : random_join(rng, 3, false, {1, 3});
    const Result r = optimal_schedule(g, 1e9);
    ASSERT_TRUE(r.feasible);
    EXPECT_EQ(r.makespan, store_all_makespan(g));
  }
}

TEST(Random, LeastBudgetIsTight) {
  std::mt19937_64 rng(4);
  for (int trial = 0; trial < 200; ++trial) {
    const Graph g = trial % 4 ? random_chain(rng, {}) : random_join(rng, 2, trial % 8 == 0, {1, 4});
    const double least = min_feasible_memory(g);
    const Result at = optimal_schedule(g, least);
    ASSERT_TRUE(at.feasible) << trial;
    EXPECT_LE(replay(g, at.ops, least).peak, least);
    EXPECT_FALSE(optimal_schedule(g, least - 0.5).feasible) << trial;
  }
}

TEST(Search, ThrowsAtStateCap) {
  EXPECT_THROW(optimal_schedule(chain_a(), 8, 10), std::runtime_error);
  EXPECT_THROW(min_feasible_memory(chain_a(), 10), std::runtime_error);
}

// Run with --gtest_also_run_disabled_tests to measure.
template <class Body>
void time_it(const char* what, Body&& body) {
  const auto start = std::chrono::steady_clock::now();
  const std::size_t count = body();
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::printf("%s: %zu searches, %.2f s\n", what, count, took.count());
}

TEST(Speed, DISABLED_ThousandChainsEveryBudget) {
  const RandomSpec spec{2, 6, 6, 9, 2};
  time_it("1000 chains, profile", [&] {
    std::mt19937_64 rng(5);
    std::size_t steps = 0;
    for (int trial = 0; trial < 1000; ++trial) steps += optimal_profile(random_chain(rng, spec)).size();
    return steps;
  });
  time_it("1000 chains, one search per integer budget", [&] {
    std::mt19937_64 rng(5);
    std::size_t searches = 0;
    for (int trial = 0; trial < 1000; ++trial) {
      const Graph g = random_chain(rng, spec);
      for (double m = min_feasible_memory(g) - 1; m <= store_everything_budget(g); m += 1) {
        optimal_schedule(g, m);
        ++searches;
      }
    }
    return searches;
  });
}

TEST(Speed, DISABLED_JoinsEveryBudget) {
  for (int k = 2; k <= 3; ++k) {
    const std::string what = "100 joins, k=" + std::to_string(k) + ", 1..4 stages, profile";
    time_it(what.c_str(), [&] {
      std::mt19937_64 rng(6);
      std::size_t steps = 0;
      for (int trial = 0; trial < 100; ++trial) {
        steps += optimal_profile(random_join(rng, k, trial % 2 == 0, {1, 4})).size();
      }
      return steps;
    });
  }
}

}  // namespace
}  // namespace rematch::reference
