// Best-first searches over the memory states of state_space.hpp.
//
// Both searches label a state with (time, peak) of the best path found to it and order the queue
// lexicographically: (time + lower bound, peak) for the makespan search, (peak, time + lower
// bound) for the least-budget search. Both orders are isotone (extending two paths by the same
// move keeps their order, since time adds and peak takes a max) and the time bound is consistent,
// so, as in A*, a state's label is optimal when it is first popped and never needs reopening.
//
// The time bound: for chains, StateSpace::remaining_time_bound. For join graphs under a budget,
// the loss time plus, per branch, the exact cost-to-go of that branch alone (BranchBounds),
// which is larger and still consistent.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <queue>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/reference/exhaustive.hpp"
#include "tests/reference/state_space.hpp"

namespace rematch::reference {
namespace {

using detail::Key;
using detail::Move;
using detail::StateSpace;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

// Sizes are sums of doubles: integer instances stay exact, others get a relative tolerance.
double tolerance(double v) { return 1e-9 * std::max(1.0, std::abs(v)); }

// Which peaks a budget admits: peak <= limit, or peak < limit (to step below a known optimum).
struct Budget {
  double limit = kInf;
  bool strict = false;
  bool admits(double peak) const {
    if (limit == kInf) return true;
    return strict ? peak < limit - tolerance(limit) : peak <= limit + tolerance(limit);
  }
};

struct Node {
  Key key;
  double time;
  double peak;
  double mem;
  double bound;  // lower bound on the remaining time
  std::uint32_t parent;
  Op op;  // the move from parent: an op and its drop mask (see detail::Move)
  std::uint8_t drops;
  bool closed = false;
};

// Open addressing from state key to node index (indices are stable, unlike the nodes' storage).
class NodeTable {
 public:
  explicit NodeTable(std::size_t cap) : cap_(cap), slots_(1024, kNone) {}

  // Index of `key`, or of a new node made by `make()` if the key is unseen.
  template <class Make>
  std::uint32_t find_or_add(Key key, std::vector<Node>& nodes, bool& added, Make&& make) {
    if (2 * (nodes.size() + 1) > slots_.size()) grow(nodes);
    std::size_t s = slot_of(key);
    while (slots_[s] != kNone) {
      if (nodes[slots_[s]].key == key) {
        added = false;
        return slots_[s];
      }
      s = (s + 1) & (slots_.size() - 1);
    }
    if (nodes.size() >= cap_) {
      throw std::runtime_error("reference: more than " + std::to_string(cap_) +
                               " memory states; raise state_cap or shrink the instance");
    }
    added = true;
    slots_[s] = static_cast<std::uint32_t>(nodes.size());
    nodes.push_back(make());
    return slots_[s];
  }

 private:
  std::size_t slot_of(Key key) const {
    key ^= key >> 31;  // splitmix64 finaliser
    key *= 0x7fb5d329728ea185ULL;
    key ^= key >> 27;
    key *= 0x81dadef4bc2dd44dULL;
    key ^= key >> 33;
    return static_cast<std::size_t>(key) & (slots_.size() - 1);
  }
  void grow(const std::vector<Node>& nodes) {
    slots_.assign(slots_.size() * 2, kNone);
    for (std::uint32_t i = 0; i < nodes.size(); ++i) {
      std::size_t s = slot_of(nodes[i].key);
      while (slots_[s] != kNone) s = (s + 1) & (slots_.size() - 1);
      slots_[s] = i;
    }
  }

  std::size_t cap_;
  std::vector<std::uint32_t> slots_;
};

// Per branch j, the least remaining time of branch j's own ops when branch j is scheduled alone,
// found by a backward Dijkstra over the one-branch state space of j. The lone branch gets what
// budget the others cannot be using: before the loss every other branch still holds its x_0 (it
// leaves only with B j' 0, after the loss), and at the loss each also holds its output (x_n or
// xbar_n, at least cw[n]) and produces y_n. Projecting a joint schedule onto branch j's ops (and
// the loss) gives such a lone schedule, so the sum over branches is admissible; every joint move
// projects to a lone move of the same or zero cost, so it is consistent. +infinity marks lone
// states that cannot complete, whose joint states are then skipped.
class BranchBounds {
 public:
  BranchBounds(const Graph& g, const Budget& budget) : loss_time_(g.loss_time) {
    for (int j = 0; j < static_cast<int>(g.branches.size()); ++j) {
      double before_loss = 0, at_loss = 0;
      for (int o = 0; o < static_cast<int>(g.branches.size()); ++o) {
        if (o == j) continue;
        const Branch& b = g.branches[o];
        before_loss += b.cw.front();
        at_loss += b.cw.front() + 2 * b.cw.back();
      }
      Graph alone{{g.branches[j]}, 0.0, g.loss_tmp};
      to_go_.push_back(lone_cost_to_go(alone, budget, before_loss, at_loss));
    }
  }

