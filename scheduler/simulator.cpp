#include "scheduler/simulator.hpp"

#include <algorithm>
#include <cmath>

#include "scheduler/op_memory.hpp"

namespace rematch {

bool exceeds(double peak, double limit) {
  return peak > limit + 1e-9 * std::max(1.0, std::abs(limit));
}

MemoryState::MemoryState(const Graph& graph) : graph_(&graph) {
  auto slots = std::make_shared<std::vector<int>>();
  int next = 1;
  for (const Branch& b : graph.branches) {
    slots->push_back(next);
    next += 1 + 3 * static_cast<int>(b.cw.size());
  }
  slots_ = std::move(slots);
  flags_.assign(next, 0);
  for (int j = 0; j < graph.num_branches(); ++j) put(j, 0, kX, graph.branches[j].cw[0]);
}

bool MemoryState::complete() const {
  for (int j = 0; j < graph_->num_branches(); ++j)
    if (!branch_done(j)) return false;
  return true;
}

void MemoryState::put(int branch, int i, Kind kind, double size) {
  std::uint8_t& held = flags_[slot(branch, i, kind)];
  if (!held) memory_ += size;
  held = 1;
}

void MemoryState::take(int branch, int i, Kind kind, double size) {
  std::uint8_t& held = flags_[slot(branch, i, kind)];
  if (held) memory_ -= size;
  held = 0;
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
    if (loss_done()) return fail("loss already ran (it runs exactly once)");
    for (int j = 0; j < graph_->num_branches(); ++j) {
      const int n = graph_->branches[j].stages();
      if (!holds_x(j, n) && !holds_xbar(j, n))
        return fail("loss needs x or xbar of branch " + std::to_string(j) + " at stage " + std::to_string(n));
    }
    step.peak = peak_while(memory_, loss_memory(*graph_));
    step.cost = graph_->loss.time;
    for (int j = 0; j < graph_->num_branches(); ++j) {
      const Branch& b = graph_->branches[j];
      const int n = b.stages();
      put(j, n, kY, b.cw[n]);
      take(j, n, kX, b.cw[n]);
    }
    flags_[0] = 1;
    step.ok = true;
    return step;
  }

  if (op.branch < 0 || op.branch >= graph_->num_branches())
    return fail("branch " + std::to_string(op.branch) + " out of range (graph has " +
                std::to_string(graph_->num_branches()) + " branches)");
  const Branch& b = graph_->branches[op.branch];
  const int j = op.branch, i = op.stage;

  if (op.kind == OpKind::drop) {
    if (i < 0 || i > b.stages())
      return fail("position " + std::to_string(i) + " out of range (branch " + std::to_string(j) + " has " +
                  std::to_string(b.stages() + 1) + " positions)");
    const bool plain = op.item == Item::x;
    if (!(plain ? holds_x(j, i) : holds_xbar(j, i)))
      return fail(std::string(item_name(op.item)) + "_" + std::to_string(i) + " is not held");
    take(j, i, plain ? kX : kXbar, plain ? b.cw[i] : b.cbw[i]);
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
      if (!holds_x(j, i) && !holds_xbar(j, i)) return fail(std::string(op_name(op.kind)) + " needs " + input);
      const bool taped = op.kind == OpKind::F_all;
      step.peak = peak_while(memory_, stage_op_memory(b, op.kind, i));
      step.cost = b.fw[i];
      if (taped) {
        put(j, i + 1, kXbar, b.cbw[i + 1]);
      } else {
        put(j, i + 1, kX, b.cw[i + 1]);
        if (op.kind == OpKind::F_none) {
          if (holds_x(j, i)) take(j, i, kX, b.cw[i]);
          else take(j, i, kXbar, b.cbw[i]);
        }
      }
      break;
    }
    case OpKind::B: {
      if (!holds_y(j, i + 1)) return fail("B needs the gradient y_" + std::to_string(i + 1));
      if (!holds_xbar(j, i + 1)) return fail("B needs xbar_" + std::to_string(i + 1));
      if (!holds_x(j, i) && !holds_xbar(j, i)) return fail("B needs " + input);
      step.peak = peak_while(memory_, stage_op_memory(b, op.kind, i));
      step.cost = b.bw[i];
      take(j, i + 1, kY, b.cw[i + 1]);
      take(j, i + 1, kXbar, b.cbw[i + 1]);
      take(j, i, kX, b.cw[i]);
      if (i == 0) flags_[(*slots_)[j]] = 1;  // y_0 leaves memory at once: the branch is done
      else put(j, i, kY, b.cw[i]);
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
