#include "scheduler/chain_dp.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

#if defined(__AVX__)
#include <immintrin.h>

#include "scheduler/cancel.hpp"
#endif

namespace rematch {

template <class Size>
DpChain<Size> make_dp_chain(const Graph& graph, int branch, double slot, DpClass kind) {
  const Branch& b = graph.branches[branch];
  const int n = b.stages();
  auto size = [slot](double value) -> Size {
    if constexpr (std::is_integral_v<Size>) {
      // Round up so that a schedule valid in slots is valid in the original units; the tiny
      // tolerance keeps exact multiples of the slot from being bumped up by division noise.
      return static_cast<Size>(std::ceil(value / slot - 1e-9));
    } else {
      return value;
    }
  };
  DpChain<Size> chain;
  chain.stages = n + 1;
  chain.kind = kind;
  chain.fw.assign(b.fw.begin(), b.fw.end());
  chain.fw.push_back(0);
  chain.bw.assign(b.bw.begin(), b.bw.end());
  chain.bw.push_back(graph.loss.time);
  for (int s = 0; s < n; ++s) {
    chain.ftmp.push_back(size(b.ftmp[s]));
    chain.btmp.push_back(size(b.btmp[s]));
  }
  chain.ftmp.push_back(0);
  chain.btmp.push_back(size(graph.loss.tmp));
  for (int p = 0; p <= n; ++p) {
    chain.x.push_back(size(b.cw[p]));
    chain.xb.push_back(size(b.cbw[p]));
  }
  chain.x.push_back(0);
  chain.xb.push_back(0);
  return chain;
}

template DpChain<int> make_dp_chain<int>(const Graph&, int, double, DpClass);
template DpChain<double> make_dp_chain<double>(const Graph&, int, double, DpClass);

RowLayout RowLayout::of(DpClass kind) {
  RowLayout layout;
  layout.alias_xbar_full = true;
  if (kind == DpClass::persistent) {
    layout.per_pair = 0;
    for (int m = 0; m < Mode::count; ++m) layout.slot[m] = m % 3 == 0 ? layout.per_pair++ : -1;
  }
  return layout;
}

namespace {

struct Ref {
  int i = 0, l = 0;
  Mode mode;
};

enum class Step {
  backward,          // start G, i == l: B_i
  taped_backward,    // start N, i == l: F_all i, B_i
  taped_drop,        // start N, i == l: F_all i, drop the input (end early)
  forward_keep,      // forward to a checkpoint at j, input kept; child (j, l), then continuation (i, .)
  forward_consume,   // forward to j = i + 1 consuming the input; child (i + 1, l) ends full
  inner_problem,     // i == l == loss stage of a nested chain: the inner branch's whole problem
};

template <class Size>
struct Option {
  Step step = Step::backward;
  double cost = 0;
  Size peak = 0;  // least budget of this step's own ops
  int j = 0;
  bool to_xbar = false;
  bool has_child = false, has_cont = false;
  Ref child, cont;  // child at budget - shift, continuation at budget
  Size shift = 0;
  Input inner_kind = Input::x;  // inner_problem: which inner problem (by the kind of x_n held)
};

template <class Size>
Size input_size(const DpChain<Size>& c, int i, Input in) {
  return in == Input::x ? c.x[i] : c.xb[i];
}

// Every way each mode of sub-problem (i, l) can proceed: visit(mode, option) in a fixed order,
// the forward checkpoint j outermost so that the table rows one j touches are reused by all modes
// while they are in cache. Options of one mode come in the same order for the tables and emit().
// Forward from the input at i to a checkpoint at j, keeping the input: the peak (over the base)
// of reaching x_j by F_ck i then F_none, of making xbar_j instead (F_all j-1, drop x_{j-1}), and
// the forward time so far. advance(j) moves the checkpoint from j - 1 to j.
template <class Size>
struct ForwardRun {
  const DpChain<Size>& c;
  int i;
  Size to_x = 0, to_xbar = 0;
  double time = 0;
  void advance(int j) {
    const Size below = j - 1 == i ? Size{0} : c.x[j - 1];
    to_xbar = std::max(to_x, below + c.xb[j] + c.ftmp[j - 1]);
    to_x = std::max(to_x, below + c.x[j] + c.ftmp[j - 1]);
    time += c.fw[j - 1];
  }
};

template <class Size, class Visit>
void for_each_option(const DpChain<Size>& c, int i, int l, Visit&& visit) {
  const bool persistent = c.kind == DpClass::persistent;
  const int ends = persistent ? 1 : 3;  // End::full first
  auto for_each_mode = [i, ends](auto&& body) {
    for (Input in : {Input::x, Input::xbar}) {
      if (in == Input::xbar && i == 0) continue;  // x_0 is data: never an xbar
      for (Start start : {Start::none, Start::grad_bar})
        for (int end = 0; end < ends; ++end) body(Mode{in, start, static_cast<End>(end)});
    }
  };
  // Ops of sub-problems that contain the loss stage run before it, beside the inner inputs.
  const Size before_loss = l == c.stages - 1 ? c.pre_loss_extra : Size{0};
  auto base_of = [&](Mode m) {
    return input_size(c, i, m.in) + c.x[l + 1] + (m.start == Start::grad_bar ? c.xb[l + 1] : Size{0}) +
           before_loss;
  };

  if (i == l) {
    for_each_mode([&](Mode m) {
      Option<Size> o;
      const Size base = base_of(m);
      if (c.inner_loss && i == c.stages - 1 && m.end == End::full) {
        o.step = Step::inner_problem;
        o.peak = base;
        o.has_child = true;
        o.inner_kind = m.in;
        o.shift = c.loss_reserve[static_cast<int>(m.in)];
      } else if (m.start == Start::grad_bar) {
        if (m.end != End::full) return;
        o.step = Step::backward;
        o.cost = c.bw[i];
        o.peak = base + c.x[i] + c.btmp[i];
      } else if (m.end == End::full) {
        o.step = Step::taped_backward;
        o.cost = c.fw[i] + c.bw[i];
        o.peak = base + c.xb[i + 1] + std::max(c.ftmp[i], c.x[i] + c.btmp[i]);
      } else if (m.end == End::early) {
        o.step = Step::taped_drop;
        o.cost = c.fw[i];
        o.peak = base + c.xb[i + 1] + c.ftmp[i];
      } else {
        return;
      }
      visit(m, o);
    });
    return;
  }

  ForwardRun<Size> run{c, i};
  for (int j = i + 1; j <= l; ++j) {
    run.advance(j);
    for (bool to_xbar : {false, true}) {
      if (to_xbar && persistent && j > i + 1) break;  // rotor: xbar only by the input's F_all
      const Input child_in = to_xbar ? Input::xbar : Input::x;
      for (int end = 0; end < ends; ++end) {
        const End child_end = static_cast<End>(end);
        if (child_end != End::full && j == l) break;  // the child must make progress
        for_each_mode([&](Mode m) {
          Option<Size> o;
          o.step = Step::forward_keep;
          o.cost = run.time;
          o.peak = base_of(m) + (to_xbar ? run.to_xbar : run.to_x);
          o.j = j;
          o.to_xbar = to_xbar;
          o.has_child = o.has_cont = true;
          o.shift = input_size(c, i, m.in);  // the child's budget leaves the input out
          o.child = {j, l, {child_in, m.start, child_end}};
          if (child_end == End::full)
            o.cont = {i, j - 1, {m.in, to_xbar ? Start::grad_bar : Start::none, m.end}};
          else
            o.cont = {i, j, {m.in, child_end == End::early ? Start::grad_bar : Start::none, m.end}};
          visit(m, o);
        });
      }
    }
  }

  // Forward to i + 1 consuming the input: the only way to end early or consumed at this level.
  for_each_mode([&](Mode m) {
    if (m.end == End::full) return;
    Option<Size> o;
    o.step = Step::forward_consume;
    o.to_xbar = m.end == End::early;
    o.j = i + 1;
    o.cost = c.fw[i];
    o.peak = base_of(m) + (o.to_xbar ? c.xb[i + 1] : c.x[i + 1]) + c.ftmp[i];
    o.has_child = true;
    o.child = {i + 1, l, {o.to_xbar ? Input::xbar : Input::x, m.start, End::full}};
    visit(m, o);
  });
}

constexpr std::size_t pair_index(int i, int l) {
  return static_cast<std::size_t>(l) * (l + 1) / 2 + i;
}

// The same options as for_each_option for i < l (forward_keep, then forward_consume, in the same
// order and with the same arithmetic), without building Option structs: visit(m, child, cont,
// shift, cont_shift, peak, cost) with m the mode index of the sub-problem, child and cont the row
// indices (`layout`) of the child and continuation (cont = no_row when there is none), read at
// budgets t - shift and t - cont_shift. Only the modes of the chain's class whose bit is set in
// `modes` are visited.
constexpr std::size_t no_row = static_cast<std::size_t>(-1);

template <class Size, class Visit>
void for_each_forward_option(const DpChain<Size>& c, const RowLayout& layout, int i, int l, unsigned modes,
                             Visit&& visit) {
  const bool persistent = c.kind == DpClass::persistent;
  const int ends = persistent ? 1 : 3;
  const Size before_loss = l == c.stages - 1 ? c.pre_loss_extra : Size{0};
  int mode[Mode::count], cont_in[Mode::count], count = 0;
  Size base[Mode::count], in_size[Mode::count], cont_shift[Mode::count];
  for (int m = 0; m < Mode::count; ++m) {
    const Mode md = Mode::from_index(m);
    if ((md.in == Input::xbar && i == 0) || !(modes >> m & 1u) || m % 3 >= ends) continue;
    // Persistent: xbar_{l+1} is held only by the B_l right after F_all l (l = i); a longer
    // sub-chain is never entered with it.
    if (persistent && md.start == Start::grad_bar) continue;
    mode[count] = m;
    // The continuations keep the input: an xbar input that stays is read as an x input.
    const bool alias = layout.alias_xbar_full && md.in == Input::xbar && md.end == End::full;
    cont_in[count] = alias ? 0 : m / 6 * 6;
    cont_shift[count] = alias ? c.xb[i] - c.x[i] : Size{0};
    in_size[count] = input_size(c, i, md.in);
    base[count] = input_size(c, i, md.in) + c.x[l + 1] + (md.start == Start::grad_bar ? c.xb[l + 1] : Size{0}) +
                  before_loss;
    ++count;
  }
  // The child (j, l) with an xbar input ending full is read as its x-input row, except the inner
  // problem's row of a nested chain (not a shift of the x row).
  auto alias_child = [&](int j) {
    return layout.alias_xbar_full && !(c.inner_loss && j == c.stages - 1 && l == j);
  };
  ForwardRun<Size> forward{c, i};
  for (int j = i + 1; j <= l; ++j) {
    forward.advance(j);
    for (int to_xbar = 0; to_xbar < 2; ++to_xbar) {
      if (to_xbar && persistent && j > i + 1) break;  // rotor: xbar only by the input's F_all
      const Size run = to_xbar ? forward.to_xbar : forward.to_x;
      for (int child_end = 0; child_end < ends; ++child_end) {
        if (child_end != 0 && j == l) break;  // the child must make progress
        // Mode index (in * 2 + start) * 3 + end: the child's is (to_xbar * 2 + start) * 3 +
        // child_end; the continuation keeps in and end, with start G after an xbar checkpoint
        // (full child) or after an early child.
        const bool alias = to_xbar && child_end == 0 && alias_child(j);
        const std::size_t child_pair = pair_index(j, l) * layout.per_pair;
        const int child_mode = (alias ? 0 : to_xbar * 6) + child_end;
        const Size child_shift = alias ? c.xb[j] - c.x[j] : Size{0};
        const std::size_t cont_pair = (child_end == 0 ? pair_index(i, j - 1) : pair_index(i, j)) * layout.per_pair;
        const int cont_start = child_end == 0 ? to_xbar * 3 : (child_end == 1 ? 3 : 0);
        for (int e = 0; e < count; ++e) {
          const int m = mode[e];
          visit(m, child_pair + layout.slot[child_mode + m / 3 % 2 * 3],
                cont_pair + layout.slot[cont_start + cont_in[e] + m % 3], in_size[e] + child_shift, cont_shift[e],
                base[e] + run, forward.time);
        }
      }
    }
  }
  // Forward to i + 1 consuming the input (ends early or consumed): child (i + 1, l) ending full,
  // with the whole budget (the input is gone).
  for (int e = 0; e < count; ++e) {
    const int m = mode[e];
    if (m % 3 == 0) continue;
    const bool to_xbar = m % 3 == 1;
    const bool alias = to_xbar && alias_child(i + 1);
    visit(m, pair_index(i + 1, l) * layout.per_pair + layout.slot[(to_xbar && !alias ? 6 : 0) + m / 3 % 2 * 3],
          no_row, alias ? c.xb[i + 1] - c.x[i + 1] : Size{0}, Size{0},
          base[e] + (to_xbar ? c.xb[i + 1] : c.x[i + 1]) + c.ftmp[i], static_cast<double>(c.fw[i]));
  }
}

// The options of one mode only.
template <class Size, class Visit>
void for_each_option(const DpChain<Size>& c, int i, int l, Mode mode, Visit&& visit) {
  for_each_option(c, i, l, [&](Mode m, const Option<Size>& o) {
    if (m.index() == mode.index()) visit(o);
  });
}

// The shape of a ChainDp's tables: rows of every mode of the class for every sub-chain (the rows
// fill() does not write are allocated too), of `stride` values and `block_stride` block ends.
struct TableShape {
  std::size_t rows;
  int blocks, stride, block_stride;
  TableShape(int stages, int width, const RowLayout& layout)
      : rows(pair_index(0, stages) * layout.per_pair),
        blocks((width + 7) / 8),
        stride(blocks * 8),
        block_stride((blocks + 15) / 8 * 8) {}  // >= blocks + 8, whole vectors
};

}  // namespace

std::size_t chain_dp_table_bytes(int stages, int max_memory, DpClass kind) {
  // What the constructor allocates, written or not: an address-space limit counts it all. The
  // per-row bounds (floor_, first_feasible_) count too; each thread's scratch (a block-end row per
  // mode, a few KiB) is left out.
  const TableShape shape(stages, max_memory + 1, RowLayout::of(kind));
  return table_allocation_bytes(shape.rows * shape.stride) + table_allocation_bytes(shape.rows * shape.block_stride) +
         shape.rows * (sizeof(float) + sizeof(int));
}

ChainDp::ChainDp(DpChain<int> chain, int max_memory, InnerProblem inner_x, InnerProblem inner_xbar)
    : chain_(std::move(chain)), layout_(RowLayout::of(chain_.kind)), width_(max_memory + 1), inner_{inner_x, inner_xbar} {
  if (chain_.inner_loss)
    for (const InnerProblem& inner : inner_)
      if (!inner.dp || inner.dp->width_ != width_)
        throw std::logic_error("ChainDp: a nested chain needs both inner problems on the same memory grid");
  const int stages = chain_.stages;
  const TableShape shape(stages, width_, layout_);
  blocks_ = shape.blocks;
  stride_ = shape.stride;
  block_stride_ = shape.block_stride;
  const std::size_t rows = shape.rows;
  table_.reset(allocate_table(rows * stride_));
  block_end_.reset(allocate_table(rows * block_stride_));
  floor_.assign(rows, infinity);
  first_feasible_.assign(rows, width_);
  zeros_.assign(stride_, 0.0f);
  zero_block_end_.assign(block_stride_, 0.0f);
  // (i, l) needs (j, l) for j > i and (i, p) for p < l: rows of shorter sub-chains only, so the
  // sub-chains of one length are independent and the threads share each length (each entry is
  // computed the same way on any thread: the tables do not depend on the thread count).
  const std::size_t scratch = static_cast<std::size_t>(layout_.per_pair) * block_stride_;
  const bool parallel = static_cast<double>(stages) * stages * width_ >= 1e6;
  const CancelPoint cancel = CancelPoint::current();
#pragma omp parallel if (parallel)
  {
    std::vector<float> block_start(scratch);
    for (int length = 0; length < stages; ++length) {
#pragma omp for schedule(dynamic, 1)
      for (int i = 0; i < stages - length; ++i)
        if (!cancel.requested()) fill(i, i + length, block_start.data());
    }
  }
  cancel.check();
}

std::size_t ChainDp::row_index(int i, int l, Mode mode) const {
  const int slot = layout_.slot[mode.index()];
  if (slot < 0) throw std::logic_error("ChainDp: a mode outside the program's class");
  return pair_index(i, l) * layout_.per_pair + slot;
}


inline ChainDp::Row ChainDp::zero_row() const { return {zeros_.data(), zero_block_end_.data(), 0.0f, 0, 0}; }

inline ChainDp::Row ChainDp::row_at(std::size_t r) const {
  return {&table_[r * stride_], &block_end_[r * block_stride_], floor_[r], first_feasible_[r], 0};
}

// An xbar input that stays to the end is an x input plus a constant: the same options, with the
// same float sums, at budgets shifted by the size difference (the input size enters the peaks and
// the child's budget only, and the continuations keep the input).
inline ChainDp::Row ChainDp::row(int i, int l, Mode mode) const {
  if (!is_shifted(i, mode)) return row_at(row_index(i, l, mode));
  Row x = row_at(row_index(i, l, {Input::x, mode.start, mode.end}));
  x.shift = chain_.xb[i] - chain_.x[i];
  x.first_feasible += x.shift;
  return x;
}

float ChainDp::value_at(const Row& r, int memory) const {
  const int t = std::min(memory, width_ - 1) - r.shift;
  return memory < 0 || t < 0 ? infinity : r.values[t];
}

ChainDp::RowView ChainDp::values(int i, int l, Mode mode) const {
  const Row r = row(i, l, mode);
  return {r.values, r.shift};
}

template <class OptionT>
inline ChainDp::Row ChainDp::child_of(const OptionT& o) const {
  if (o.step != Step::inner_problem) return row(o.child.i, o.child.l, o.child.mode);
  const ChainDp& inner = *inner_[static_cast<int>(o.inner_kind)].dp;
  return inner.row(0, inner.chain_.stages - 1, whole_problem);
}

float ChainDp::value(int i, int l, Mode mode, int memory) const { return value_at(row(i, l, mode), memory); }

namespace {

// out[t] = min(out[t], cost + child[t] + cont[t]) on [a, b). The rows never alias (a sub-problem
// only reads shorter ones), which lets the compiler vectorise the loop; the explicit comparison
// (rather than std::min, which returns a reference) keeps it branch-free.
void relax(float* __restrict out, const float* __restrict child, const float* __restrict cont, float cost, int a,
           int b) {
  for (int t = a; t < b; ++t) {
    const float v = cost + child[t] + cont[t];
    out[t] = v < out[t] ? v : out[t];
  }
}

#if defined(__AVX__)
using Lanes = __m256;
inline Lanes load(const float* p) { return _mm256_loadu_ps(p); }
inline Lanes splat(float v) { return _mm256_set1_ps(v); }
// Bit k set when lane k of a is below lane k of b.
inline unsigned below_mask(Lanes a, Lanes b) {
  return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_LT_OQ)));
}
// relax() on the 8 budgets from `t`: (cost + child) + cont, then the lesser of that and out
// (_mm256_min_ps(v, o) is v < o ? v : o, the same float results as relax()).
inline void relax_block(float* out, const float* child, const float* cont, Lanes cost, int t) {
  const Lanes v = _mm256_add_ps(_mm256_add_ps(cost, load(child + t)), load(cont + t));
  _mm256_storeu_ps(out + t, _mm256_min_ps(v, load(out + t)));
}
#endif

}  // namespace

