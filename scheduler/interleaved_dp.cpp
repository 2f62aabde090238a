#include "scheduler/interleaved_dp.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace rematch {

namespace {

int slots_of(double value, double slot) { return static_cast<int>(std::ceil(value / slot - 1e-9)); }

Mode segment_mode(Input from, Input to) {
  return {from, to == Input::xbar ? Start::grad_bar : Start::none, End::full};
}

}  // namespace

int InterleavedJoinDp::Side::held(int position, Input kind) const {
  const DpChain<int>& c = dp.chain();
  return kind == Input::x ? c.x[position] : c.xb[position];
}

int InterleavedJoinDp::Side::held_at_end(int position, Input kind) const {
  if (position == 0) return 0;  // y_0 leaves memory at once
  const DpChain<int>& c = dp.chain();
  return c.x[position] + (kind == Input::xbar ? c.xb[position] : 0);
}

InterleavedJoinDp::InterleavedJoinDp(const Graph& graph, double slot, int max_memory)
    : side_{{0, ChainDp(make_dp_chain<int>(graph, 0, slot), max_memory)},
            {1, ChainDp(make_dp_chain<int>(graph, 1, slot), max_memory)}},
      loss_tmp_(slots_of(graph.loss.tmp, slot)),
      loss_time_(graph.loss.time),
      width_(max_memory + 1) {
  if (graph.num_branches() != 2) throw std::invalid_argument("InterleavedJoinDp needs two branches");
  const int na = side_[0].stages(), nb = side_[1].stages();
  table_.assign(static_cast<std::size_t>(na + 1) * (nb + 1) * 4 * width_, ChainDp::infinity);
  for (int a = na; a >= 0; --a)
    for (int b = nb; b >= 0; --b)
      for (Input ka : {Input::x, Input::xbar})
        for (Input kb : {Input::x, Input::xbar})
          if ((a > 0 || ka == Input::x) && (b > 0 || kb == Input::x)) fill(a, ka, b, kb);
}

std::size_t InterleavedJoinDp::table_bytes(const Graph& graph, int max_memory) {
  std::size_t bytes = 0;
  for (const Branch& b : graph.branches) bytes += chain_dp_table_bytes(b.stages() + 1, max_memory);
  std::size_t cells = 4 * static_cast<std::size_t>(max_memory + 1);
  for (const Branch& b : graph.branches) cells *= b.stages() + 1;
  return bytes + cells * sizeof(float);
}

std::size_t InterleavedJoinDp::row(int a, Input ka, int b, Input kb) const {
  const std::size_t nb = side_[1].stages() + 1;
  return (((static_cast<std::size_t>(a) * 2 + static_cast<int>(ka)) * nb + b) * 2 + static_cast<int>(kb)) * width_;
}

std::vector<InterleavedJoinDp::Advance> InterleavedJoinDp::advances(const Side& side, int from, Input kind) const {
  const DpChain<int>& c = side.dp.chain();
  const int in = side.held(from, kind);
  std::vector<Advance> out;
  double cost = 0;
  int run_peak = 0;  // of the ops before the run's last one (F_ck from, F_none ...)
  for (int to = from + 1; to <= side.stages(); ++to) {
    const int last = to - 1;
    cost += c.fw[last];
    // The last op reads x_last (transient unless last == from) and writes x_to or xbar_to.
    const int reading = last == from ? 0 : c.x[last];
    out.push_back({to, Input::x, cost, std::max(run_peak, in + reading + c.x[to] + c.ftmp[last])});
    out.push_back({to, Input::xbar, cost, std::max(run_peak, in + reading + c.xb[to] + c.ftmp[last])});
    run_peak = std::max(run_peak, in + reading + c.x[to] + c.ftmp[last]);
  }
  return out;
}

