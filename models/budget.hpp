// The activation budget of a training run, chosen for the user: a number of bytes, a share of the
// memory this process may still use, all of it (`auto`), or the least budget whose predicted
// recompute overhead is at most a bound (read off the time-memory curve, scheduler/curve.hpp).
//
//   models::Budget budget = models::Budget::within_overhead(10);   // --max-overhead 10%
//   models::BudgetChoice choice = models::choose_budget(config, budget);
//   config.memory = choice.bytes;                                 // then TrainingSession(config)
//
// The memory this process may use is the lowest of MemAvailable (/proc/meminfo), the cgroup's
// memory limit less its usage (v2 memory.max, v1 memory.limit_in_bytes) when one is set, and
// RLIMIT_AS less the address space already mapped. From it come off what the run holds besides
// the activations: weights, their gradients, the optimizer state, the data reader's buffers, and a
// margin (a share of the room and a floor) for what the process maps as it runs (thread stacks,
// allocator arenas, JIT code). Kernel scratch is drawn from the activation arena, so it is inside
// the budget the scheduler plans with, not taken off.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/training.hpp"
#include "scheduler/curve.hpp"

namespace rematch::models {

// Nothing is left for activations once the rest of the run is taken off (the message gives every
// figure): `rematch train` exits with status 4, as when memory runs out.
class NoRoom : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Budget {
  enum class Kind { bytes, share, automatic };
  Kind kind = Kind::automatic;
  double value = 1;                   // bytes, or the share in (0, 1]
  std::optional<double> max_overhead_pct;  // pick the least budget on the curve within this overhead

  static Budget of_bytes(double bytes) { return {Kind::bytes, bytes, {}}; }
  static Budget share(double fraction) { return {Kind::share, fraction, {}}; }
  static Budget automatic() { return {}; }
  // Within the memory this process may use (`auto`).
  static Budget within_overhead(double pct) { return {Kind::automatic, 1, pct}; }
};

// "10%" or "10" as a number of percent; throws InputError naming `what` unless it is finite and >= 0.
double parse_percent(const std::string& text, const std::string& what);

// "auto", "60%" (a share of auto), or a size ("2GiB", parsed by `parse_size`).
// Throws InputError naming `what` for a share outside (0, 100].
template <class ParseSize>
Budget parse_budget(const std::string& text, const std::string& what, ParseSize&& parse_size);

// One term of the figure, for people: "MemAvailable 23.0 GiB".
struct BudgetTerm {
  std::string name;
  double bytes = 0;
};

struct MemoryRoom {
  std::vector<BudgetTerm> limits;  // each limit found (MemAvailable, cgroup, RLIMIT_AS)
  double bytes = 0;                // the lowest of them
};
// What this process may still map or fill, read from /proc and /sys now.
MemoryRoom memory_room();

// The optimizer's state for `weights` bytes of weights: Adam's two moments, SGD's momentum, or none.
double optimizer_state_bytes(const autodiff::OptimizerConfig& optimizer, double weights);

// What the planner's tables may take while a run of `config` plans its schedule (at most `cap`):
// half of what this process may still use once the activation budget, the gradients of `weights`
// bytes of weights and the optimizer state are taken off; the other half is left for what the
// process maps beside them meanwhile (profiling, kernel code, thread stacks and arenas).
std::size_t planning_table_budget(const TrainConfig& config, double weights, std::size_t cap);

struct BudgetChoice {
  std::size_t bytes = 0;             // the activation budget
  std::vector<std::string> lines;    // how it was chosen: every term, one per line
  std::optional<Curve> curve;        // when an overhead bound chose it (or `want_curve`)
};

// Throws NoRoom when nothing is left for activations; InfeasibleBudget when no budget within the
// room (or the bytes given) meets the overhead bound (naming the least overhead achievable in it and
// its budget) or the room is below the model's least budget; InputError for a bad budget. `want_curve` computes the curve of the
// profiled model even without an overhead bound.
BudgetChoice choose_budget(const TrainConfig& config, const Budget& budget, bool want_curve = false);

template <class ParseSize>
Budget parse_budget(const std::string& text, const std::string& what, ParseSize&& parse_size) {
  if (text == "auto") return Budget::automatic();
  if (!text.empty() && text.back() == '%') {
    const double pct = parse_percent(text, what);
    if (!(pct > 0 && pct <= 100)) throw InputError(what + " '" + text + "': a share must be a percentage in (0, 100]");
    return Budget::share(pct / 100);
  }
  return Budget::of_bytes(parse_size(text));
}

}  // namespace rematch::models