bool ChainDp::is_shifted(int i, Mode mode) const {
  const bool inner_problem = chain_.inner_loss && i == chain_.stages - 1;
  return i > 0 && mode.in == Input::xbar && mode.end == End::full && !inner_problem;
}

inline void ChainDp::relax_option(float* out, float* out_start, const Row& child_row, int shift, const Row& cont_row,
                                  float cost, int peak) {
  // Every table row is non-increasing in memory, so this option is never below `floor`, a lower
  // bound of its rows; where `out` is already <= floor it cannot improve it. (Float addition
  // rounds monotonically, so the bound holds in float too.) Below a row's first feasible budget
  // the option is infinite.
  const float floor = cost + child_row.floor + cont_row.floor;
  const int start = std::max({peak, 0, child_row.first_feasible + shift, cont_row.first_feasible});
  if (!(floor < infinity) || start >= width_) return;
  // The stored rows are read at budgets t - child_shift and t - cont_shift.
  const int child_shift = shift + child_row.shift, cont_shift = cont_row.shift;
  const float* child = child_row.values - child_shift;
  const float* cont = cont_row.values - cont_shift;
  // Block k (budgets 8k..8k+7) can be improved only if the option's least value there, at most
  // cost + child[8k+7] + cont[8k+7], is below out's greatest, out[8k]. A stored row read at
  // 8k+7-s is bounded below by the end of its block that holds 8k+7-s, block k + floor((7-s)/8);
  // 8k+7 >= start >= s keeps that index >= 0. Eight blocks are tested at once, and all eight are
  // updated when one passes (updating only the blocks that pass costs more in mispredicted
  // branches than it saves). Past the first block where out[8k] <= floor, none can be improved.
  static_assert(block == 8, "the shifts below divide by the block size");
  const float* child_end = child_row.block_end + ((block - 1 - child_shift) >> 3);
  const float* cont_end = cont_row.block_end + ((block - 1 - cont_shift) >> 3);
  int k = start / block;
  if (start % block != 0) {
    // The first block is partial: the option is infinite below `start`.
    if (cost + child_end[k] + cont_end[k] < out_start[k]) {
      relax(out, child, cont, cost, start, (k + 1) * block);
      out_start[k] = out[k * block];
    }
    ++k;
  }
#if defined(__AVX__)
  const Lanes cost8 = splat(cost);
  for (; k < blocks_ && out_start[k] > floor; k += block) {
    const Lanes least = _mm256_add_ps(_mm256_add_ps(cost8, load(child_end + k)), load(cont_end + k));
    if (below_mask(least, load(out_start + k)) != 0) {
      const int end = std::min(k + block, blocks_);
      for (int b = k; b < end; ++b) {
        relax_block(out, child, cont, cost8, b * block);
        out_start[b] = out[b * block];
      }
    }
  }
#else
  for (; k < blocks_ && out_start[k] > floor; ++k)
    if (cost + child_end[k] + cont_end[k] < out_start[k]) {
      relax(out, child, cont, cost, k * block, (k + 1) * block);
      out_start[k] = out[k * block];
    }
#endif
}