void InterleavedJoinDp::fill(int a, Input ka, int b, Input kb) {
  float* out = table_.data() + row(a, ka, b, kb);
  const int pos[2] = {a, b};
  const Input kind[2] = {ka, kb};
  if (a == side_[0].stages() && b == side_[1].stages()) {
    const int peak = side_[0].held(a, ka) + side_[1].held(b, kb) + side_[0].dp.chain().x[a] +
                     side_[1].dp.chain().x[b] + loss_tmp_;
    for (int t = peak; t < width_; ++t) out[t] = static_cast<float>(loss_time_);
    return;
  }
  for (int mover = 0; mover < 2; ++mover) {
    const Side& m = side_[mover];
    const Side& other = side_[1 - mover];
    const int p = pos[mover], q = pos[1 - mover];
    const int in = m.held(p, kind[mover]);
    const int other_in = other.held(q, kind[1 - mover]);
    const int other_end = other.held_at_end(q, kind[1 - mover]);
    for (const Advance& run : advances(m, p, kind[mover])) {
      const std::size_t child_row = mover == 0 ? row(run.to, run.kind, b, kb) : row(a, ka, run.to, run.kind);
      const float* child = table_.data() + child_row - in;
      const float* segment = m.dp.values(p, run.to - 1, segment_mode(kind[mover], run.kind)) - other_end;
      const float cost = static_cast<float>(run.cost);
      for (int t = std::max(other_in + run.peak, other_end); t < width_; ++t) {
        const float v = cost + child[t] + segment[t];
        out[t] = v < out[t] ? v : out[t];
      }
    }
  }
}

float InterleavedJoinDp::value(int memory) const {
  if (memory < 0) return ChainDp::infinity;
  return table_[row(0, Input::x, 0, Input::x) + std::min(memory, width_ - 1)];
}

int InterleavedJoinDp::least_memory() const {
  const float* top = table_.data() + row(0, Input::x, 0, Input::x);
  int t = 0;
  while (t < width_ && !(top[t] < ChainDp::infinity)) ++t;
  return t;
}

Schedule InterleavedJoinDp::emit(int memory) const {
  Schedule out;
  if (value(memory) < ChainDp::infinity) emit(0, Input::x, 0, Input::x, std::min(memory, width_ - 1), out);
  return out;
}

void InterleavedJoinDp::emit_run(int branch, int from, const Advance& run, Schedule& out) {
  const int last = run.to - 1;
  if (last == from) {
    out.push_back(run.kind == Input::x ? Op::f_ck(branch, from) : Op::f_all(branch, from));
    return;
  }
  out.push_back(Op::f_ck(branch, from));
  for (int s = from + 1; s < last; ++s) out.push_back(Op::f_none(branch, s));
  if (run.kind == Input::x) {
    out.push_back(Op::f_none(branch, last));
  } else {
    out.push_back(Op::f_all(branch, last));
    out.push_back(Op::drop(Item::x, branch, last));
  }
}

// Replays fill()'s options at one budget and follows the first that reaches the table's value
// (same float expression, so equality is exact).
void InterleavedJoinDp::emit(int a, Input ka, int b, Input kb, int t, Schedule& out) const {
  if (a == side_[0].stages() && b == side_[1].stages()) {
    out.push_back(Op::loss_op());
    return;
  }
  const float target = table_[row(a, ka, b, kb) + t];
  const int pos[2] = {a, b};
  const Input kind[2] = {ka, kb};
  for (int mover = 0; mover < 2; ++mover) {
    const Side& m = side_[mover];
    const Side& other = side_[1 - mover];
    const int p = pos[mover], q = pos[1 - mover];
    const int in = m.held(p, kind[mover]);
    const int other_in = other.held(q, kind[1 - mover]);
    const int other_end = other.held_at_end(q, kind[1 - mover]);
    for (const Advance& run : advances(m, p, kind[mover])) {
      if (t < std::max(other_in + run.peak, other_end)) continue;
      const std::size_t child_row = mover == 0 ? row(run.to, run.kind, b, kb) : row(a, ka, run.to, run.kind);
      const Mode mode = segment_mode(kind[mover], run.kind);
      const float v = static_cast<float>(run.cost) + table_[child_row + (t - in)] +
                      m.dp.values(p, run.to - 1, mode)[t - other_end];
      if (v != target) continue;
      emit_run(m.branch, p, run, out);
      if (mover == 0) emit(run.to, run.kind, b, kb, t - in, out);
      else emit(a, ka, run.to, run.kind, t - in, out);
      m.dp.emit(p, run.to - 1, mode, t - other_end, m.branch, out);
      return;
    }
  }
  throw std::logic_error("InterleavedJoinDp::emit: no option reaches the table's value");
}

}  // namespace rematch
