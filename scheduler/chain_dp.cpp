#include "scheduler/chain_dp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace rematch {

template <class Size>
DpChain<Size> make_dp_chain(const Graph& graph, int branch, double slot) {
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

template DpChain<int> make_dp_chain<int>(const Graph&, int, double);
template DpChain<double> make_dp_chain<double>(const Graph&, int, double);

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
};

template <class Size>
Size input_size(const DpChain<Size>& c, int i, Input in) {
  return in == Input::x ? c.x[i] : c.xb[i];
}

// Every way a sub-problem can proceed, in a fixed order (the tables and emit() must agree on it).
template <class Size, class Visit>
void for_each_option(const DpChain<Size>& c, int i, int l, Mode m, Visit&& visit) {
  const Size in_size = input_size(c, i, m.in);
  const Size base = in_size + c.x[l + 1] + (m.start == Start::grad_bar ? c.xb[l + 1] : Size{0});
  if (i == l) {
    Option<Size> o;
    if (m.start == Start::grad_bar) {
      if (m.end != End::full) return;
      o.step = Step::backward;
      o.cost = c.bw[i];
      o.peak = base + c.x[i] + c.btmp[i];
      visit(o);
    } else if (m.end == End::full) {
      o.step = Step::taped_backward;
      o.cost = c.fw[i] + c.bw[i];
      o.peak = base + c.xb[i + 1] + std::max(c.ftmp[i], c.x[i] + c.btmp[i]);
      visit(o);
    } else if (m.end == End::early) {
      o.step = Step::taped_drop;
      o.cost = c.fw[i];
      o.peak = base + c.xb[i + 1] + c.ftmp[i];
      visit(o);
    }
    return;
  }

  // Forward from the input to a checkpoint at j, keeping the input. run_x: peak (over base) of
  // reaching x_j by F_ck i then F_none; the checkpoint may instead be xbar_j (F_all j-1, drop x_{j-1}).
  Size run_x = 0;
  double time = 0;
  for (int j = i + 1; j <= l; ++j) {
    const Size below = j - 1 == i ? Size{0} : c.x[j - 1];
    const Size to_xbar_peak = std::max(run_x, below + c.xb[j] + c.ftmp[j - 1]);
    run_x = std::max(run_x, below + c.x[j] + c.ftmp[j - 1]);
    time += c.fw[j - 1];
    for (bool to_xbar : {false, true}) {
      Option<Size> o;
      o.step = Step::forward_keep;
      o.cost = time;
      o.peak = base + (to_xbar ? to_xbar_peak : run_x);
      o.j = j;
      o.to_xbar = to_xbar;
      o.has_child = o.has_cont = true;
      o.shift = in_size;
      const Input child_in = to_xbar ? Input::xbar : Input::x;
      for (End child_end : {End::full, End::early, End::consumed}) {
        if (child_end != End::full && j == l) break;  // the child must make progress
        o.child = {j, l, {child_in, m.start, child_end}};
        if (child_end == End::full)
          o.cont = {i, j - 1, {m.in, to_xbar ? Start::grad_bar : Start::none, m.end}};
        else
          o.cont = {i, j, {m.in, child_end == End::early ? Start::grad_bar : Start::none, m.end}};
        visit(o);
      }
    }
  }

  // Forward to i + 1 consuming the input: the only way to end early or consumed at this level.
  if (m.end == End::full) return;
  Option<Size> o;
  o.step = Step::forward_consume;
  o.to_xbar = m.end == End::early;
  o.j = i + 1;
  o.cost = c.fw[i];
  o.peak = base + (o.to_xbar ? c.xb[i + 1] : c.x[i + 1]) + c.ftmp[i];
  o.has_child = true;
  o.child = {i + 1, l, {o.to_xbar ? Input::xbar : Input::x, m.start, End::full}};
  visit(o);
}

constexpr std::size_t pair_index(int i, int l) {
  return static_cast<std::size_t>(l) * (l + 1) / 2 + i;
}

}  // namespace

std::size_t chain_dp_table_bytes(int stages, int max_memory) {
  return pair_index(0, stages) * Mode::count * (static_cast<std::size_t>(max_memory) + 1) * sizeof(float);
}

ChainDp::ChainDp(DpChain<int> chain, int max_memory) : chain_(std::move(chain)), width_(max_memory + 1) {
  const int stages = chain_.stages;
  table_.assign(pair_index(0, stages) * Mode::count * width_, infinity);
  for (int length = 0; length < stages; ++length)
    for (int i = 0; i + length < stages; ++i) fill(i, i + length);
}