void ChainDp::fill(int i, int l, float* block_start) {
  // block_start[m][k]: the current value of mode m's row at the first budget of block k, an upper
  // bound of the row on the block; past the last block, -infinity (no option can improve them).
  for (int r = 0; r < layout_.per_pair; ++r) {
    float* starts = &block_start[static_cast<std::size_t>(r) * block_stride_];
    std::fill(starts, starts + blocks_, infinity);
    std::fill(starts + blocks_, starts + block_stride_, -std::numeric_limits<float>::infinity());
  }
  // The modes computed here: those of the class, but for the xbar-input rows read from the x ones
  // (row()). Their rows are written first here (the table is not initialised beforehand).
  unsigned modes = 0;
  for (int m = 0; m < Mode::count; ++m) {
    const Mode mode = Mode::from_index(m);
    // Never read: xbar_0 (x_0 is data), and, persistent, xbar_{l+1} held over more than one stage.
    const bool unreachable = (i == 0 && mode.in == Input::xbar) ||
                             (chain_.kind == DpClass::persistent && i < l && mode.start == Start::grad_bar);
    if (in_class(m) && !is_shifted(i, mode) && !unreachable) modes |= 1u << m;
  }
  float* const rows = &table_[pair_index(i, l) * layout_.per_pair * stride_];
  auto out_of = [&](int m) { return rows + static_cast<std::size_t>(layout_.slot[m]) * stride_; };
  for (int m = 0; m < Mode::count; ++m)
    if (modes >> m & 1u) std::fill(out_of(m), out_of(m) + stride_, infinity);
  auto start_of = [&](int m) { return &block_start[static_cast<std::size_t>(layout_.slot[m]) * block_stride_]; };
  // Each entry ends as the least over the options (min is exact and commutative, and the block
  // tests only skip budgets that an option cannot improve), so the options may be taken in any
  // order; emit() replays them in for_each_option's.
  if (i == l) {
    for_each_option(chain_, i, l, [&](Mode mode, const Option<int>& o) {
      if (!(modes >> mode.index() & 1u)) return;
      relax_option(out_of(mode.index()), start_of(mode.index()), o.has_child ? child_of(o) : zero_row(),
                   o.has_child ? o.shift : 0, o.has_cont ? row(o.cont.i, o.cont.l, o.cont.mode) : zero_row(),
                   static_cast<float>(o.cost), o.peak);
    });
  } else {
    const Row zero = zero_row();
    for_each_forward_option(
        chain_, layout_, i, l, modes,
        [&](int m, std::size_t child, std::size_t cont, int shift, int cont_shift, int peak, double cost) {
          Row cont_row = zero;
          if (cont != no_row) {
            cont_row = row_at(cont);
            cont_row.shift = cont_shift;
            cont_row.first_feasible += cont_shift;
          }
          relax_option(out_of(m), start_of(m), row_at(child), shift, cont_row, static_cast<float>(cost), peak);
        });
  }
  for (int m = 0; m < Mode::count; ++m)
    if (modes >> m & 1u) finish_row(row_index(i, l, Mode::from_index(m)));
}

