// Binomial checkpointing (Griewank & Walther, "Algorithm 799: Revolve", ACM TOMS 26(1), 2000):
// the closed form of its cost, its classic action stream, and its docs/model.md schedule for a chain.
//
// Vocabulary (the classic one): the forward has l steps; step i maps state i to state i+1, and
// the reverse must run the adjoint of every step once, in order l-1 down to 0. c snapshots may be
// held at once; the snapshot of state 0 (the input) counts as one of them.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch {

// Number of forward steps advanced (turn steps excluded) by binomial checkpointing with `steps`
// steps and `snaps` snapshots, which is the least possible: T(l, c) = r*l - C(c+r, r-1), r the
// smallest integer with C(c+r, c) >= l; T(1, c) = 0, and T(l, c) = l-1 for c >= l-1.
// Exact 64-bit result, computed in O(min(c, r) * log r) time whatever the size of l and c.
// Throws InputError for steps == 0, for snaps == 0 with steps > 1, and when T does not fit in
// 64 bits (the message says so).
std::uint64_t revolve_advances(std::uint64_t steps, std::uint64_t snaps);

enum class RevolveAction { advance, takeshot, restore, firsturn, youturn, terminate };

// "advance", "takeshot", "restore", "firsturn", "youturn", "terminate".
const char* to_string(RevolveAction action);

// One action of the stream, with what the classic interface reports:
//   advance  : run the forward from the current state (always a snapshot) up to state `capo`;
//              `check` is the slot of the snapshot advanced from.
//   takeshot : store the current state `capo` in slot `check` (slots are a stack: the slot is
//              the number of snapshots held before this one; slot 0 holds state 0).
//   restore  : make the snapshot in slot `check`, state `capo`, the current state.
//   firsturn : the first turn: run step `capo` = l-1 taped, then its adjoint.
//   youturn  : run step `capo` taped, then its adjoint. After a turn, a snapshot of state `capo`
//              is no longer held (its slot is free).
//   firsturn/youturn/terminate: `check` is the number of snapshots held after the action.
//   terminate: every adjoint has run; `capo` is 0.
struct RevolveStep {
  RevolveAction action = RevolveAction::terminate;
  std::uint64_t capo = 0;
  std::uint64_t check = 0;
  friend bool operator==(const RevolveStep&, const RevolveStep&) = default;
};

// The action stream of binomial checkpointing for `steps` steps and `snaps` snapshots, generated
// on demand: memory O(snapshots held) <= O(min(snaps, steps)), O(1) amortised time per action, no
// limit on steps or snaps other than 64 bits. The advances of the stream add up to
// revolve_advances(steps, snaps) forward steps (the least possible), at most `snaps` snapshots are
// held at once, and the turns reverse the steps in order steps-1 down to 0. As in the classic code,
// the first action for steps >= 2 is `takeshot 0`; for steps == 1 the stream is firsturn 0,
// terminate (no snapshot is needed, so snaps may be 0).
class Revolve {
 public:
  // Throws InputError for steps == 0, or snaps == 0 with steps > 1.
  Revolve(std::uint64_t steps, std::uint64_t snaps);

  // The next action; std::nullopt once `terminate` has been returned.
  std::optional<RevolveStep> next();

  std::uint64_t steps() const { return steps_; }
  std::uint64_t snaps() const { return snaps_; }
  std::uint64_t snapshots_held() const { return stack_.size(); }

 private:
  struct Level {          // one held snapshot
    std::uint64_t pos;    // the state it holds
    std::uint64_t free;   // snapshots usable from it on, itself included
    std::uint64_t reps;   // r for the segment last split from it
    std::uint64_t bino;   // C(free + reps - 1, free): below the segment length, so it fits
  };
  void fit_reps(Level& level, std::uint64_t length) const;

  std::uint64_t steps_, snaps_;
  std::uint64_t capo_ = 0, fine_;
  bool turned_ = false, done_ = false;
  std::vector<Level> stack_;
};

// The whole stream (steps must be small enough for it to fit in memory).
std::vector<RevolveStep> revolve_actions(std::uint64_t steps, std::uint64_t snaps);

// The docs/model.md schedule of binomial checkpointing with `snaps` snapshots on a chain of L stages:
// snapshots are stored x_i (held plain; x_0 is the input); an advance from snapshot x_a to x_b is
// F_ck a, F_none a+1 .. b-1; each turn at i is F_all i, B i, the first one F_all L-1, loss, B L-1;
// takeshot and restore need no op. Its forward ops number revolve_advances(L, snaps) + L.
// Throws InputError when `chain` is not a valid chain or snaps == 0.
Schedule revolve_schedule_for_snaps(const Graph& chain, std::uint64_t snaps);

// The least budget revolve_schedule works with: the peak of the 1-snapshot (recompute-all)
// schedule, computed in O(L) without building it (every schedule above has at least this peak).
double revolve_min_memory(const Graph& chain);

// revolve_schedule_for_snaps with the largest useful number of snapshots c whose replay (simulate)
// fits in memory_limit; useful means c <= max(1, L-1) (T(L, c) strictly decreases up to c = L-1,
// and stays L-1 beyond).
// Works on any chain; it is optimal (among schedules that never drop) only on homogeneous ones.
// c is found by a downward scan when L <= 65, else by bisection on "simulate fits", which finds
// the largest c exactly when the peak grows with c (it does on homogeneous chains); on other
// chains the c returned fits and c+1 does not. `snaps_used`, when given, receives c.
// Throws InputError naming revolve_min_memory(chain) when memory_limit is below it, or when
// `chain` is not a valid chain.
Schedule revolve_schedule(const Graph& chain, double memory_limit, std::uint64_t* snaps_used = nullptr);

}  // namespace rematch
