// Internal: the memory-state graph searched by exhaustive.cpp.
//
// A state is the set of items held plus each branch's backward progress, packed into 64 bits:
//   - one bit per x^j_i (0 <= i <= n_j) and per xbar^j_i (1 <= i <= n_j; xbar_0 never exists),
//   - per branch a field pos_j: n_j + 1 before the loss; afterwards the index of the last gradient
//     produced (y^j_pos is held when pos >= 1; pos = 0 means y^j_0 was produced: branch complete).
// The loss has run iff pos_j <= n_j (the loss sets every pos_j to n_j at once), so no extra flag.
//
// Pruning. Each rule only removes moves that some optimal schedule never needs. Among the optimal
// complete valid schedules take one with fewest forwards, then fewest drops, then least total
// lateness of its drops (sum of their indices); it obeys every rule below, so it lies in the
// searched space:
//   P1. No op produces an item already held. Memory is a set, so deleting an F_all/F_ck that does
//       leaves every state equal and removes a cost and a peak; an F_none that does is replaced by
//       a drop of its input (same resulting state): either way one forward fewer.
//   P2. No op produces a dead item. After B j i (pos_j = i), items at positions > i and x^j_i
//       have no further use: every op that reads them (F at stage >= i, B j i' for i' >= i, the
//       loss) has run or only produces dead items. Delete such an F_all/F_ck (and any later drop
//       of its output), or replace such an F_none by a drop of its input: one forward fewer.
//       Hence dead items never exist: the loss frees x^j_n, B j i frees x^j_i and xbar^j_{i+1},
//       and x^j_{i+1} was already dead before B j i.
//   P3. x^j_0 is never dropped and F_none j 0 never runs: B j 0 needs x^j_0 (xbar^j_0 never
//       exists) and x^j_0 cannot be recreated, so either makes completion impossible.
//   P4. A drop of an item at position (j, i) comes right after an op that reads that position
//       (F j i of any kind, B j i, or the loss when i = n_j), possibly after other such drops.
//       Otherwise let o be the last non-drop op before the drop. If o produced the item, o and
//       the drop form a useless pair: delete both (F_all/F_ck) or turn F_none into a drop of its
//       input: one forward fewer. Else o neither reads, produces nor removes the item (the ops
//       that remove an item at (j, i) all read position i, including B j i-1, after which no item
//       at i is held), so moving the drop before o keeps every requirement and effect and can
//       only lower o's peak: less lateness.
//       The search therefore fuses each reading op with each subset of the drops it permits.
// Nothing else is pruned.
//
// Symmetry: branches with identical arrays are interchangeable (same costs, sizes and lower
// bound), so states equal up to a permutation of identical branches have the same cost-to-go.
// The search stores one canonical representative per class (identical branches' fields sorted).
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "tests/reference/exhaustive.hpp"

namespace rematch::reference::detail {

using Key = std::uint64_t;

// A non-drop op, then the drops of P4 that follow it: bit b of `drops` drops the b-th of the
// op's drop candidates (x_i and xbar_i for F j i and B j i; xbar^j_{n_j} for each j after loss).
struct Move {
  Op op;
  Key next;     // after the op and its drops
  double peak;  // memory while the op runs (its drops only lower the memory)
  double cost;  // its time
  std::uint8_t drops = 0;
};

class StateSpace {
 public:
  explicit StateSpace(const Graph& g);  // throws std::invalid_argument if a state needs > 64 bits

  Key initial() const;
  bool complete(Key k) const { return (k & pos_mask_) == 0; }  // every y^j_0 produced
  double memory(Key k) const;
  // Admissible and consistent lower bound on the remaining time: every pending B j i costs bw[i],
  // and needs xbar^j_{i+1}, so one F_all j i (distinct per i) is still due if that item is absent.
  double remaining_time_bound(Key k) const;

  template <class Visit>
  void for_each_move(Key k, double mem, Visit&& visit) const;

  // The op followed by its drops, as a schedule fragment.
  void append_ops(const Move& m, std::vector<Op>& out) const;

  // Representative of k's symmetry class; if perm is given, perm[j] receives the branch that
  // branch j becomes (perm has branches() entries).
  Key canonical(Key k, int* perm = nullptr) const;
  int branches() const { return static_cast<int>(layout_.size()); }
  bool loss_done(Key k) const { return pos(k, 0) <= layout_[0].n; }
  // Each branch's fields are contiguous (x bits, xbar bits, pos): the field of branch j, shifted
  // down, is the key of the same state in the one-branch space of branch j alone.
  Key branch_field(Key k, int j) const { return (k >> layout_[j].x_base) & field_mask_[j]; }
  int field_width(int j) const { return std::popcount(field_mask_[j]); }
  // Whether k is a state at all (every pos field within [0, n_j + 1]).
  bool valid(Key k) const;

 private:
  struct Layout {
    int n;
    int x_base;     // bit of x_i is x_base + i
    int xbar_base;  // bit of xbar_i is xbar_base + i - 1
    int pos_shift;
    int pos_width;
  };