void ChainDp::finish_row(std::size_t row) {
  float* out = &table_[row * stride_];
  // Budgets past the last one (the padding of the last block) hold the last value, so that the row
  // stays non-increasing over whole blocks.
  std::fill(out + width_, out + stride_, out[width_ - 1]);
  floor_[row] = out[width_ - 1];
  first_feasible_[row] =
      static_cast<int>(std::partition_point(out, out + width_, [](float v) { return !(v < infinity); }) - out);
  float* ends = &block_end_[row * block_stride_];
  for (int k = 0; k < blocks_; ++k) ends[k] = out[k * block + block - 1];
  std::fill(ends + blocks_, ends + block_stride_, floor_[row]);
}

// The ops of one option's own step (children and continuations are emitted by the caller).
template <class Size>
void emit_step(const DpChain<Size>& c, int i, Mode mode, const Option<Size>& o, int branch, Schedule& out) {
  const int loss_stage = c.stages - 1;
  auto forward = [&](OpKind kind, int stage) {
    if (stage != loss_stage) out.push_back({kind, branch, stage, Item::x});
  };
  auto backward = [&](int stage) { out.push_back(stage == loss_stage ? Op::loss_op() : Op::b(branch, stage)); };
  const Item input = mode.in == Input::x ? Item::x : Item::xbar;
  switch (o.step) {
    case Step::inner_problem: break;
    case Step::backward: backward(i); break;
    case Step::taped_backward: forward(OpKind::F_all, i); backward(i); break;
    case Step::taped_drop:
      forward(OpKind::F_all, i);
      out.push_back(Op::drop(input, branch, i));
      break;
    case Step::forward_consume:
      if (o.to_xbar) {
        forward(OpKind::F_all, i);
        out.push_back(Op::drop(input, branch, i));
      } else {
        forward(OpKind::F_none, i);
      }
      break;
    case Step::forward_keep:
      if (o.to_xbar && o.j == i + 1) {
        forward(OpKind::F_all, i);
      } else {
        forward(OpKind::F_ck, i);
        const int last_plain = o.to_xbar ? o.j - 1 : o.j;
        for (int s = i + 1; s < last_plain; ++s) forward(OpKind::F_none, s);
        if (o.to_xbar) {
          forward(OpKind::F_all, o.j - 1);
          out.push_back(Op::drop(Item::x, branch, o.j - 1));
        }
      }
      break;
  }
}

