// Independent exhaustive reference for the scheduling model of docs/model.md.
//
// Written from the model only, sharing no code with scheduler/: tests use it to check the solvers
// and the simulator. Everything here is exact over ALL op sequences (drops included) and meant for
// small instances only (a state is packed into 64 bits; larger graphs throw std::invalid_argument).
#pragma once

#include <cstddef>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace rematch::reference {

// One branch, rotor's names: fw, bw, ftmp, btmp have n entries; cw, cbw have n + 1.
struct Branch {
  std::vector<double> fw, bw, cw, cbw, ftmp, btmp;
};

// A join graph; a chain is a graph with one branch.
struct Graph {
  std::vector<Branch> branches;
  double loss_time = 0, loss_tmp = 0;
};

enum class OpKind { F_all, F_ck, F_none, loss, B, drop_x, drop_xbar };

// For F_* and B, `stage` is the stage i; for drops it is the position i of x_i / xbar_i.
struct Op {
  OpKind kind;
  int branch = 0;
  int stage = 0;
  friend bool operator==(const Op&, const Op&) = default;
};

struct Result {
  bool feasible = false;
  double makespan = 0;
  double peak = 0;
  std::vector<Op> ops;
};

// Least-makespan complete valid schedule for budget `memory_limit`, over all op sequences; among
// schedules of that makespan, one of least peak. feasible=false if none exists. Throws
// std::runtime_error if more than `state_cap` distinct memory states would be stored.
Result optimal_schedule(const Graph& g, double memory_limit, std::size_t state_cap = 20'000'000);

// Least budget for which a complete valid schedule exists (a bottleneck search over states).
double min_feasible_memory(const Graph& g, std::size_t state_cap = 20'000'000);

// The optimum for every budget at once. Entry k is an optimal schedule for every budget M in
// [steps[k].peak, steps[k-1].peak) (steps[-1].peak = +infinity): peaks strictly decrease,
// makespans strictly increase, and the last peak is the least feasible budget.
std::vector<Result> optimal_profile(const Graph& g, std::size_t state_cap = 20'000'000);

// Optimal makespan at budget M read off a profile; +infinity when M is below every step.
double makespan_at(const std::vector<Result>& profile, double memory_limit);

// Why replay rejected a schedule: `index` is the 0-based op index (ops.size() for an incomplete
// schedule) and `rule` a short code: bad_op, missing_input, x0_lost, before_loss, loss_repeated,
// missing_gradient, missing_xbar, not_held, over_budget, incomplete.
class ReplayError : public std::runtime_error {
 public:
  ReplayError(std::size_t index, std::string rule, const std::string& what);
  std::size_t index;
  std::string rule;
};

// Replays `ops` under docs/model.md#memory-and-operations and returns makespan and peak (ops copied), or throws
// ReplayError. Producing an item already held is allowed and leaves it held once (memory is a set
// of items); the op's peak is still mem + the output's size + tmp, as the model table says.
Result replay(const Graph& g, const std::vector<Op>& ops, double memory_limit);

// Random small instances with integer sizes and times: cw in [1, max_size], cbw[i] = cw[i] + [0,
// max_size] (i >= 1), fw/bw in [1, max_time], ftmp/btmp in [0, max_tmp], loss time in
// [0, max_time], loss tmp in [0, max_tmp]; each branch has [min_stages, max_stages] stages.
struct RandomSpec {
  int min_stages = 1, max_stages = 6;
  int max_size = 6, max_time = 9, max_tmp = 2;
};
Graph random_chain(std::mt19937_64& rng, const RandomSpec& spec);
Graph random_join(std::mt19937_64& rng, int branches, bool identical, const RandomSpec& spec);

// A chain in rotor's layout (bw and btmp have L + 1 entries; the last is the loss's).
Graph chain_from_rotor(std::vector<double> fw, std::vector<double> bw, std::vector<double> cw,
                       std::vector<double> cbw, std::vector<double> ftmp, std::vector<double> btmp);

// "F_all 0 3", "loss", "B 1 2", "drop x 0 1", "drop xbar 0 2" (branch, then stage).
std::string to_string(const Op& op);

// Sum of every forward, the loss and every backward: the makespan with no recomputation.
double store_all_makespan(const Graph& g);

}  // namespace rematch::reference