  double operator()(const StateSpace& space, Key k) const {
    double t = space.loss_done(k) ? 0.0 : loss_time_;
    for (int j = 0; j < space.branches(); ++j) t += to_go_[j][space.branch_field(k, j)];
    return t;
  }

 private:
  static std::vector<double> lone_cost_to_go(const Graph& alone, const Budget& budget,
                                             double before_loss, double at_loss) {
    const StateSpace space(alone);
    const std::size_t count = std::size_t{1} << space.field_width(0);
    std::vector<std::vector<std::pair<Key, double>>> into(count);  // reversed moves
    for (Key k = 0; k < count; ++k) {
      if (!space.valid(k)) continue;
      const double others = space.loss_done(k) ? 0.0 : before_loss;
      space.for_each_move(k, space.memory(k), [&](const Move& m) {
        const double extra = m.op.kind == OpKind::loss ? at_loss : others;
        if (budget.admits(m.peak + extra)) into[m.next].push_back({k, m.cost});
      });
    }
    std::vector<double> to_go(count, kInf);
    using Entry = std::pair<double, Key>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
    for (Key k = 0; k < count; ++k) {
      if (space.valid(k) && space.complete(k)) {
        to_go[k] = 0;
        queue.push({0.0, k});
      }
    }
    while (!queue.empty()) {
      const auto [t, k] = queue.top();
      queue.pop();
      if (t > to_go[k]) continue;
      for (const auto& [from, cost] : into[k]) {
        if (t + cost < to_go[from]) {
          to_go[from] = t + cost;
          queue.push({t + cost, from});
        }
      }
    }
    return to_go;
  }

  double loss_time_;
  std::vector<std::vector<double>> to_go_;
};

enum class Objective { makespan_then_peak, peak_then_makespan };

struct QueueEntry {
  double first, second, time;
  std::uint32_t node;
  // std::priority_queue pops the largest, so "less" means "worse": larger keys, then less time
  // done (preferring deeper states among ties only speeds the search up).
  bool operator<(const QueueEntry& o) const {
    if (first != o.first) return first > o.first;
    if (second != o.second) return second > o.second;
    return time < o.time;
  }
};

class Search {
 public:
  Search(const Graph& g, Objective objective, Budget budget, std::size_t cap)
      : space_(g), objective_(objective), budget_(budget), table_(cap) {
    // For a chain, building the lone bound costs as much as the search it would guide.
    if (objective == Objective::makespan_then_peak && g.branches.size() > 1) {
      bounds_.emplace(g, budget);
    }
  }

  Result run() {
    const Key start = space_.initial();
    const double mem = space_.memory(start);
    if (!budget_.admits(mem)) return {};
    bool added = false;
    table_.find_or_add(start, nodes_, added,
                       [&] { return Node{start, 0, mem, mem, time_bound(start), kNone, {}, 0}; });
    push(0);
    while (!queue_.empty()) {
      const QueueEntry top = queue_.top();
      queue_.pop();
      Node& node = nodes_[top.node];
      if (node.closed || top.time != node.time || !same_second(top, node)) continue;
      node.closed = true;
      if (space_.complete(node.key)) return result_of(top.node);
      expand(top.node);
    }
    return {};
  }

 private:
  bool same_second(const QueueEntry& e, const Node& n) const {
    return objective_ == Objective::makespan_then_peak ? e.second == n.peak
                                                       : e.first == n.peak;
  }

  void push(std::uint32_t i) {
    const Node& n = nodes_[i];
    const double estimate = n.time + n.bound;
    if (objective_ == Objective::makespan_then_peak) {
      queue_.push({estimate, n.peak, n.time, i});
    } else {
      queue_.push({n.peak, estimate, n.time, i});
    }
  }