void ChainDp::emit(int i, int l, Mode mode, int memory, int branch, Schedule& out) const {
  memory = std::min(memory, width_ - 1);
  const float target = value(i, l, mode, memory);
  if (target >= infinity) throw std::logic_error("ChainDp::emit: infeasible sub-problem");
  bool done = false;
  for_each_option(chain_, i, l, mode, [&](const Option<int>& o) {
    if (done || memory < o.peak) return;
    const float cost = static_cast<float>(o.cost);
    float v = cost;
    if (o.has_child) {
      v = v + value_at(child_of(o), memory - o.shift);
    }
    if (o.has_cont) v = v + value(o.cont.i, o.cont.l, o.cont.mode, memory);
    if (!(std::min(v, infinity) == target)) return;
    done = true;
    if (o.step == Step::inner_problem) {
      const InnerProblem& inner = inner_[static_cast<int>(o.inner_kind)];
      inner.dp->emit(0, inner.dp->chain_.stages - 1, whole_problem, memory - o.shift, inner.branch, out);
      return;
    }
    emit_step(chain_, i, mode, o, branch, out);
    if (o.has_child) emit(o.child.i, o.child.l, o.child.mode, memory - o.shift, branch, out);
    if (o.has_cont) emit(o.cont.i, o.cont.l, o.cont.mode, memory, branch, out);
  });
  if (!done) throw std::logic_error("ChainDp::emit: no option reproduces the table value");
}

