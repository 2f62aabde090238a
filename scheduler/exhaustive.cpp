#include "scheduler/exhaustive.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>
#include <vector>

#include "scheduler/cancel.hpp"
#include "scheduler/op_memory.hpp"
#include "scheduler/simulator.hpp"

namespace rematch {

namespace {

// A memory state packed into 64 bits. Branch j owns a contiguous field:
//   bits 0..n      x_0 .. x_n held
//   bits n+1..2n   xbar_1 .. xbar_n held (xbar_0 never exists)
//   bits 2n+1..    pos: n+1 before the loss; afterwards the position of the one gradient held
//                  (y_pos; pos = 0 once y_0 has left: the branch is done).
// One gradient per branch is all the model's ops allow (the loss makes y_n; B i turns y_{i+1} into y_i).
using Key = std::uint64_t;

struct Field {
  int base = 0;      // first bit of the branch's field
  int width = 0;
  int group = 0;     // the first branch with identical arrays: fields of a group may be permuted
};

// What follows each non-drop op: bit 0 drops x_i, bit 1 drops xbar_i (F j i and B j i), or, after
// the loss, bit j drops xbar^j_{n_j}.
struct Move {
  Op op;
  std::uint8_t drops = 0;
  Key next = 0;      // before canonicalisation
  double peak = 0;   // memory while the op runs (its drops only lower it)
  double cost = 0;
};

// The searched state graph. Only moves that some optimal schedule needs are generated; each rule
// keeps at least one optimal schedule (take one with the fewest forwards, then the fewest drops,
// then the earliest drops):
//   - no op produces an item that is already held (drop the input instead, or skip the op);
//   - no op produces a dead item: after B j i nothing at positions > i, nor x_i, is ever read
//     again, so forwards there are skipped (x_i and xbar_{i+1} are freed by B j i itself);
//   - x^j_0 is never dropped and F_none j 0 never runs (B j 0 needs x^j_0, which cannot be remade);
//   - a drop comes right after an op that reads the dropped item's position (F j i or B j i for
//     items at i, the loss for xbar at n_j): an earlier non-drop op that neither reads, produces
//     nor removes the item can run after the drop instead, with a peak no higher; if that op
//     produced the item, the pair is useless. So moves fuse each reading op with its drops.
// Branches with identical arrays are interchangeable: states are kept in a canonical form with
// the fields of each group sorted.
class StateSpace {
 public:
  explicit StateSpace(const Graph& graph) : graph_(graph) {
    int bit = 0;
    for (int j = 0; j < graph.num_branches(); ++j) {
      const int n = graph.branches[j].stages();
      int pos_bits = 1;
      while ((1 << pos_bits) <= n + 1) ++pos_bits;
      fields_.push_back({bit, 2 * n + 1 + pos_bits, graph.first_identical(j)});
      bit += fields_.back().width;
    }
    packs_ = bit <= 64;
    for (int j = 0; j < graph.num_branches(); ++j) {
      std::vector<int> members;
      for (int other = j; other < graph.num_branches(); ++other)
        if (fields_[other].group == j) members.push_back(other);
      if (members.size() > 1) groups_.push_back(std::move(members));
    }
  }

  bool packs() const { return packs_; }

  Key initial() const {
    Key key = 0;
    for (int j = 0; j < branches(); ++j) key = with_pos(key | x_bit(j, 0), j, stages(j) + 1);
    return key;
  }

  bool loss_done(Key key) const { return pos(key, 0) <= stages(0); }

  bool complete(Key key) const {
    for (int j = 0; j < branches(); ++j)
      if (pos(key, j) != 0) return false;
    return true;
  }

  double memory(Key key) const {
    double mem = 0;
    const bool after = loss_done(key);
    for (int j = 0; j < branches(); ++j) {
      const Branch& b = graph_.branches[j];
      for (int i = 0; i <= stages(j); ++i) {
        if (key & x_bit(j, i)) mem += b.cw[i];
        if (i > 0 && (key & xbar_bit(j, i))) mem += b.cbw[i];
      }
      if (const int p = pos(key, j); after && p > 0) mem += b.cw[p];
    }
    return mem;
  }

  // Time still needed at least: the loss if it has not run, every pending backward, and a taped
  // forward for each pending B i whose xbar_{i+1} is not held. Consistent (no move lowers it by
  // more than its own cost), so A* settles states at their least time.
  double time_bound(Key key) const {
    const bool after = loss_done(key);
    double bound = after ? 0.0 : graph_.loss.time;
    for (int j = 0; j < branches(); ++j) {
      const Branch& b = graph_.branches[j];
      const int pending = after ? pos(key, j) : stages(j);
      for (int i = 0; i < pending; ++i) bound += b.bw[i] + ((key & xbar_bit(j, i + 1)) ? 0.0 : b.fw[i]);
    }
    return bound;
  }

