// Binomial checkpointing: closed form, action stream, docs/model.md schedules for chains.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "scheduler/graph.hpp"
#include "scheduler/revolve.hpp"
#include "scheduler/schedule.hpp"
#include "scheduler/simulator.hpp"
#include "tests/spec_examples.hpp"

namespace rematch {
namespace {

using u64 = std::uint64_t;
constexpr u64 kMax = std::numeric_limits<u64>::max();

// Under the sanitizers (several times slower) the largest sweeps are sampled.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// ---------------------------------------------------------------------------------------------
// Closed form

TEST(RevolveAdvancesKnownValues, PublishedValues) {
  EXPECT_EQ(revolve_advances(10, 3), 15u);
  EXPECT_EQ(revolve_advances(6, 2), 8u);
  EXPECT_EQ(revolve_advances(100, 5), 316u);
  EXPECT_EQ(revolve_advances(1000, 10), 3636u);
}

TEST(RevolveAdvancesKnownValues, OneStepCostsNothing) {
  for (u64 c : {u64{0}, u64{1}, u64{2}, u64{1000}, kMax}) EXPECT_EQ(revolve_advances(1, c), 0u) << c;
}

TEST(RevolveAdvancesKnownValues, OneSnapshotIsQuadratic) {
  for (u64 l = 1; l <= 2000; ++l) ASSERT_EQ(revolve_advances(l, 1), l * (l - 1) / 2) << l;
  const u64 big = u64{1} << 32;
  EXPECT_EQ(revolve_advances(big, 1), big / 2 * (big - 1));
}

TEST(RevolveAdvancesKnownValues, EnoughSnapshotsGiveOneAdvancePerStep) {
  for (u64 l : {u64{2}, u64{3}, u64{50}, u64{1} << 40, kMax}) {
    EXPECT_EQ(revolve_advances(l, l - 1), l - 1) << l;
    EXPECT_EQ(revolve_advances(l, kMax), l - 1) << l;  // must not loop over c
  }
}

TEST(RevolveAdvancesKnownValues, LargeArgumentsNeedWideArithmetic) {
  // Reference values from exact (arbitrary precision) evaluation of r*l - C(c+r, r-1).
  EXPECT_EQ(revolve_advances((u64{1} << 63) + 5, u64{1} << 63), 9223372036854775816u);
  EXPECT_EQ(revolve_advances(1000000000000u, 20), 21987383599920u);
  EXPECT_EQ(revolve_advances(u64{1} << 40, 30), 17188465063094u);
  EXPECT_EQ(revolve_advances(3000000000u, 2), 154916333856910u);
  // The largest l with 1 snapshot whose T fits in 64 bits.
  EXPECT_EQ(revolve_advances(6074001000u, 1), 18446744070963499500u);
}

// T(m, s) by the recursion over the first advance k: k + T(k, s) + T(m-k, s-1), T(1, s) = 0,
// T(m, 1) = m(m-1)/2. Checks that the closed form is the least number of advances.
TEST(RevolveAdvancesMatchesDynamicProgram, SmallInstances) {
  const int max_l = 80, max_c = 8;
  std::vector<std::vector<u64>> best(max_l + 1, std::vector<u64>(max_c + 1, 0));
  for (int m = 1; m <= max_l; ++m) {
    best[m][1] = static_cast<u64>(m) * (m - 1) / 2;
    for (int s = 2; s <= max_c; ++s) {
      if (m == 1) continue;
      u64 least = kMax;
      for (int k = 1; k < m; ++k) least = std::min(least, k + best[k][s] + best[m - k][s - 1]);
      best[m][s] = least;
    }
  }
  for (int m = 1; m <= max_l; ++m)
    for (int s = 1; s <= max_c; ++s) ASSERT_EQ(revolve_advances(m, s), best[m][s]) << m << " " << s;
}

TEST(RevolveAdvancesErrors, RejectsBadArguments) {
  EXPECT_THROW(revolve_advances(0, 3), InputError);
  EXPECT_THROW(revolve_advances(0, 0), InputError);
  EXPECT_THROW(revolve_advances(2, 0), InputError);
  EXPECT_THROW(revolve_advances(kMax, 0), InputError);
}

TEST(RevolveAdvancesErrors, OverflowIsReportedNotWrapped) {
  for (auto [l, c] : {std::pair{u64{6074001001}, u64{1}}, {u64{1} << 40, u64{1}}, {kMax, u64{1}},
                      {kMax, u64{2}}, {kMax, u64{64}}, {u64{1000000000000000000}, u64{3}}}) {
    try {
      revolve_advances(l, c);
      ADD_FAILURE() << "no error for l=" << l << " c=" << c;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("64 bits"), std::string::npos) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Action stream

// Replays a stream as the classic driver would and checks it: snapshot slots are a stack (a
// takeshot into slot k discards slots >= k), at most `snaps` are held, advances start from the
// state the stream is at and never pass the step to reverse next, restores find the state in
// their slot, and the turns reverse l-1 down to 0, each once, the first being a firsturn.
struct Replay {
  u64 advances = 0;
  u64 actions = 0;
  u64 most_held = 0;
};

template <class Next>
Replay replay_stream(u64 l, u64 snaps, Next next) {
  Replay out;
  std::vector<u64> slots;
  std::optional<u64> state = 0;     // the state at hand, if any (none right after a turn)
  std::int64_t to_reverse = static_cast<std::int64_t>(l) - 1;
  bool terminated = false;
  while (std::optional<RevolveStep> step = next()) {
    ++out.actions;
    EXPECT_FALSE(terminated) << "action after terminate";
    const u64 capo = step->capo;
    switch (step->action) {
      case RevolveAction::takeshot:
        EXPECT_TRUE(state && *state == capo) << "takeshot " << capo << " of a state not at hand";
        EXPECT_LE(step->check, slots.size());
        EXPECT_LT(step->check, snaps) << "slot out of range";
        slots.resize(std::min<u64>(slots.size(), step->check));
        slots.push_back(capo);
        out.most_held = std::max<u64>(out.most_held, slots.size());
        break;
      case RevolveAction::advance:
        EXPECT_TRUE(state.has_value()) << "advance with no state at hand";
        if (!state) return out;
        EXPECT_GT(capo, *state);
        EXPECT_LE(static_cast<std::int64_t>(capo), to_reverse) << "advance past the step to reverse";
        out.advances += capo - *state;
        state = capo;
        break;
      case RevolveAction::restore:
        EXPECT_LT(step->check, slots.size());
        if (step->check >= slots.size()) return out;
        EXPECT_EQ(slots[step->check], capo) << "slot " << step->check << " does not hold state " << capo;
        slots.resize(step->check + 1);
        state = capo;
        break;
      case RevolveAction::firsturn:
      case RevolveAction::youturn:
        EXPECT_EQ(step->action == RevolveAction::firsturn, to_reverse == static_cast<std::int64_t>(l) - 1);
        EXPECT_TRUE(state && *state == capo) << "turn at " << capo << " from another state";
        EXPECT_EQ(static_cast<std::int64_t>(capo), to_reverse) << "steps reversed out of order";
        if (static_cast<std::int64_t>(capo) != to_reverse) return out;
        --to_reverse;
        state.reset();
        while (!slots.empty() && slots.back() >= capo) slots.pop_back();  // spent
        EXPECT_EQ(step->check, slots.size());
        break;
      case RevolveAction::terminate:
        terminated = true;
        EXPECT_EQ(to_reverse, -1) << "terminate before every step is reversed";
        break;
    }
    if (::testing::Test::HasFailure()) return out;
  }
  EXPECT_TRUE(terminated);
  return out;
}

Replay replay(u64 l, u64 c) {
  Revolve revolve(l, c);
  return replay_stream(l, c, [&revolve] { return revolve.next(); });
}

TEST(RevolveStreamReplaysCorrectly, AllSmallInstances) {
  const u64 stride = kSanitized ? 7 : 1;  // lengths above 63 are sampled under the sanitizers
  for (u64 c = 1; c <= 20; ++c) {
    for (u64 l = 1; l <= 1000; l += (l < 64 ? 1 : stride)) {
      const Replay r = replay(l, c);
      ASSERT_FALSE(HasFailure()) << "l=" << l << " c=" << c;
      ASSERT_EQ(r.advances, revolve_advances(l, c)) << "l=" << l << " c=" << c;
      ASSERT_LE(r.most_held, c);
      ASSERT_EQ(r.most_held, std::min(c, l - 1)) << "l=" << l << " c=" << c;  // and every one is used
    }
  }
}

TEST(RevolveStreamReplaysCorrectly, OneStepNeedsNoSnapshot) {
  const std::vector<RevolveStep> expected{{RevolveAction::firsturn, 0, 0}, {RevolveAction::terminate, 0, 0}};
  EXPECT_EQ(revolve_actions(1, 0), expected);
  EXPECT_EQ(revolve_actions(1, 5), expected);
}

TEST(RevolveStreamReplaysCorrectly, ClassicOpeningAndEnd) {
  const std::vector<RevolveStep> actions = revolve_actions(10, 3);
  ASSERT_GE(actions.size(), 3u);
  EXPECT_EQ(actions.front(), (RevolveStep{RevolveAction::takeshot, 0, 0}));
  EXPECT_EQ(actions[1].action, RevolveAction::advance);
  EXPECT_EQ(actions.back().action, RevolveAction::terminate);
  EXPECT_EQ(actions[actions.size() - 2], (RevolveStep{RevolveAction::youturn, 0, 0}));
  // With 1 snapshot: advance to l-1, turn, restore 0, advance to l-2, ...
  const std::vector<RevolveStep> one = revolve_actions(3, 1);
  const std::vector<RevolveStep> expected{
      {RevolveAction::takeshot, 0, 0}, {RevolveAction::advance, 2, 0}, {RevolveAction::firsturn, 2, 1},
      {RevolveAction::restore, 0, 0},  {RevolveAction::advance, 1, 0}, {RevolveAction::youturn, 1, 1},
      {RevolveAction::restore, 0, 0},  {RevolveAction::youturn, 0, 0}, {RevolveAction::terminate, 0, 0}};
  EXPECT_EQ(one, expected);
}

TEST(RevolveStreamReplaysCorrectly, SurplusSnapshotsChangeNothing) {
  for (u64 l : {2u, 3u, 17u, 200u}) {
    EXPECT_EQ(revolve_actions(l, kMax), revolve_actions(l, l - 1)) << l;
    EXPECT_EQ(revolve_actions(l, l + 5), revolve_actions(l, l - 1)) << l;
  }
}

TEST(RevolveStreamReplaysCorrectly, LongStreams) {
  const u64 scale = kSanitized ? 10 : 1;
  for (auto [l, c] : {std::pair{u64{200000}, u64{1}}, {u64{1000000}, u64{2}}, {u64{1000000}, u64{7}},
                      {u64{300000}, u64{100}}, {u64{100000}, u64{99999}}}) {
    l /= scale;
    c = std::min(c, l - 1);
    const Replay r = replay(l, c);
    ASSERT_FALSE(HasFailure()) << "l=" << l << " c=" << c;
    EXPECT_EQ(r.advances, revolve_advances(l, c)) << "l=" << l << " c=" << c;
    EXPECT_LE(r.most_held, c);
  }
}

TEST(RevolveStreamMemory, HugeStepCountsStreamLazily) {
  // 2^62 steps: the stream is generated on demand; its opening holds at most c snapshots and every
  // advance stays within range.
  const u64 l = u64{1} << 62;
  for (u64 c : {u64{1}, u64{3}, u64{40}, kMax}) {
    Revolve revolve(l, c);
    u64 position = 0, held_max = 0;
    for (int k = 0; k < 200000; ++k) {
      const std::optional<RevolveStep> step = revolve.next();
      ASSERT_TRUE(step.has_value());
      if (step->action == RevolveAction::advance) {
        ASSERT_GT(step->capo, position);
        ASSERT_LT(step->capo, l);
      }
      if (step->action == RevolveAction::advance || step->action == RevolveAction::restore) position = step->capo;
      held_max = std::max(held_max, revolve.snapshots_held());
    }
    EXPECT_LE(held_max, std::min<u64>(c, 200000));
  }
}

TEST(RevolveStreamErrors, RejectsBadArguments) {
  EXPECT_THROW(Revolve(0, 1), InputError);
  EXPECT_THROW(Revolve(2, 0), InputError);
  EXPECT_THROW(revolve_actions(0, 0), InputError);
  EXPECT_NO_THROW(Revolve(1, 0));
}

TEST(RevolveStreamNames, ClassicNames) {
  EXPECT_STREQ(to_string(RevolveAction::advance), "advance");
  EXPECT_STREQ(to_string(RevolveAction::takeshot), "takeshot");
  EXPECT_STREQ(to_string(RevolveAction::restore), "restore");
  EXPECT_STREQ(to_string(RevolveAction::firsturn), "firsturn");
  EXPECT_STREQ(to_string(RevolveAction::youturn), "youturn");
  EXPECT_STREQ(to_string(RevolveAction::terminate), "terminate");
}

// ---------------------------------------------------------------------------------------------
// Schedules for chains

Graph homogeneous_chain(int stages) {
  Branch b;
  b.fw.assign(stages, 1);
  b.bw.assign(stages, 1);
  b.cw.assign(stages + 1, 1);
  b.cbw.assign(stages + 1, 1);
  b.ftmp.assign(stages, 0);
  b.btmp.assign(stages, 0);
  return Graph{{b}, Loss{0, 0}};
}

Graph random_chain(int stages, std::mt19937& rng) {
  std::uniform_int_distribution<int> size(1, 10), time(1, 5), tmp(0, 3), extra(0, 6);
  Branch b;
  for (int i = 0; i <= stages; ++i) {
    b.cw.push_back(size(rng));
    b.cbw.push_back(i == 0 ? b.cw.back() : b.cw.back() + extra(rng));
  }
  for (int i = 0; i < stages; ++i) {
    b.fw.push_back(time(rng));
    b.bw.push_back(time(rng));
    b.ftmp.push_back(tmp(rng));
    b.btmp.push_back(tmp(rng));
  }
  return Graph{{b}, Loss{static_cast<double>(time(rng)), static_cast<double>(tmp(rng))}};
}

u64 forward_ops(const Schedule& schedule) {
  return static_cast<u64>(std::count_if(schedule.begin(), schedule.end(), [](const Op& op) {
    return op.kind == OpKind::F_all || op.kind == OpKind::F_ck || op.kind == OpKind::F_none;
  }));
}

double peak_of(const Graph& chain, const Schedule& schedule) {
  const SimulationResult result = simulate(chain, schedule);
  EXPECT_TRUE(result.valid) << result.reason << " at op " << result.bad_op;
  return result.peak;
}

TEST(RevolveScheduleForSnaps, ForwardCountIsClosedFormPlusTurns) {
  for (int stages : {1, 2, 3, 4, 7, 10, 31, 100}) {
    const Graph chain = homogeneous_chain(stages);
    for (u64 c = 1; c <= static_cast<u64>(stages) + 1; ++c) {
      const Schedule schedule = revolve_schedule_for_snaps(chain, c);
      const SimulationResult result = simulate(chain, schedule);
      ASSERT_TRUE(result.valid) << "L=" << stages << " c=" << c << ": " << result.reason;
      EXPECT_EQ(forward_ops(schedule), revolve_advances(stages, c) + stages) << "L=" << stages << " c=" << c;
      // Homogeneous: makespan = forwards + backwards; at most c snapshots + the state at hand + the turn.
      EXPECT_DOUBLE_EQ(result.makespan, static_cast<double>(forward_ops(schedule) + stages));
      EXPECT_LE(result.peak, static_cast<double>(std::min<u64>(c, stages)) + 4) << "L=" << stages << " c=" << c;
    }
  }
}

TEST(RevolveScheduleForSnaps, MinMemoryIsThePeakOfRecomputeAll) {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 300; ++trial) {
    const Graph chain = random_chain(1 + trial % 15, rng);
    const double least = revolve_min_memory(chain);
    EXPECT_DOUBLE_EQ(least, peak_of(chain, revolve_schedule_for_snaps(chain, 1))) << trial;
    for (u64 c = 2; c < static_cast<u64>(chain.branches[0].stages()); ++c)
      EXPECT_GE(peak_of(chain, revolve_schedule_for_snaps(chain, c)), least) << trial << " c=" << c;
  }
}

TEST(RevolveScheduleForSnaps, RejectsBadInput) {
  EXPECT_THROW(revolve_schedule_for_snaps(homogeneous_chain(3), 0), InputError);
  Graph join = homogeneous_chain(3);
  join.branches.push_back(join.branches[0]);
  EXPECT_THROW(revolve_schedule_for_snaps(join, 2), InputError);
  EXPECT_THROW(revolve_min_memory(join), InputError);
  Graph bad = homogeneous_chain(3);
  bad.branches[0].cw.pop_back();
  EXPECT_THROW(revolve_schedule_for_snaps(bad, 2), InputError);
}

// For each budget from the least one up: the schedule replays within it, uses c snapshots with
// forward ops T(L, c) + L, and c is the largest that fits (c+1 does not, or c = max(1, L-1)).
void check_budget_choice(const Graph& chain, double budget) {
  const int stages = chain.branches[0].stages();
  const u64 most = std::max(1, stages - 1);
  u64 c = 0;
  const Schedule schedule = revolve_schedule(chain, budget, &c);
  const SimulationResult result = simulate(chain, schedule, budget);
  ASSERT_TRUE(result.valid) << "L=" << stages << " M=" << budget << ": " << result.reason;
  ASSERT_GE(c, 1u);
  ASSERT_LE(c, most);
  EXPECT_EQ(forward_ops(schedule), revolve_advances(stages, c) + stages) << "L=" << stages << " M=" << budget;
  EXPECT_EQ(schedule, revolve_schedule_for_snaps(chain, c));
  if (c < most) {
    EXPECT_FALSE(simulate(chain, revolve_schedule_for_snaps(chain, c + 1), budget).valid)
        << "L=" << stages << " M=" << budget << " c=" << c << ": c+1 fits too";
  }
}

TEST(RevolveScheduleBudget, HomogeneousChains) {
  for (int stages : {1, 2, 3, 5, 8, 20, 64, 65, 66, 200}) {
    const Graph chain = homogeneous_chain(stages);
    const double least = revolve_min_memory(chain);
    const double step = kSanitized && stages > 100 ? 7 : 1;
    for (double budget = least; budget <= least + stages + 3; budget += step) check_budget_choice(chain, budget);
  }
}

TEST(RevolveScheduleBudget, HomogeneousChainsUseTheLargestFittingSnapshotCount) {
  // On homogeneous chains the peak grows with c, so the c chosen beats every smaller one.
  for (int stages : {10, 100, 150}) {
    const Graph chain = homogeneous_chain(stages);
    std::vector<double> peaks{0};
    for (u64 c = 1; c < static_cast<u64>(stages); ++c)
      peaks.push_back(peak_of(chain, revolve_schedule_for_snaps(chain, c)));
    EXPECT_TRUE(std::is_sorted(peaks.begin(), peaks.end()));
    for (double budget = peaks[1]; budget <= peaks.back(); budget += 1) {
      u64 c = 0;
      revolve_schedule(chain, budget, &c);
      const u64 expected = static_cast<u64>(std::upper_bound(peaks.begin(), peaks.end(), budget) - peaks.begin()) - 1;
      EXPECT_EQ(c, expected) << "L=" << stages << " M=" << budget;
    }
  }
}

TEST(RevolveScheduleBudget, HeterogeneousChains) {
  std::mt19937 rng(2024);
  for (int trial = 0; trial < 200; ++trial) {
    const int stages = trial < 180 ? 1 + trial % 12 : 70 + trial % 5;
    const Graph chain = random_chain(stages, rng);
    const double least = revolve_min_memory(chain);
    const double most = peak_of(chain, revolve_schedule_for_snaps(chain, std::max(1, stages - 1)));
    std::uniform_real_distribution<double> budget(least, most + 5);
    check_budget_choice(chain, least);
    check_budget_choice(chain, std::floor(budget(rng)));
    check_budget_choice(chain, budget(rng));
    ASSERT_FALSE(HasFailure()) << "trial " << trial;
  }
}

TEST(RevolveScheduleBudget, SpecWorkedExample) {
  // docs/model.md#a-worked-example, chain A: least feasible budget 6, optimal makespan 27 there, which
  // recompute-all (1 snapshot) reaches; with ample memory revolve stores every state.
  const Graph chain = testing::spec_chain_a();
  EXPECT_DOUBLE_EQ(revolve_min_memory(chain), 6);
  u64 c = 0;
  const SimulationResult tight = simulate(chain, revolve_schedule(chain, 6, &c), 6);
  EXPECT_TRUE(tight.valid) << tight.reason;
  EXPECT_EQ(c, 1u);
  EXPECT_DOUBLE_EQ(tight.makespan, 27);
  const SimulationResult ample = simulate(chain, revolve_schedule(chain, 100, &c), 100);
  EXPECT_TRUE(ample.valid) << ample.reason;
  EXPECT_EQ(c, 5u);
  EXPECT_DOUBLE_EQ(ample.makespan, 6 + 5 + 6);  // T(6, 5) = 5 advances, 6 turns, 6 backwards
}

TEST(RevolveScheduleErrors, BudgetBelowTheLeastNamesIt) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const Graph chain = random_chain(1 + trial, rng);
    const double least = revolve_min_memory(chain);
    try {
      revolve_schedule(chain, least - 0.5);
      ADD_FAILURE() << "no error below the least budget " << least;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(least)), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(revolve_schedule(chain, least));
  }
  const Graph chain = homogeneous_chain(4);
  EXPECT_THROW(revolve_schedule(chain, -1), InputError);
  EXPECT_THROW(revolve_schedule(chain, std::nan("")), InputError);
  EXPECT_NO_THROW(revolve_schedule(chain, std::numeric_limits<double>::infinity()));
  Graph join = chain;
  join.branches.push_back(chain.branches[0]);
  EXPECT_THROW(revolve_schedule(join, 100), InputError);
}

}  // namespace
}  // namespace rematch