namespace {

// Least budget of every sub-problem (the same recursion as the tables, with max/min for +/min).
class LeastMemory {
 public:
  explicit LeastMemory(const DpChain<double>& chain)
      : chain_(chain), least_(pair_index(0, chain.stages) * Mode::count, std::numeric_limits<double>::infinity()) {
    // Row i (the sub-chains (i, l), l ascending) reads rows j > i at the same l, and its own
    // earlier entries as continuations. Rows are handed out from the last one down; row i computes
    // (i, l) once row i + 1 has (i + 1, l), which it computed only after row i + 2 had (i + 2, l),
    // and so on. Row by row, the continuations are the row's own recent entries (in cache) and the
    // children (j, l), j > i, are consecutive in memory: a length-by-length order read both from
    // cold memory, one cache miss per step. max and min are exact, so the values do not depend on
    // the order or the threads.
    const int stages = chain.stages;
    std::vector<std::atomic<int>> done(stages + 1);  // done[i]: entries (i, i..done[i]-1) are final
    for (int i = 0; i < stages; ++i) done[i].store(i);
    done[stages].store(std::numeric_limits<int>::max());
    std::atomic<int> next_row{stages - 1};
    const CancelPoint cancel = CancelPoint::current();
#pragma omp parallel if (stages >= 64)
    for (int i; (i = next_row.fetch_sub(1)) >= 0;) {
      for_each_option(chain, i, i, [&](Mode mode, const Option<double>& o) {
        double& best = at({i, i, mode});
        best = std::min(best, need(o));
      });
      done[i].store(i + 1, std::memory_order_release);
      for (int l = i + 1; l < stages; ++l) {
        // A cancelled row i + 1 stops advancing: row i stops waiting for it.
        while (done[i + 1].load(std::memory_order_acquire) <= l && !cancel.requested()) std::this_thread::yield();
        if (cancel.requested()) break;
        double* best = &least_[pair_index(i, l) * Mode::count];
        for_each_forward_option(chain, RowLayout{}, i, l, ~0u,
                                [&](int m, std::size_t child, std::size_t cont, double shift, double cont_shift,
                                    double peak, double) {
                                  double need = std::max(peak, least_[child] + shift);
                                  if (cont != no_row) need = std::max(need, least_[cont] + cont_shift);
                                  best[m] = std::min(best[m], need);
                                });
        done[i].store(l + 1, std::memory_order_release);
      }
    }
    cancel.check();
  }

