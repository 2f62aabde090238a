#include "scheduler/revolve.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "scheduler/simulator.hpp"

namespace rematch {

// Notation: beta(s, r) = C(s + r, s), the most steps s snapshots reverse when no step is advanced
// more than r times. For a segment of m >= 2 steps and s >= 1 snapshots (the one at its start
// included), r(m, s) is the smallest r with beta(s, r) >= m; by minimality beta(s, r-1) < m, so
// that value always fits in 64 bits, and every product below of it with a 64-bit number fits in
// 128 bits.

namespace {

using u64 = std::uint64_t;
__extension__ typedef unsigned __int128 u128;  // GCC/Clang; __extension__ keeps -Wpedantic quiet
constexpr u128 kU128Max = ~static_cast<u128>(0);

// min(C(n, k), cap) for cap <= 2^64, in O(min(k, n-k)) steps at most, stopping as soon as the
// partial binomial C(n-k+i, i) (increasing in i) reaches cap.
u128 binomial_capped(u128 n, u128 k, u128 cap) {
  if (k > n) return 0;
  k = std::min(k, n - k);
  u128 value = 1;
  for (u128 i = 1; i <= k; ++i) {
    if (value >= cap) return cap;
    const u128 factor = n - k + i;
    // value * factor / i would exceed kU128Max / i >= 2^64 >= cap (i < 2^64 here).
    if (value > kU128Max / factor) return cap;
    value = value * factor / i;  // exact: C(n-k+i-1, i-1) * (n-k+i) = C(n-k+i, i) * i
  }
  return std::min(value, cap);
}

u128 beta_capped(u128 s, u128 r, u128 cap) { return binomial_capped(s + r, s, cap); }

struct Reps {
  u64 r;     // r(m, s)
  u64 bino;  // beta(s, r-1) < m
};

// r(m, s) for m >= 2, s >= 1, from scratch: O(min(s, r) * log r).
Reps reps_for(u64 m, u64 s) {
  if (s >= m - 1) return {1, 1};   // beta(s, 1) = s + 1 >= m
  if (s == 1) return {m - 1, m - 1};  // beta(1, r) = r + 1
  // Here 2 <= s < m-1 and 2 <= r <= m-1. Doubling, then bisection on beta(s, r) >= m.
  u64 lo = 1, hi = 2;  // beta(s, lo) < m
  while (beta_capped(s, hi, m) < m) {
    lo = hi;
    hi = hi > (m - 1) / 2 ? m - 1 : 2 * hi;
  }
  while (hi - lo > 1) {
    const u64 mid = lo + (hi - lo) / 2;
    if (beta_capped(s, mid, m) >= m) hi = mid;
    else lo = mid;
  }
  return {hi, static_cast<u64>(beta_capped(s, hi - 1, m))};
}

void check_steps_snaps(u64 steps, u64 snaps) {
  if (steps == 0) throw InputError("revolve: steps must be at least 1");
  if (snaps == 0 && steps > 1)
    throw InputError("revolve: snaps must be at least 1 for " + std::to_string(steps) +
                     " steps (the snapshot of state 0 counts as one)");
}

std::string to_decimal(u128 value) {
  if (value == 0) return "0";
  std::string digits;
  while (value > 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  return digits;
}

}  // namespace

u64 revolve_advances(u64 steps, u64 snaps) {
  check_steps_snaps(steps, snaps);
  if (steps == 1) return 0;
  if (snaps >= steps - 1) return steps - 1;
  const u64 l = steps, c = snaps;
  const Reps reps = reps_for(l, c);
  const u128 r = reps.r;
  // C(c+r, r-1) = beta(c+1, r-1) = beta(c, r-1) * (c+r) / (c+1); the product is below 2^128:
  // r == 2 gives (c+1)(c+2) <= l^2; c == 1 gives r(r+1) <= l^2; otherwise beta(c, r-1) >=
  // C(c+r-1, 2) < l bounds c + r by about sqrt(2l).
  const u128 subtracted = static_cast<u128>(reps.bino) * (c + r) / (static_cast<u128>(c) + 1);
  const u128 advances = r * l - subtracted;
  if (advances > std::numeric_limits<u64>::max())
    throw InputError("revolve: the number of forward advances T(" + std::to_string(l) + ", " + std::to_string(c) +
                     ") = " + to_decimal(advances) + " does not fit in 64 bits");
  return static_cast<u64>(advances);
}

const char* to_string(RevolveAction action) {
  switch (action) {
    case RevolveAction::advance: return "advance";
    case RevolveAction::takeshot: return "takeshot";
    case RevolveAction::restore: return "restore";
    case RevolveAction::firsturn: return "firsturn";
    case RevolveAction::youturn: return "youturn";
    case RevolveAction::terminate: return "terminate";
  }
  return "?";
}

Revolve::Revolve(u64 steps, u64 snaps) : steps_(steps), snaps_(snaps), fine_(steps) {
  check_steps_snaps(steps, snaps);
}

// Brings level.reps/bino from the segment last split at this level down to a segment of `length`
// (never longer). The split rule in next() keeps this to at most two decrements per call.
void Revolve::fit_reps(Level& level, u64 length) const {
  while (level.reps > 1 && level.bino >= length) {
    // beta(s, r-2) = beta(s, r-1) * (r-1) / (s+r-1)
    const u128 s = level.free, r = level.reps;
    level.bino = static_cast<u64>(static_cast<u128>(level.bino) * (r - 1) / (s + r - 1));
    --level.reps;
  }
}

std::optional<RevolveStep> Revolve::next() {
  if (done_) return std::nullopt;
  const u64 length = fine_ - capo_;

  if (length == 0) {  // the segment ending at fine_ is reversed: back to the last snapshot, or done
    if (stack_.empty()) {
      done_ = true;
      return RevolveStep{RevolveAction::terminate, 0, 0};
    }
    capo_ = stack_.back().pos;
    return RevolveStep{RevolveAction::restore, capo_, stack_.size() - 1};
  }

  if (length == 1) {  // tape step capo_ and run its adjoint; a snapshot of capo_ is spent
    fine_ = capo_;
    if (!stack_.empty() && stack_.back().pos == capo_) stack_.pop_back();
    const RevolveAction action = turned_ ? RevolveAction::youturn : RevolveAction::firsturn;
    turned_ = true;
    return RevolveStep{action, capo_, stack_.size()};
  }

  if (stack_.empty() || stack_.back().pos != capo_) {  // store the state just reached
    Level level{capo_, snaps_ - stack_.size(), 0, 0};
    if (stack_.empty()) {
      const Reps reps = reps_for(length, level.free);
      level.reps = reps.r;
      level.bino = reps.bino;
    } else {
      // The parent's split left length in [beta(s-1, r-1), beta(s-1, r)] (s, r the parent's), so
      // r(length, s-1) is r or r-1: start from beta(s-1, r-1) = beta(s, r-1) * s / (s+r-1).
      const Level& parent = stack_.back();
      const u128 s = parent.free, r = parent.reps;
      level.reps = parent.reps;
      level.bino = static_cast<u64>(static_cast<u128>(parent.bino) * s / (s + r - 1));
      fit_reps(level, length);
    }
    stack_.push_back(level);
    return RevolveStep{RevolveAction::takeshot, capo_, stack_.size() - 1};
  }

  // Advance from the snapshot at capo_ to split the segment [capo_, fine_) of `length` steps.
  Level& level = stack_.back();
  fit_reps(level, length);
  const u64 s = level.free, r = level.reps;
  u64 advance;
  if (s == 1) {
    advance = length - 1;  // no snapshot to spare: run up to the last step
  } else if (r == 1) {
    advance = 1;  // a snapshot for every state
  } else {
    // Every advance k in [max(beta(s, r-2), m - beta(s-1, r)), min(beta(s, r-1), m - beta(s-1, r-1))]
    // is optimal (k + T(k, s) + T(m-k, s-1) = T(m, s)) and the interval is never empty. Its lower end
    // is taken; either end keeps r(k, s) >= r-2 and r(m-k, s-1) >= r-1, which bounds fit_reps.
    const u128 b = level.bino, s128 = s, r128 = r;
    const u128 beta_s_r2 = b * (r128 - 1) / (s128 + r128 - 1);
    const u128 beta_s1_r = b * s128 / r128;
    const u128 lower = length > beta_s1_r ? std::max<u128>(beta_s_r2, length - beta_s1_r) : beta_s_r2;
    advance = static_cast<u64>(lower);
  }
  capo_ += advance;
  return RevolveStep{RevolveAction::advance, capo_, stack_.size() - 1};
}

std::vector<RevolveStep> revolve_actions(u64 steps, u64 snaps) {
  Revolve revolve(steps, snaps);
  std::vector<RevolveStep> actions;
  while (std::optional<RevolveStep> step = revolve.next()) actions.push_back(*step);
  return actions;
}

namespace {

const Branch& chain_branch(const Graph& chain) {
  validate(chain);
  if (!chain.is_chain())
    throw InputError("revolve: the graph has " + std::to_string(chain.num_branches()) +
                     " branches; binomial checkpointing needs a chain (one branch)");
  return chain.branches.front();
}

}  // namespace

Schedule revolve_schedule_for_snaps(const Graph& chain, u64 snaps) {
  const Branch& branch = chain_branch(chain);
  if (snaps == 0) throw InputError("revolve: snaps must be at least 1 (x_0 is one snapshot)");
  const int stages = branch.stages();
  Schedule schedule;
  Revolve revolve(static_cast<u64>(stages), snaps);
  int current = 0;  // the state the stream is at
  while (std::optional<RevolveStep> step = revolve.next()) {
    const int capo = static_cast<int>(step->capo);
    switch (step->action) {
      case RevolveAction::advance:
        schedule.push_back(Op::f_ck(0, current));
        for (int i = current + 1; i < capo; ++i) schedule.push_back(Op::f_none(0, i));
        current = capo;
        break;
      case RevolveAction::takeshot: break;  // the state is held as x_capo already
      case RevolveAction::restore: current = capo; break;
      case RevolveAction::firsturn:
        schedule.push_back(Op::f_all(0, capo));
        schedule.push_back(Op::loss_op());
        schedule.push_back(Op::b(0, capo));
        break;
      case RevolveAction::youturn:
        schedule.push_back(Op::f_all(0, capo));
        schedule.push_back(Op::b(0, capo));
        break;
      case RevolveAction::terminate: break;
    }
  }
  return schedule;
}

double revolve_min_memory(const Graph& chain) {
  // The 1-snapshot schedule: for i = L-1 down to 0, advance x_0 -> x_i (F_ck 0, F_none 1..i-1),
  // F_all i, (loss,) B i, with y_{i+1} held except before the loss. Its peak, op by op:
  const Branch& b = chain_branch(chain);
  const int stages = b.stages();
  const auto& cw = b.cw;
  double peak = cw[0];
  double advance_peak = 0;  // largest peak of the ops of the advance x_0 -> x_i, without y_{i+1}
  for (int i = 0; i < stages; ++i) {
    if (i >= 1) {
      const int j = i - 1;  // the advance to x_i ends with the forward of stage j
      const double op_peak = j == 0 ? cw[0] + cw[1] + b.ftmp[0] : cw[0] + cw[j] + cw[j + 1] + b.ftmp[j];
      advance_peak = std::max(advance_peak, op_peak);
    }
    const bool first = i == stages - 1;
    const double y = first ? 0 : cw[i + 1];   // the gradient held while this turn is prepared
    const double x_i = i >= 1 ? cw[i] : 0;     // x_i besides x_0
    if (i >= 1) peak = std::max(peak, y + advance_peak);
    peak = std::max(peak, cw[0] + x_i + y + b.cbw[i + 1] + b.ftmp[i]);                   // F_all i
    if (first) peak = std::max(peak, cw[0] + x_i + b.cbw[i + 1] + cw[i + 1] + chain.loss.tmp);  // loss
    peak = std::max(peak, cw[0] + x_i + cw[i + 1] + b.cbw[i + 1] + cw[i] + b.btmp[i]);   // B i
  }
  return peak;
}

Schedule revolve_schedule(const Graph& chain, double memory_limit, u64* snaps_used) {
  const double least = revolve_min_memory(chain);  // validates the chain
  if (!(memory_limit >= 0))
    throw InputError("revolve: memory limit must be a non-negative number");
  if (exceeds(least, memory_limit))
    throw InputError("revolve: memory limit " + std::to_string(memory_limit) +
                     " is below the least budget binomial checkpointing works with, " + std::to_string(least) +
                     " (1 snapshot: recompute everything from x_0)");
  const u64 stages = static_cast<u64>(chain.branches.front().stages());
  const u64 most = std::max<u64>(1, stages - 1);

  Schedule best;
  u64 chosen = 1;
  auto fits = [&](u64 snaps) {
    Schedule schedule = revolve_schedule_for_snaps(chain, snaps);
    if (!simulate(chain, schedule, memory_limit).valid) return false;
    best = std::move(schedule);
    chosen = snaps;
    return true;
  };
  if (most <= 64) {
    for (u64 snaps = most; snaps >= 2; --snaps)
      if (fits(snaps)) break;
  } else if (!fits(most)) {
    u64 lo = 1, hi = most;  // lo fits (least <= memory_limit), hi does not; fits() sets chosen = lo
    while (hi - lo > 1) {
      const u64 mid = lo + (hi - lo) / 2;
      if (fits(mid)) lo = mid;
      else hi = mid;
    }
  }
  if (chosen == 1 && best.empty()) {
    best = revolve_schedule_for_snaps(chain, 1);
    const SimulationResult check = simulate(chain, best, memory_limit);
    if (!check.valid)
      throw std::logic_error("revolve: the 1-snapshot schedule does not replay within the least budget: " +
                             check.reason);
  }
  if (snaps_used) *snaps_used = chosen;
  return best;
}

}  // namespace rematch
