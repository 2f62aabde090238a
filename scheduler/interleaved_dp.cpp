#include "scheduler/interleaved_dp.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "scheduler/cancel.hpp"

namespace rematch {

namespace {

int slots_of(double value, double slot) { return static_cast<int>(std::ceil(value / slot - 1e-9)); }

Mode segment_mode(Input from, Input to) {
  return {from, to == Input::xbar ? Start::grad_bar : Start::none, End::full};
}

}  // namespace

int InterleavedJoinDp::Side::held(int position, Input kind) const {
  const DpChain<int>& c = dp->chain();
  return kind == Input::x ? c.x[position] : c.xb[position];
}

int InterleavedJoinDp::Side::held_at_end(int position, Input kind) const {
  if (position == 0) return 0;  // y_0 leaves memory at once
  const DpChain<int>& c = dp->chain();
  return c.x[position] + (kind == Input::xbar ? c.xb[position] : 0);
}

InterleavedJoinDp::InterleavedJoinDp(const Graph& graph, double slot, int max_memory, bool fold_identical)
    : loss_tmp_(slots_of(graph.loss.tmp, slot)), loss_time_(graph.loss.time), width_(max_memory + 1) {
  if (graph.num_branches() < 2) throw std::invalid_argument("InterleavedJoinDp needs two branches or more");
  if (static_cast<std::size_t>(graph.num_branches()) > max_sides) throw std::invalid_argument("InterleavedJoinDp: too many branches");
  for (int j = 0; j < graph.num_branches(); ++j) {
    const int first = graph.first_identical(j);
    if (first == j) chains_.push_back(std::make_unique<ChainDp>(make_dp_chain<int>(graph, j, slot), max_memory));
    const ChainDp* dp = first == j ? chains_.back().get() : sides_[first].dp;
    sides_.push_back({j, dp, states_, fold_identical ? first : j});
    folded_ = folded_ || (fold_identical && first != j);
    states_ *= 2 * (graph.branches[j].stages() + 1);
  }
  table_.reset(allocate_table(states_ * width_));
  // A forward run moves one checkpoint up, which raises the sum of the state's digits (2 position
  // + kind): states of one sum are independent, and are filled by all threads once every larger
  // sum is done (each row is computed the same way on any thread).
  std::vector<std::vector<std::size_t>> by_sum;
  for (std::size_t code = 0; code < states_; ++code) {
    if (canonical(code) != code) continue;  // read through its sorted form, never computed
    const State state = decode(code);
    std::size_t sum = 0;
    for (std::size_t j = 0; j < sides_.size(); ++j) sum += 2 * state.pos[j] + static_cast<int>(state.kind[j]);
    if (by_sum.size() <= sum) by_sum.resize(sum + 1);
    by_sum[sum].push_back(code);
  }
  const bool parallel = work(graph, max_memory) >= 1e7;
  const CancelPoint cancel = CancelPoint::current();
#pragma omp parallel if (parallel)
  for (std::size_t sum = by_sum.size(); sum-- > 0;) {
    const std::vector<std::size_t>& codes = by_sum[sum];
#pragma omp for schedule(dynamic, 1)
    for (std::size_t c = 0; c < codes.size(); ++c)
      if (!cancel.requested()) fill(codes[c]);
  }
  cancel.check();
}

namespace {

// Calls visit(branch, copies) once per distinct branch of the graph.
template <class Visit>
void for_each_distinct_branch(const Graph& graph, Visit&& visit) {
  std::vector<int> copies(graph.num_branches(), 0);
  for (int j = 0; j < graph.num_branches(); ++j) ++copies[graph.first_identical(j)];
  for (int j = 0; j < graph.num_branches(); ++j)
    if (copies[j] > 0) visit(graph.branches[j], copies[j]);
}

// States computed: per group of g identical branches with D digits each, the multisets of g digits.
double computed_states(const Graph& graph) {
  double states = 1;
  for_each_distinct_branch(graph, [&](const Branch& b, int copies) {
    const double digits = 2.0 * (b.stages() + 1);
    for (int r = 0; r < copies; ++r) states = states * (digits + r) / (r + 1);
  });
  return states;
}

}  // namespace

std::size_t InterleavedJoinDp::table_bytes(const Graph& graph, int max_memory) {
  double bytes = 0;
  for_each_distinct_branch(graph, [&](const Branch& b, int) { bytes += chain_dp_table_bytes(b.stages() + 1, max_memory); });
  // V is allocated for every state (only the computed rows are touched): that is what a process
  // memory limit on address space counts. (table_allocation_bytes(1) bounds the allocator's header
  // and rounding.)
  double states = 1;
  for (const Branch& b : graph.branches) states *= 2.0 * (b.stages() + 1);
  bytes += states * (max_memory + 1.0) * sizeof(float) + double(table_allocation_bytes(1));
  return bytes < 1e18 ? static_cast<std::size_t>(bytes) : std::size_t{1} << 60;
}

double InterleavedJoinDp::work(const Graph& graph, int max_memory) {
  double runs = 0;
  for (const Branch& b : graph.branches) runs += b.stages();  // 2 (n - p) runs on average over p
  return computed_states(graph) * runs * (max_memory + 1.0);
}

std::size_t InterleavedJoinDp::canonical(std::size_t code, std::vector<int>* order) const {
  const std::size_t n = sides_.size();
  if (order) {
    order->resize(n);
    std::iota(order->begin(), order->end(), 0);
  }
  if (!folded_) return code;
  std::size_t digit[max_sides];
  int from[max_sides];
  for (std::size_t s = 0; s < n; ++s) {
    digit[s] = code / sides_[s].stride % (2 * (sides_[s].stages() + 1));
    from[s] = static_cast<int>(s);
  }
  // Within each group of identical branches, ascending digits in slot order.
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t t = s + 1; t < n; ++t)
      if (sides_[t].group == sides_[s].group && digit[t] < digit[s]) {
        std::swap(digit[s], digit[t]);
        std::swap(from[s], from[t]);
      }
  std::size_t sorted = 0;
  for (std::size_t s = 0; s < n; ++s) sorted += digit[s] * sides_[s].stride;
  if (order) std::copy(from, from + n, order->begin());
  return sorted;
}