  bool better(double time, double peak, const Node& n) const {
    if (objective_ == Objective::makespan_then_peak) {
      return time < n.time || (time == n.time && peak < n.peak);
    }
    return peak < n.peak || (peak == n.peak && time < n.time);
  }

  void expand(std::uint32_t from) {
    const Node here = nodes_[from];  // copy: nodes_ may reallocate below
    space_.for_each_move(here.key, here.mem, [&](const Move& m) {
      if (!budget_.admits(m.peak)) return;
      const double time = here.time + m.cost;
      const double peak = std::max(here.peak, m.peak);
      const Key next = space_.canonical(m.next);
      bool added = false;
      const std::uint32_t to = table_.find_or_add(next, nodes_, added, [&] {
        return Node{next, time, peak, space_.memory(next), time_bound(next), from, m.op, m.drops};
      });
      if (nodes_[to].bound == kInf) return;
      if (!added) {
        Node& n = nodes_[to];
        if (n.closed || !better(time, peak, n)) return;
        n.time = time;
        n.peak = peak;
        n.parent = from;
        n.op = m.op;
        n.drops = m.drops;
      }
      push(to);
    });
  }

  // Each stored move is labelled in its parent's canonical branch order; follow the path from the
  // start, tracking which real branch each canonical label stands for.
  Result result_of(std::uint32_t goal) const {
    std::vector<std::uint32_t> path;
    for (std::uint32_t i = goal; nodes_[i].parent != kNone; i = nodes_[i].parent) path.push_back(i);
    Result r{true, nodes_[goal].time, nodes_[goal].peak, {}};
    const int k = space_.branches();
    std::vector<int> real(k), perm(k), next_real(k);  // real[label]: real branch
    for (int j = 0; j < k; ++j) real[j] = j;
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      const Node& child = nodes_[*it];
      const Node& parent = nodes_[child.parent];
      const Move m = replayed_move(parent, child);
      space_.canonical(m.next, perm.data());
      const std::size_t first = r.ops.size();
      space_.append_ops(m, r.ops);
      for (std::size_t o = first; o < r.ops.size(); ++o) {
        if (r.ops[o].kind != OpKind::loss) r.ops[o].branch = real[r.ops[o].branch];
      }
      for (int j = 0; j < k; ++j) next_real[perm[j]] = real[j];
      real.swap(next_real);
    }
    return r;
  }

  // The move from parent to child, with the un-canonicalised successor.
  Move replayed_move(const Node& parent, const Node& child) const {
    Move found{};
    bool ok = false;
    space_.for_each_move(parent.key, parent.mem, [&](const Move& m) {
      if (!ok && m.op == child.op && m.drops == child.drops) {
        found = m;
        ok = true;
      }
    });
    if (!ok || space_.canonical(found.next) != child.key) {
      throw std::logic_error("reference: broken search path");
    }
    return found;
  }

  double time_bound(Key k) const {
    return bounds_ ? (*bounds_)(space_, k) : space_.remaining_time_bound(k);
  }

  StateSpace space_;
  std::optional<BranchBounds> bounds_;
  Objective objective_;
  Budget budget_;
  NodeTable table_;
  std::vector<Node> nodes_;
  std::priority_queue<QueueEntry> queue_;
};

}  // namespace

Result optimal_schedule(const Graph& g, double memory_limit, std::size_t state_cap) {
  return Search(g, Objective::makespan_then_peak, Budget{memory_limit, false}, state_cap).run();
}

double min_feasible_memory(const Graph& g, std::size_t state_cap) {
  // Without a budget, storing everything always completes, so the search always succeeds.
  return Search(g, Objective::peak_then_makespan, Budget{}, state_cap).run().peak;
}

std::vector<Result> optimal_profile(const Graph& g, std::size_t state_cap) {
  // The optimum at budget M is constant on [p, M] where p is the least peak among optimal
  // schedules for M; so step from M = infinity down, each time to budgets strictly below p.
  std::vector<Result> steps;
  Budget budget;
  for (;;) {
    Result r = Search(g, Objective::makespan_then_peak, budget, state_cap).run();
    if (!r.feasible) return steps;
    budget = Budget{r.peak, true};
    steps.push_back(std::move(r));
  }
}

double makespan_at(const std::vector<Result>& profile, double memory_limit) {
  for (const Result& step : profile) {
    if (step.peak <= memory_limit + tolerance(memory_limit)) return step.makespan;
  }
  return kInf;
}

}  // namespace rematch::reference