  bool has_x(Key k, int j, int i) const { return (k >> (layout_[j].x_base + i)) & 1U; }
  bool has_xbar(Key k, int j, int i) const {
    return i >= 1 && ((k >> (layout_[j].xbar_base + i - 1)) & 1U);
  }
  Key x_bit(int j, int i) const { return Key{1} << (layout_[j].x_base + i); }
  Key xbar_bit(int j, int i) const { return Key{1} << (layout_[j].xbar_base + i - 1); }
  int pos(Key k, int j) const {
    return static_cast<int>((k >> layout_[j].pos_shift) & ((Key{1} << layout_[j].pos_width) - 1));
  }
  Key with_pos(Key k, int j, int p) const;
  void group_identical_branches();
  template <class Visit>
  void forward_moves(Key k, double mem, int j, Visit& visit) const;
  template <class Visit>
  void backward_move(Key k, double mem, int j, Visit& visit) const;
  static constexpr int kMaxCandidates = 8;
  // The drops P4 allows right after `op` (when their item is held), as ops and state bits.
  int drop_candidates(const Op& op, Op* drops, Key* bits) const;
  template <class Visit>
  void with_drops(Move m, Visit& visit) const;
  template <class Visit>
  void loss_move(Key k, double mem, Visit& visit) const;

  const Graph& g_;
  std::vector<Layout> layout_;
  std::vector<Key> field_mask_;
  std::vector<std::vector<int>> identical_groups_;  // groups of >= 2 identical branches
  Key pos_mask_ = 0;  // every pos field
  std::vector<double> bit_size_;  // size of the item behind each x / xbar bit
};

template <class Visit>
void StateSpace::for_each_move(Key k, double mem, Visit&& visit) const {
  for (int j = 0; j < static_cast<int>(layout_.size()); ++j) {
    forward_moves(k, mem, j, visit);
    backward_move(k, mem, j, visit);
  }
  loss_move(k, mem, visit);
}

template <class Visit>
void StateSpace::forward_moves(Key k, double mem, int j, Visit& visit) const {
  const Branch& b = g_.branches[j];
  const int n = layout_[j].n;
  const bool after_loss = loss_done(k);
  const int p = pos(k, j);
  for (int i = 0; i < n; ++i) {
    const bool from_x = has_x(k, j, i);
    if (!from_x && !has_xbar(k, j, i)) continue;
    const int q = i + 1;
    // P2: after the loss, outputs beyond pos_j are dead, and so is a plain x at pos_j.
    const bool xbar_dead = after_loss && q > p;
    const bool x_dead = after_loss && q >= p;
    if (!has_xbar(k, j, q) && !xbar_dead) {  // P1
      with_drops(Move{{OpKind::F_all, j, i}, k | xbar_bit(j, q), mem + b.cbw[q] + b.ftmp[i], b.fw[i]},
                 visit);
    }
    if (has_x(k, j, q) || x_dead) continue;  // P1, P2
    const Key produced = k | x_bit(j, q);
    const double peak = mem + b.cw[q] + b.ftmp[i];
    with_drops(Move{{OpKind::F_ck, j, i}, produced, peak, b.fw[i]}, visit);
    if (i == 0) continue;  // P3
    const Key freed = from_x ? x_bit(j, i) : xbar_bit(j, i);
    with_drops(Move{{OpKind::F_none, j, i}, produced & ~freed, peak, b.fw[i]}, visit);
  }
}

template <class Visit>
void StateSpace::backward_move(Key k, double mem, int j, Visit& visit) const {
  if (!loss_done(k)) return;
  const int p = pos(k, j);  // y^j_p is held iff p >= 1
  if (p == 0) return;
  const int i = p - 1;
  if (!has_xbar(k, j, p)) return;
  if (!has_x(k, j, i) && !has_xbar(k, j, i)) return;
  const Branch& b = g_.branches[j];
  const Key next = with_pos(k & ~xbar_bit(j, p) & ~x_bit(j, i), j, i);
  with_drops(Move{{OpKind::B, j, i}, next, mem + b.cw[i] + b.btmp[i], b.bw[i]}, visit);
}

template <class Visit>
void StateSpace::with_drops(Move m, Visit& visit) const {
  Op drops[kMaxCandidates];
  Key bits[kMaxCandidates];
  const int count = drop_candidates(m.op, drops, bits);
  Key held = 0;  // bitmask over candidates whose item is held after the op
  for (int b = 0; b < count; ++b) {
    if (m.next & bits[b]) held |= Key{1} << b;
  }
  const Key after = m.next;
  for (unsigned subset = 0; subset < (1U << count); ++subset) {
    if (subset & ~held) continue;
    m.next = after;
    for (int b = 0; b < count; ++b) {
      if (subset & (1U << b)) m.next &= ~bits[b];
    }
    m.drops = static_cast<std::uint8_t>(subset);
    visit(m);
  }
}

template <class Visit>
void StateSpace::loss_move(Key k, double mem, Visit& visit) const {
  if (loss_done(k)) return;
  Key next = k;
  double outputs = 0;
  for (int j = 0; j < static_cast<int>(layout_.size()); ++j) {
    const int n = layout_[j].n;
    if (!has_x(k, j, n) && !has_xbar(k, j, n)) return;
    outputs += g_.branches[j].cw[n];
    next = with_pos(next & ~x_bit(j, n), j, n);
  }
  with_drops(Move{{OpKind::loss, 0, 0}, next, mem + outputs + g_.loss_tmp, g_.loss_time}, visit);
}

}  // namespace rematch::reference::detail
