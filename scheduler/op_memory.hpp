// The model's memory rule, in one place. While an op runs, the memory in use is what is held
// before it, plus the op's output, plus its transient memory (docs/model.md, "Memory"):
//
//   op                output                     transient
//   F_all i           xbar_{i+1}: cbw[i+1]       ftmp[i]
//   F_ck i, F_none i  x_{i+1}:    cw[i+1]        ftmp[i]
//   B i               y_i:        cw[i]          btmp[i]
//   loss              every y^j_{n_j}: cw[n_j]   loss.tmp
//
// A drop frees its item at once. The simulator and the exhaustive search compute their peaks
// here; the dynamic programs, whose sizes are memory slots and whose ops are fused, are tested
// against it (tests/scheduler/test_memory_rule.cpp).
#pragma once

#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch {

struct OpMemory {
  double output = 0;
  double transient = 0;
};

// A stage op (F_all, F_ck, F_none or B) of stage i of `branch`.
inline OpMemory stage_op_memory(const Branch& branch, OpKind kind, int i) {
  switch (kind) {
    case OpKind::F_all: return {branch.cbw[i + 1], branch.ftmp[i]};
    case OpKind::F_ck:
    case OpKind::F_none: return {branch.cw[i + 1], branch.ftmp[i]};
    case OpKind::B: return {branch.cw[i], branch.btmp[i]};
    default: return {};
  }
}

// The loss: the gradients of every branch output (summed in branch order), and its transient.
inline OpMemory loss_memory(const Graph& graph) {
  double outputs = 0;
  for (const Branch& b : graph.branches) outputs += b.cw[b.stages()];
  return {outputs, graph.loss.tmp};
}

// The memory in use while an op runs with `held` before it.
inline double peak_while(double held, const OpMemory& op) { return held + op.output + op.transient; }

}  // namespace rematch
