#include "tests/reference/state_space.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

#include "tests/reference/graph_check.hpp"

namespace rematch::reference::detail {

StateSpace::StateSpace(const Graph& g) : g_(g) {
  check_graph(g);
  int bit = 0;
  for (const Branch& b : g.branches) {
    const int n = static_cast<int>(b.fw.size());
    const int width = static_cast<int>(std::bit_width(static_cast<unsigned>(n + 1)));
    Layout l{n, bit, bit + n + 1, 0, width};
    l.pos_shift = l.xbar_base + n;
    bit = l.pos_shift + l.pos_width;
    if (bit > 64) throw std::invalid_argument("reference: graph too large for a 64-bit state");
    layout_.push_back(l);
  }
  for (const Layout& l : layout_) {
    const int width = l.pos_shift + l.pos_width - l.x_base;
    field_mask_.push_back(width == 64 ? ~Key{0} : (Key{1} << width) - 1);
  }
  group_identical_branches();
  if (layout_.size() > kMaxCandidates) {
    throw std::invalid_argument("reference: more than 8 branches");
  }
  bit_size_.assign(64, 0.0);
  for (std::size_t j = 0; j < layout_.size(); ++j) {
    const Layout& l = layout_[j];
    const Branch& b = g.branches[j];
    for (int i = 0; i <= l.n; ++i) bit_size_[l.x_base + i] = b.cw[i];
    for (int i = 1; i <= l.n; ++i) bit_size_[l.xbar_base + i - 1] = b.cbw[i];
    pos_mask_ |= ((Key{1} << l.pos_width) - 1) << l.pos_shift;
  }
}

namespace {

bool same_branch(const Branch& a, const Branch& b) {
  return a.fw == b.fw && a.bw == b.bw && a.cw == b.cw && a.cbw == b.cbw && a.ftmp == b.ftmp &&
         a.btmp == b.btmp;
}

}  // namespace

void StateSpace::group_identical_branches() {
  std::vector<bool> grouped(layout_.size(), false);
  for (std::size_t a = 0; a < layout_.size(); ++a) {
    if (grouped[a]) continue;
    std::vector<int> group{static_cast<int>(a)};
    for (std::size_t b = a + 1; b < layout_.size(); ++b) {
      if (!grouped[b] && same_branch(g_.branches[a], g_.branches[b])) {
        grouped[b] = true;
        group.push_back(static_cast<int>(b));
      }
    }
    if (group.size() > 1) identical_groups_.push_back(std::move(group));
  }
}

Key StateSpace::canonical(Key k, int* perm) const {
  if (perm != nullptr) {
    for (int j = 0; j < branches(); ++j) perm[j] = j;
  }
  for (const std::vector<int>& group : identical_groups_) {
    int order[kMaxCandidates];  // order[t]: the branch whose field moves to group[t]
    std::copy(group.begin(), group.end(), order);
    std::stable_sort(order, order + group.size(),
                     [&](int a, int b) { return branch_field(k, a) > branch_field(k, b); });
    Key fields = k;
    for (int j : group) fields &= ~(field_mask_[j] << layout_[j].x_base);
    for (std::size_t t = 0; t < group.size(); ++t) {
      fields |= branch_field(k, order[t]) << layout_[group[t]].x_base;
      if (perm != nullptr) perm[order[t]] = group[t];
    }
    k = fields;
  }
  return k;
}

Key StateSpace::with_pos(Key k, int j, int p) const {
  const Layout& l = layout_[j];
  const Key field = ((Key{1} << l.pos_width) - 1) << l.pos_shift;
  return (k & ~field) | (static_cast<Key>(p) << l.pos_shift);
}

bool StateSpace::valid(Key k) const {
  for (int j = 0; j < branches(); ++j) {
    if (pos(k, j) > layout_[j].n + 1) return false;
  }
  return true;
}

Key StateSpace::initial() const {
  Key k = 0;
  for (int j = 0; j < static_cast<int>(layout_.size()); ++j) {
    k = with_pos(k | x_bit(j, 0), j, layout_[j].n + 1);
  }
  return k;
}

double StateSpace::memory(Key k) const {
  double mem = 0;
  for (Key items = k & ~pos_mask_; items != 0; items &= items - 1) {
    mem += bit_size_[std::countr_zero(items)];
  }
  for (int j = 0; j < static_cast<int>(layout_.size()); ++j) {
    const int p = pos(k, j);
    if (p >= 1 && p <= layout_[j].n) mem += g_.branches[j].cw[p];
  }
  return mem;
}

int StateSpace::drop_candidates(const Op& op, Op* drops, Key* bits) const {
  int count = 0;
  if (op.kind == OpKind::loss) {
    for (int j = 0; j < static_cast<int>(layout_.size()); ++j) {
      const int n = layout_[j].n;
      drops[count] = Op{OpKind::drop_xbar, j, n};
      bits[count++] = xbar_bit(j, n);
    }
    return count;
  }
  const int j = op.branch, i = op.stage;
  if (i == 0) return 0;  // P3: x_0 stays; xbar_0 never exists
  drops[count] = Op{OpKind::drop_x, j, i};
  bits[count++] = x_bit(j, i);
  drops[count] = Op{OpKind::drop_xbar, j, i};
  bits[count++] = xbar_bit(j, i);
  return count;
}

void StateSpace::append_ops(const Move& m, std::vector<Op>& out) const {
  out.push_back(m.op);
  Op drops[kMaxCandidates];
  Key bits[kMaxCandidates];
  const int count = drop_candidates(m.op, drops, bits);
  for (int b = 0; b < count; ++b) {
    if (m.drops & (1U << b)) out.push_back(drops[b]);
  }
}

double StateSpace::remaining_time_bound(Key k) const {
  double t = loss_done(k) ? 0.0 : g_.loss_time;
  for (int j = 0; j < static_cast<int>(layout_.size()); ++j) {
    const Branch& b = g_.branches[j];
    const int pending = std::min(pos(k, j), layout_[j].n);  // B j i still due for i < pending
    for (int i = 0; i < pending; ++i) {
      t += b.bw[i];
      if (!has_xbar(k, j, i + 1)) t += b.fw[i];
    }
  }
  return t;
}

}  // namespace rematch::reference::detail