  // Sorts the fields of identical branches (descending); order[c] is the branch whose field
  // lands at c.
  Key canonical(Key key, std::vector<int>* order = nullptr) const {
    if (order) {
      order->resize(branches());
      for (int j = 0; j < branches(); ++j) (*order)[j] = j;
    }
    for (const std::vector<int>& members : groups_) {
      std::array<std::pair<Key, int>, 64> values;  // a branch takes >= 5 bits: at most 12 fit
      for (std::size_t c = 0; c < members.size(); ++c) values[c] = {field(key, members[c]), members[c]};
      std::stable_sort(values.begin(), values.begin() + members.size(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      for (std::size_t c = 0; c < members.size(); ++c) {
        key = with_field(key, members[c], values[c].first);
        if (order) (*order)[members[c]] = values[c].second;
      }
    }
    return key;
  }

  template <class Visit>
  void moves(Key key, Visit&& visit) const {
    const double mem = memory(key);
    const bool after = loss_done(key);
    for (int j = 0; j < branches(); ++j) {
      const Branch& b = graph_.branches[j];
      const int n = stages(j);
      const int p = pos(key, j);
      if (after && p == 0) continue;
      const int top = after ? p : n + 1;  // positions >= top are dead; so is x_top after the loss
      for (int i = 0; i < n && i + 1 <= top; ++i) {
        const bool has_x = key & x_bit(j, i), has_xbar = i > 0 && (key & xbar_bit(j, i));
        if (!has_x && !has_xbar) continue;
        // Items at position i the op may be followed by dropping (never x_0).
        const Key both = (i > 0 && has_x ? x_bit(j, i) : 0) | (has_xbar ? xbar_bit(j, i) : 0);
        if (!(key & xbar_bit(j, i + 1)))
          with_drops(visit, Op::f_all(j, i), key | xbar_bit(j, i + 1),
                     peak_while(mem, stage_op_memory(b, OpKind::F_all, i)), b.fw[i], j, i, both);
        if (i + 1 < top && !(key & x_bit(j, i + 1))) {
          const double peak = peak_while(mem, stage_op_memory(b, OpKind::F_ck, i));  // F_none's too
          // F_ck then dropping the input F_none would remove is F_none: only the other item.
          const Key other = has_x && has_xbar ? xbar_bit(j, i) : 0;
          with_drops(visit, Op::f_ck(j, i), key | x_bit(j, i + 1), peak, b.fw[i], j, i, other);
          if (i > 0) {
            const Key consumed = has_x ? x_bit(j, i) : xbar_bit(j, i);
            with_drops(visit, Op::f_none(j, i), (key | x_bit(j, i + 1)) & ~consumed, peak, b.fw[i], j, i, other);
          }
        }
      }
      if (after && (key & xbar_bit(j, p))) {
        const int i = p - 1;
        const bool has_xbar = i > 0 && (key & xbar_bit(j, i));
        if ((key & x_bit(j, i)) || has_xbar) {
          const Key next = with_pos(key & ~xbar_bit(j, p) & ~x_bit(j, i), j, i);
          with_drops(visit, Op::b(j, i), next, peak_while(mem, stage_op_memory(b, OpKind::B, i)), b.bw[i], j, i,
                     has_xbar ? xbar_bit(j, i) : 0);
        }
      }
    }
    if (!after) {
      Key next = key;
      std::uint8_t droppable = 0;
      for (int j = 0; j < branches(); ++j) {
        const int n = stages(j);
        if (!(key & (x_bit(j, n) | xbar_bit(j, n)))) return;
        next = with_pos(next & ~x_bit(j, n), j, n);
        if (key & xbar_bit(j, n)) droppable |= std::uint8_t(1u << j);
      }
      const double peak = peak_while(mem, loss_memory(graph_));
      // Every subset of the held outputs' xbars may be dropped (submask enumeration).
      for (unsigned drops = droppable;; drops = (drops - 1) & droppable) {
        Key dropped = next;
        for (int j = 0; j < branches(); ++j)
          if (drops & (1u << j)) dropped &= ~xbar_bit(j, stages(j));
        visit(Move{Op::loss_op(), std::uint8_t(drops), dropped, peak, graph_.loss.time});
        if (drops == 0) break;
      }
    }
  }

  // The drop ops a move fuses after its op.
  void drop_ops(const Move& move, Schedule& out) const {
    if (move.op.kind == OpKind::loss) {
      for (int j = 0; j < branches(); ++j)
        if (move.drops & (1u << j)) out.push_back(Op::drop(Item::xbar, j, stages(j)));
      return;
    }
    if (move.drops & 1) out.push_back(Op::drop(Item::x, move.op.branch, move.op.stage));
    if (move.drops & 2) out.push_back(Op::drop(Item::xbar, move.op.branch, move.op.stage));
  }

  int branches() const { return static_cast<int>(fields_.size()); }

 private:
  int stages(int j) const { return graph_.branches[j].stages(); }
  Key x_bit(int j, int i) const { return Key{1} << (fields_[j].base + i); }
  Key xbar_bit(int j, int i) const { return Key{1} << (fields_[j].base + stages(j) + i); }
  int pos_shift(int j) const { return fields_[j].base + 2 * stages(j) + 1; }
  Key field_mask(int j) const {
    return (fields_[j].width == 64 ? ~Key{0} : (Key{1} << fields_[j].width) - 1) << fields_[j].base;
  }
  int pos(Key key, int j) const {
    return static_cast<int>((key & field_mask(j)) >> pos_shift(j));
  }
  Key with_pos(Key key, int j, int p) const {
    const Key pos_mask = field_mask(j) & ~((Key{1} << pos_shift(j)) - 1);
    return (key & ~pos_mask) | (Key(p) << pos_shift(j));
  }
  Key field(Key key, int j) const { return (key & field_mask(j)) >> fields_[j].base; }
  Key with_field(Key key, int j, Key value) const {
    return (key & ~field_mask(j)) | (value << fields_[j].base);
  }

  // The op alone, then the op followed by each non-empty subset of the droppable items.
  template <class Visit>
  void with_drops(Visit& visit, const Op& op, Key next, double peak, double cost, int j, int i, Key droppable) const {
    visit(Move{op, 0, next, peak, cost});
    const Key x = droppable & x_bit(j, i), xbar = i > 0 ? droppable & xbar_bit(j, i) : 0;
    if (x) visit(Move{op, 1, next & ~x, peak, cost});
    if (xbar) visit(Move{op, 2, next & ~xbar, peak, cost});
    if (x && xbar) visit(Move{op, 3, next & ~x & ~xbar, peak, cost});
  }

  const Graph& graph_;
  std::vector<Field> fields_;
  std::vector<std::vector<int>> groups_;  // identical branches, two or more
  bool packs_ = false;
};

// The move that led to a node, in its parent's canonical branch numbering (kept small: a search
// may hold millions of nodes).
struct Step {
  std::uint8_t kind = 0, drops = 0, branch = 0, stage = 0;
  static Step of(const Move& move) {
    return {static_cast<std::uint8_t>(move.op.kind), move.drops, static_cast<std::uint8_t>(move.op.branch),
            static_cast<std::uint8_t>(move.op.stage)};
  }
  bool is(const Move& move) const {
    const Step other = of(move);
    return kind == other.kind && drops == other.drops && branch == other.branch && stage == other.stage;
  }
};

// Node id of each state: open addressing with linear probing (a node-based map spends most of
// the search in cache misses).
class StateIndex {
 public:
  StateIndex() : slots_(1 << 12) {}

  // The id stored for `key`, or `fresh` after storing it; the bool tells which.
  std::pair<std::uint32_t, bool> find_or_insert(Key key, std::uint32_t fresh) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    Slot& slot = probe(key);
    if (slot.id != empty) return {slot.id, false};
    slot = {key, fresh};
    ++size_;
    return {fresh, true};
  }

 private:
  static constexpr std::uint32_t empty = ~std::uint32_t{0};
  struct Slot {
    Key key = 0;
    std::uint32_t id = empty;
  };

  Slot& probe(Key key) {
    const std::size_t mask = slots_.size() - 1;
    // splitmix64's finaliser: state keys differ in few, clustered bits.
    Key h = key + 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    for (std::size_t at = h & mask;; at = (at + 1) & mask)
      if (slots_[at].id == empty || slots_[at].key == key) return slots_[at];
  }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& slot : old)
      if (slot.id != empty) probe(slot.key) = slot;
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

struct Node {
  Key key;
  double label;  // of the best path found so far
  double bound;  // heuristic part of the priority
  std::uint32_t parent;
  Step step;
};

// Rebuilds the real op sequence: moves are stored in canonical numbering, so the permutation from
// canonical to real branches is followed along the path.
Schedule unfold(const StateSpace& space, const std::vector<Node>& nodes, std::uint32_t goal) {
  std::vector<std::uint32_t> path;
  for (std::uint32_t id = goal; id != 0; id = nodes[id].parent) path.push_back(id);
  std::reverse(path.begin(), path.end());
  std::vector<int> real(space.branches()), order;
  for (int j = 0; j < space.branches(); ++j) real[j] = j;
  Schedule ops;
  for (const std::uint32_t id : path) {
    Move move;
    space.moves(nodes[nodes[id].parent].key, [&](const Move& candidate) {
      if (nodes[id].step.is(candidate)) move = candidate;
    });
    Schedule step{move.op};
    space.drop_ops(move, step);
    for (Op& op : step) {
      if (op.kind != OpKind::loss) op.branch = real[op.branch];
      ops.push_back(op);
    }
    space.canonical(move.next, &order);
    std::vector<int> next_real(real.size());
    for (std::size_t c = 0; c < real.size(); ++c) next_real[c] = real[order[c]];
    real = std::move(next_real);
  }
  return ops;
}

// Best-first search where a path's label is combined move by move by `extend` (monotone, so the
// first complete state settled is optimal); `heuristic` must be consistent.
// Paths whose label plus bound exceeds `ceiling` are pruned.
template <class Extend, class Heuristic>
ExhaustiveResult search(const StateSpace& space, std::size_t state_cap, double initial_label, double ceiling,
                        Extend extend, Heuristic heuristic) {
  ExhaustiveResult result;
  std::vector<Node> nodes;
  StateIndex index;
  // Ties go to the larger label (the deeper path), which reaches a complete state sooner.
  struct Entry {
    double priority, label;
    std::uint32_t id;
    bool operator>(const Entry& other) const {
      return priority != other.priority ? priority > other.priority : label < other.label;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  std::vector<char> settled;

  const Key start = space.initial();
  nodes.push_back({start, initial_label, heuristic(start), 0, Step{}});
  index.find_or_insert(start, 0);
  settled.push_back(0);
  queue.push({initial_label + nodes[0].bound, initial_label, 0});
  const CancelPoint cancel = CancelPoint::current();
  for (std::size_t popped = 0; !queue.empty(); ++popped) {
    if (popped % 4096 == 0) cancel.check();
    const Entry top = queue.top();
    queue.pop();
    const std::uint32_t id = top.id;
    if (settled[id] || top.label != nodes[id].label) continue;
    settled[id] = 1;
    const double label = nodes[id].label;
    const Key key = nodes[id].key;
    if (space.complete(key)) {
      result.finished = result.feasible = true;
      result.value = label;
      result.ops = unfold(space, nodes, id);
      return result;
    }
    bool capped = false;
    space.moves(key, [&](const Move& move) {
      if (capped) return;
      const double next_label = extend(label, move);
      if (!(next_label < std::numeric_limits<double>::infinity())) return;
      const Key next = space.canonical(move.next);
      const double bound = heuristic(next);
      if (next_label + bound > ceiling) return;
      const auto [known_id, inserted] = index.find_or_insert(next, static_cast<std::uint32_t>(nodes.size()));
      if (inserted) {
        if (nodes.size() >= state_cap) {
          capped = true;
          return;
        }
        nodes.push_back({next, next_label, bound, id, Step::of(move)});
        settled.push_back(0);
        queue.push({next_label + bound, next_label, known_id});
      } else if (Node& known = nodes[known_id]; !settled[known_id] && next_label < known.label) {
        known.label = next_label;
        known.parent = id;
        known.step = Step::of(move);
        queue.push({next_label + known.bound, next_label, known_id});
      }
    });
    if (capped) return result;  // unfinished: nothing is known
  }
  result.finished = true;  // every state within the bounds explored: none is complete
  return result;
}

// Only schedules better than `bound` by more than floating-point noise are searched.
double strictly_below(double bound) {
  return std::isfinite(bound) ? bound - 1e-9 * std::max(1.0, std::abs(bound)) : bound;
}

}  // namespace

bool exhaustive_applies(const Graph& graph) { return StateSpace(graph).packs(); }

ExhaustiveResult exhaustive_optimum(const Graph& graph, double memory_limit, std::size_t state_cap,
                                    double better_than) {
  const StateSpace space(graph);
  if (!space.packs()) return {};
  if (exceeds(graph.initial_memory(), memory_limit)) return {true, false, 0, {}};
  return search(
      space, state_cap, 0.0, strictly_below(better_than),
      [memory_limit](double label, const Move& move) {
        return exceeds(move.peak, memory_limit) ? std::numeric_limits<double>::infinity() : label + move.cost;
      },
      [&space](Key key) { return space.time_bound(key); });
}

ExhaustiveResult exhaustive_min_memory(const Graph& graph, std::size_t state_cap, double at_most) {
  const StateSpace space(graph);
  if (!space.packs()) return {};
  return search(
      space, state_cap, graph.initial_memory(), std::numeric_limits<double>::infinity(),
      [at_most](double label, const Move& move) {
        return exceeds(move.peak, at_most) ? std::numeric_limits<double>::infinity() : std::max(label, move.peak);
      },
      [](Key) { return 0.0; });
}

}  // namespace rematch
