#include "scheduler/simulator.hpp"

#include <algorithm>
#include <cmath>

namespace rematch {

bool exceeds(double peak, double limit) {
  return peak > limit + 1e-9 * std::max(1.0, std::abs(limit));
}

MemoryState::MemoryState(const Graph& graph) : graph_(&graph) {
  for (const Branch& b : graph.branches) {
    const std::size_t positions = b.cw.size();
    x_.emplace_back(positions, 0);
    xbar_.emplace_back(positions, 0);
    y_.emplace_back(positions, 0);
    x_.back()[0] = 1;
    memory_ += b.cw[0];
  }
  branch_done_.assign(graph.branches.size(), 0);
}

bool MemoryState::complete() const {
  return std::all_of(branch_done_.begin(), branch_done_.end(), [](char done) { return done; });
}

void MemoryState::put(std::vector<char>& held, int i, double size) {
  if (!held[i]) memory_ += size;
  held[i] = 1;
}

void MemoryState::take(std::vector<char>& held, int i, double size) {
  if (held[i]) memory_ -= size;
  held[i] = 0;
}

std::string MemoryState::check_stage(const Op& op, int stage_count) const {
  if (op.stage < 0 || op.stage >= stage_count)
    return "stage " + std::to_string(op.stage) + " out of range (branch " + std::to_string(op.branch) +
           " has " + std::to_string(stage_count) + " stages)";
  return {};
}

MemoryState::Step MemoryState::apply(const Op& op) {
  Step step;
  auto fail = [&step](std::string reason) {
    step.reason = std::move(reason);
    return step;
  };
  if (op.kind == OpKind::loss) {
    if (loss_done_) return fail("loss already ran (it runs exactly once)");
    double outputs = 0;
    for (int j = 0; j < graph_->num_branches(); ++j) {
      const int n = graph_->branches[j].stages();
      if (!x_[j][n] && !xbar_[j][n])
        return fail("loss needs x or xbar of branch " + std::to_string(j) + " at stage " + std::to_string(n));
      outputs += graph_->branches[j].cw[n];
    }
    step.peak = memory_ + outputs + graph_->loss.tmp;
    step.cost = graph_->loss.time;
    for (int j = 0; j < graph_->num_branches(); ++j) {
      const Branch& b = graph_->branches[j];
      const int n = b.stages();
      put(y_[j], n, b.cw[n]);
      take(x_[j], n, b.cw[n]);
    }
    loss_done_ = true;
    step.ok = true;
    return step;
  }

  if (op.branch < 0 || op.branch >= graph_->num_branches())
    return fail("branch " + std::to_string(op.branch) + " out of range (graph has " +
                std::to_string(graph_->num_branches()) + " branches)");
  const Branch& b = graph_->branches[op.branch];
  const int j = op.branch, i = op.stage;
  auto& x = x_[j];
  auto& xbar = xbar_[j];
  auto& y = y_[j];

  if (op.kind == OpKind::drop) {
    if (i < 0 || i > b.stages())
      return fail("position " + std::to_string(i) + " out of range (branch " + std::to_string(j) + " has " +
                  std::to_string(b.stages() + 1) + " positions)");
    auto& held = op.item == Item::x ? x : xbar;
    if (!held[i]) return fail(std::string(item_name(op.item)) + "_" + std::to_string(i) + " is not held");
    take(held, i, op.item == Item::x ? b.cw[i] : b.cbw[i]);
    step.peak = memory_;
    step.ok = true;
    return step;
  }

  if (std::string bad = check_stage(op, b.stages()); !bad.empty()) return fail(bad);
  const std::string input = "x_" + std::to_string(i) + " or xbar_" + std::to_string(i);

  switch (op.kind) {
    case OpKind::F_all:
    case OpKind::F_ck:
    case OpKind::F_none: {
      if (!x[i] && !xbar[i]) return fail(std::string(op_name(op.kind)) + " needs " + input);
      const bool taped = op.kind == OpKind::F_all;
      step.peak = memory_ + (taped ? b.cbw[i + 1] : b.cw[i + 1]) + b.ftmp[i];
      step.cost = b.fw[i];
      if (taped) {
        put(xbar, i + 1, b.cbw[i + 1]);
      } else {
        put(x, i + 1, b.cw[i + 1]);
        if (op.kind == OpKind::F_none) {
          if (x[i]) take(x, i, b.cw[i]);
          else take(xbar, i, b.cbw[i]);
        }
      }
      break;
    }
    case OpKind::B: {
      if (!y[i + 1]) return fail("B needs the gradient y_" + std::to_string(i + 1));
      if (!xbar[i + 1]) return fail("B needs xbar_" + std::to_string(i + 1));
      if (!x[i] && !xbar[i]) return fail("B needs " + input);
      step.peak = memory_ + b.cw[i] + b.btmp[i];
      step.cost = b.bw[i];
      take(y, i + 1, b.cw[i + 1]);
      take(xbar, i + 1, b.cbw[i + 1]);
      take(x, i, b.cw[i]);
      if (i == 0) branch_done_[j] = 1;  // y_0 leaves memory at once
      else put(y, i, b.cw[i]);
      break;
    }
    default: break;
  }
  step.ok = true;
  return step;
}

SimulationResult simulate(const Graph& graph, const Schedule& schedule, double memory_limit) {
  SimulationResult result;
  MemoryState state(graph);
  result.peak = state.memory();
  auto invalid = [&result](std::size_t index, std::string reason) {
    result.bad_op = index;
    result.reason = std::move(reason);
    return result;
  };
  if (exceeds(result.peak, memory_limit))
    return invalid(0, "the inputs alone need " + std::to_string(result.peak) + ", over the memory limit");
  for (std::size_t k = 0; k < schedule.size(); ++k) {
    MemoryState::Step step = state.apply(schedule[k]);
    if (!step.ok) return invalid(k, step.reason);
    if (exceeds(step.peak, memory_limit))
      return invalid(k, to_string(schedule[k]) + " needs " + std::to_string(step.peak) +
                            ", over the memory limit " + std::to_string(memory_limit));
    result.trace.push_back({result.makespan, result.makespan + step.cost, step.peak, state.memory()});
    result.makespan += step.cost;
    result.peak = std::max(result.peak, step.peak);
  }
  if (!state.complete()) {
    if (!state.loss_done()) return invalid(schedule.size(), "incomplete: the loss never ran");
    int j = 0;
    while (state.branch_done(j)) ++j;
    return invalid(schedule.size(), "incomplete: B " + std::to_string(j) + " 0 never ran (y_0 of branch " +
                                        std::to_string(j) + " was never produced)");
  }
  result.valid = true;
  return result;
}

}  // namespace rematch