InterleavedJoinDp::State InterleavedJoinDp::decode(std::size_t code) const {
  State state;
  for (const Side& side : sides_) {
    const std::size_t digit = code / side.stride % (2 * (side.stages() + 1));
    state.pos.push_back(static_cast<int>(digit / 2));
    state.kind.push_back(static_cast<Input>(digit % 2));
  }
  return state;
}

std::vector<InterleavedJoinDp::Advance> InterleavedJoinDp::advances(const Side& side, int from, Input kind) const {
  const DpChain<int>& c = side.dp->chain();
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

template <class Visit>
void InterleavedJoinDp::for_each_option(std::size_t code, const State& state, Visit&& visit) const {
  int held = 0, held_at_end = 0;
  for (std::size_t j = 0; j < sides_.size(); ++j) {
    held += sides_[j].held(state.pos[j], state.kind[j]);
    held_at_end += sides_[j].held_at_end(state.pos[j], state.kind[j]);
  }
  for (std::size_t j = 0; j < sides_.size(); ++j) {
    const Side& m = sides_[j];
    const int p = state.pos[j];
    const Input kind = state.kind[j];
    bool twin_moves = false;  // an identical branch at the same checkpoint gives the same states
    for (std::size_t i = 0; i < j; ++i)
      twin_moves = twin_moves || (sides_[i].group == m.group && state.pos[i] == p && state.kind[i] == kind);
    if (twin_moves) continue;
    const int in = m.held(p, kind);
    const int others_in = held - in, others_end = held_at_end - m.held_at_end(p, kind);
    const std::size_t digit = 2 * p + static_cast<int>(kind);
    for (const Advance& run : advances(m, p, kind)) {
      const std::size_t child = code + (2 * run.to + static_cast<int>(run.kind) - digit) * m.stride;
      visit(m, run, child, in, others_in, others_end);
    }
  }
}

void InterleavedJoinDp::fill(std::size_t code) {
  const State state = decode(code);
  float* out = table_.get() + code * width_;
  std::fill(out, out + width_, ChainDp::infinity);
  for (std::size_t j = 0; j < sides_.size(); ++j)
    if (state.pos[j] == 0 && state.kind[j] == Input::xbar) return;  // x_0 is data: no xbar_0
  bool all_top = true;
  int loss_peak = loss_tmp_;
  for (std::size_t j = 0; j < sides_.size(); ++j) {
    all_top = all_top && state.pos[j] == sides_[j].stages();
    loss_peak += sides_[j].held(state.pos[j], state.kind[j]) + sides_[j].dp->chain().x[state.pos[j]];
  }
  if (all_top) {
    for (int t = loss_peak; t < width_; ++t) out[t] = static_cast<float>(loss_time_);
    return;
  }
  for_each_option(code, state, [&](const Side& m, const Advance& run, std::size_t child_code, int in, int others_in,
                                   int others_end) {
    const float* child = table_.get() + canonical(child_code) * width_ - in;
    const ChainDp::RowView view =
        m.dp->values(state.pos[m.branch], run.to - 1, segment_mode(state.kind[m.branch], run.kind));
    const float* segment = view.stored - view.shift - others_end;
    const float cost = static_cast<float>(run.cost);
    for (int t = std::max(others_in + run.peak, others_end + view.shift); t < width_; ++t) {
      const float v = cost + child[t] + segment[t];
      out[t] = v < out[t] ? v : out[t];
    }
  });
}

float InterleavedJoinDp::value(int memory) const {
  if (memory < 0) return ChainDp::infinity;
  return table_[std::min(memory, width_ - 1)];  // state code 0
}

int InterleavedJoinDp::least_memory() const {
  int t = 0;
  while (t < width_ && !(table_[t] < ChainDp::infinity)) ++t;
  return t;
}

Schedule InterleavedJoinDp::emit(int memory) const {
  Schedule out;
  std::vector<int> branch_of(sides_.size());
  std::iota(branch_of.begin(), branch_of.end(), 0);
  if (value(memory) < ChainDp::infinity) emit(0, std::min(memory, width_ - 1), branch_of, out);
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
void InterleavedJoinDp::emit(std::size_t code, int t, const std::vector<int>& branch_of, Schedule& out) const {
  const State state = decode(code);
  bool all_top = true;
  for (std::size_t j = 0; j < sides_.size(); ++j) all_top = all_top && state.pos[j] == sides_[j].stages();
  if (all_top) {
    out.push_back(Op::loss_op());
    return;
  }
  const float target = table_[code * width_ + t];
  bool done = false;
  for_each_option(code, state, [&](const Side& m, const Advance& run, std::size_t child_code, int in, int others_in,
                                   int others_end) {
    if (done || t < std::max(others_in + run.peak, others_end)) return;
    const int p = state.pos[m.branch];
    const Mode mode = segment_mode(state.kind[m.branch], run.kind);
    std::vector<int> order;
    const std::size_t child = canonical(child_code, &order);
    const float v = static_cast<float>(run.cost) + table_[child * width_ + (t - in)] +
                    m.dp->value(p, run.to - 1, mode, t - others_end);
    if (v != target) return;
    done = true;
    const int branch = branch_of[m.branch];
    std::vector<int> child_branch_of(sides_.size());
    for (std::size_t s = 0; s < sides_.size(); ++s) child_branch_of[s] = branch_of[order[s]];
    emit_run(branch, p, run, out);
    emit(child, t - in, child_branch_of, out);
    m.dp->emit(p, run.to - 1, mode, t - others_end, branch, out);
  });
  if (!done) throw std::logic_error("InterleavedJoinDp::emit: no option reaches the table's value");
}

}  // namespace rematch
