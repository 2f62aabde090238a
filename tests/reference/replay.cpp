// An independent, literal replay of docs/model.md#memory-and-operations, used to check the search's own output.
// It shares no model code with state_space.hpp: items are plain per-branch flags, and the memory
// is re-summed from them before every op.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/reference/exhaustive.hpp"
#include "tests/reference/graph_check.hpp"

namespace rematch::reference {

ReplayError::ReplayError(std::size_t index_, std::string rule_, const std::string& what)
    : std::runtime_error(what), index(index_), rule(std::move(rule_)) {}

namespace {

struct BranchItems {
  std::vector<bool> x, xbar, y;
  bool x0_gone = false;  // x_0 was removed once and can never come back
  bool complete = false;
};

class Replayer {
 public:
  Replayer(const Graph& g, double limit) : g_(g), limit_(limit) {
    detail::check_graph(g);
    for (const Branch& b : g.branches) {
      const std::size_t n = b.fw.size();
      BranchItems items{std::vector<bool>(n + 1), std::vector<bool>(n + 1),
                        std::vector<bool>(n + 1)};
      items.x[0] = true;
      state_.push_back(std::move(items));
    }
  }

  Result run(const std::vector<Op>& ops) {
    Result r{true, 0, memory(), ops};
    check_budget(r.peak, "the initial memory");
    for (index_ = 0; index_ < ops.size(); ++index_) {
      const double peak = apply(ops[index_]);
      r.peak = std::max(r.peak, peak);
      r.makespan += cost_;
    }
    current_ = " (end of schedule)";
    for (std::size_t j = 0; j < state_.size(); ++j) {
      if (!state_[j].complete) {
        fail("incomplete", "schedule ends before y^" + std::to_string(j) + "_0 is produced");
      }
    }
    return r;
  }

 private:
  [[noreturn]] void fail(const std::string& rule, const std::string& why) const {
    throw ReplayError(index_, rule, "op " + std::to_string(index_) + current_ + ": " + why);
  }

  double memory() const {
    double mem = 0;
    for (std::size_t j = 0; j < state_.size(); ++j) {
      const Branch& b = g_.branches[j];
      for (std::size_t i = 0; i < b.cw.size(); ++i) {
        if (state_[j].x[i]) mem += b.cw[i];
        if (state_[j].xbar[i]) mem += b.cbw[i];
        if (state_[j].y[i]) mem += b.cw[i];
      }
    }
    return mem;
  }

  void check_budget(double peak, const std::string& what) const {
    if (peak > limit_ + 1e-9 * std::max(1.0, std::abs(limit_))) {
      fail("over_budget", what + " needs " + std::to_string(peak) + " > budget " +
                              std::to_string(limit_));
    }
  }

  double apply(const Op& op) {
    current_ = " (" + to_string(op) + ")";
    if (op.kind == OpKind::loss) return loss();
    check_indices(op);
    switch (op.kind) {
      case OpKind::F_all:
      case OpKind::F_ck:
      case OpKind::F_none: return forward(op);
      case OpKind::B: return backward(op);
      default: return drop(op);
    }
  }

  void check_indices(const Op& op) const {
    if (op.branch < 0 || op.branch >= static_cast<int>(g_.branches.size())) {
      fail("bad_op", "no such branch");
    }
    const int n = static_cast<int>(g_.branches[op.branch].fw.size());
    const bool is_drop = op.kind == OpKind::drop_x || op.kind == OpKind::drop_xbar;
    if (op.stage < 0 || op.stage > (is_drop ? n : n - 1)) fail("bad_op", "no such stage");
  }

  // Requirement "x^j_i or xbar^j_i", naming x_0's loss when that is why it fails.
  void require_input(int j, int i) const {
    const BranchItems& s = state_[j];
    if (s.x[i] || s.xbar[i]) return;
    if (i == 0 && s.x0_gone) fail("x0_lost", "needs x^j_0, which was removed and cannot be recreated");
    fail("missing_input", "needs x_" + std::to_string(i) + " or xbar_" + std::to_string(i));
  }

  double forward(const Op& op) {
    const Branch& b = g_.branches[op.branch];
    BranchItems& s = state_[op.branch];
    const int i = op.stage;
    require_input(op.branch, i);
    const bool taped = op.kind == OpKind::F_all;
    const double peak = memory() + (taped ? b.cbw[i + 1] : b.cw[i + 1]) + b.ftmp[i];
    check_budget(peak, "the forward");
    (taped ? s.xbar : s.x)[i + 1] = true;
    if (op.kind == OpKind::F_none) {
      if (s.x[i]) {
        s.x[i] = false;
      } else {
        s.xbar[i] = false;
      }
      if (i == 0) s.x0_gone = true;
    }
    cost_ = b.fw[i];
    return peak;
  }

  double loss() {
    if (loss_done_) fail("loss_repeated", "the loss runs exactly once");
    double outputs = 0;
    for (std::size_t j = 0; j < state_.size(); ++j) {
      const int n = static_cast<int>(g_.branches[j].fw.size());
      require_input(static_cast<int>(j), n);
      outputs += g_.branches[j].cw[n];
    }
    const double peak = memory() + outputs + g_.loss_tmp;
    check_budget(peak, "the loss");
    for (std::size_t j = 0; j < state_.size(); ++j) {
      const std::size_t n = g_.branches[j].fw.size();
      state_[j].y[n] = true;
      state_[j].x[n] = false;
    }
    loss_done_ = true;
    cost_ = g_.loss_time;
    return peak;
  }

  double backward(const Op& op) {
    const Branch& b = g_.branches[op.branch];
    BranchItems& s = state_[op.branch];
    const int i = op.stage;
    if (!loss_done_) fail("before_loss", "a backward before the loss (no gradient exists yet)");
    if (!s.y[i + 1]) fail("missing_gradient", "needs y_" + std::to_string(i + 1));
    if (!s.xbar[i + 1]) fail("missing_xbar", "needs xbar_" + std::to_string(i + 1));
    require_input(op.branch, i);
    const double peak = memory() + b.cw[i] + b.btmp[i];
    check_budget(peak, "the backward");
    s.y[i + 1] = false;
    s.xbar[i + 1] = false;
    if (s.x[i]) s.x[i] = false;
    if (i == 0) {
      s.x0_gone = true;
      s.complete = true;  // y_0 leaves memory at once
    } else {
      s.y[i] = true;
    }
    cost_ = b.bw[i];
    return peak;
  }

  double drop(const Op& op) {
    BranchItems& s = state_[op.branch];
    const int i = op.stage;
    std::vector<bool>& items = op.kind == OpKind::drop_x ? s.x : s.xbar;
    if (!items[i]) fail("not_held", "drops an item that is not held");
    items[i] = false;
    if (op.kind == OpKind::drop_x && i == 0) s.x0_gone = true;
    cost_ = 0;
    return memory();
  }

  const Graph& g_;
  double limit_;
  std::vector<BranchItems> state_;
  bool loss_done_ = false;
  std::size_t index_ = 0;
  std::string current_;
  double cost_ = 0;
};

}  // namespace

Result replay(const Graph& g, const std::vector<Op>& ops, double memory_limit) {
  return Replayer(g, memory_limit).run(ops);
}

}  // namespace rematch::reference