std::size_t ChainDp::offset(int i, int l, Mode mode) const {
  return (pair_index(i, l) * Mode::count + mode.index()) * width_;
}

float ChainDp::value(int i, int l, Mode mode, int memory) const {
  if (memory < 0) return infinity;
  return table_[offset(i, l, mode) + std::min(memory, width_ - 1)];
}

void ChainDp::fill(int i, int l) {
  for (Input in : {Input::x, Input::xbar}) {
    if (in == Input::xbar && i == 0) continue;  // x_0 is data: never an xbar
    for (Start start : {Start::none, Start::grad_bar})
      for (End end : {End::full, End::early, End::consumed}) {
        const Mode mode{in, start, end};
        float* out = &table_[offset(i, l, mode)];
        for_each_option(chain_, i, l, mode, [&](const Option<int>& o) {
          const int first = std::max(o.peak, 0);
          if (first >= width_) return;
          const float cost = static_cast<float>(o.cost);
          const float* child = o.has_child ? &table_[offset(o.child.i, o.child.l, o.child.mode)] - o.shift : nullptr;
          const float* cont = o.has_cont ? &table_[offset(o.cont.i, o.cont.l, o.cont.mode)] : nullptr;
          if (child && cont) {
            for (int t = first; t < width_; ++t) out[t] = std::min(out[t], cost + child[t] + cont[t]);
          } else if (child) {
            for (int t = first; t < width_; ++t) out[t] = std::min(out[t], cost + child[t]);
          } else {
            for (int t = first; t < width_; ++t) out[t] = std::min(out[t], cost);
          }
        });
        // Sums with an infeasible part exceed `infinity`'s neighbourhood; keep them at infinity.
        for (int t = 0; t < width_; ++t) out[t] = std::min(out[t], infinity);
      }
  }
}

void ChainDp::emit(int i, int l, Mode mode, int memory, int branch, Schedule& out) const {
  memory = std::min(memory, width_ - 1);
  const float target = value(i, l, mode, memory);
  if (target >= infinity) throw std::logic_error("ChainDp::emit: infeasible sub-problem");
  const int loss_stage = chain_.stages - 1;
  auto forward = [&](OpKind kind, int stage) {
    if (stage != loss_stage) out.push_back({kind, branch, stage, Item::x});
  };
  auto backward = [&](int stage) { out.push_back(stage == loss_stage ? Op::loss_op() : Op::b(branch, stage)); };
  const Item input = mode.in == Input::x ? Item::x : Item::xbar;

  bool done = false;
  for_each_option(chain_, i, l, mode, [&](const Option<int>& o) {
    if (done || memory < o.peak) return;
    const float cost = static_cast<float>(o.cost);
    float v = cost;
    if (o.has_child) v = v + value(o.child.i, o.child.l, o.child.mode, memory - o.shift);
    if (o.has_cont) v = v + value(o.cont.i, o.cont.l, o.cont.mode, memory);
    if (!(std::min(v, infinity) == target)) return;
    done = true;
    switch (o.step) {
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
    if (o.has_child) emit(o.child.i, o.child.l, o.child.mode, memory - o.shift, branch, out);
    if (o.has_cont) emit(o.cont.i, o.cont.l, o.cont.mode, memory, branch, out);
  });
  if (!done) throw std::logic_error("ChainDp::emit: no option reproduces the table value");
}

double dp_min_memory(const DpChain<double>& chain) {
  const int stages = chain.stages;
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> least(pair_index(0, stages) * Mode::count, inf);
  auto at = [&](const Ref& r) -> double& { return least[pair_index(r.i, r.l) * Mode::count + r.mode.index()]; };
  for (int length = 0; length < stages; ++length)
    for (int i = 0; i + length < stages; ++i) {
      const int l = i + length;
      for (int in = 0; in < 2; ++in) {
        if (in == 1 && i == 0) continue;
        for (int start = 0; start < 2; ++start)
          for (int end = 0; end < 3; ++end) {
            const Ref self{i, l, {Input(in), Start(start), End(end)}};
            double& best = at(self);
            for_each_option(chain, i, l, self.mode, [&](const Option<double>& o) {
              double need = o.peak;
              if (o.has_child) need = std::max(need, at(o.child) + o.shift);
              if (o.has_cont) need = std::max(need, at(o.cont));
              best = std::min(best, need);
            });
          }
      }
    }
  return at({0, stages - 1, {Input::x, Start::none, End::full}});
}

}  // namespace rematch