  double at_top() const { return least_[index({0, chain_.stages - 1, whole_problem})]; }

  void emit(const Ref& r, int branch, const InnerEmitter& emit_inner, Schedule& out) const {
    const double target = least_[index(r)];
    bool done = false;
    for_each_option(chain_, r.i, r.l, r.mode, [&](const Option<double>& o) {
      if (done || need(o) != target) return;
      done = true;
      if (o.step == Step::inner_problem) {
        emit_inner(o.inner_kind, out);
        return;
      }
      emit_step(chain_, r.i, r.mode, o, branch, out);
      if (o.has_child) emit(o.child, branch, emit_inner, out);
      if (o.has_cont) emit(o.cont, branch, emit_inner, out);
    });
  }

 private:
  static std::size_t index(const Ref& r) { return pair_index(r.i, r.l) * Mode::count + r.mode.index(); }
  double& at(const Ref& r) { return least_[index(r)]; }

  double need(const Option<double>& o) const {
    double need = o.peak;
    if (o.step == Step::inner_problem)
      need = std::max(need, chain_.inner_least[static_cast<int>(o.inner_kind)] + o.shift);
    else if (o.has_child)
      need = std::max(need, least_[index(o.child)] + o.shift);
    if (o.has_cont) need = std::max(need, least_[index(o.cont)]);
    return need;
  }

  const DpChain<double>& chain_;
  std::vector<double> least_;
};

}  // namespace

double dp_min_memory(const DpChain<double>& chain) { return LeastMemory(chain).at_top(); }

double dp_min_memory_schedule(const DpChain<double>& chain, int branch, const InnerEmitter& emit_inner,
                              Schedule& out) {
  const LeastMemory least(chain);
  least.emit({0, chain.stages - 1, whole_problem}, branch, emit_inner, out);
  return least.at_top();
}

}  // namespace rematch
