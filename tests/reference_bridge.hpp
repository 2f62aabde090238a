// Conversions between the library's types and the independent reference's (tests only).
#pragma once

#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"
#include "tests/reference/exhaustive.hpp"

namespace rematch::testing {

inline Graph from_reference(const reference::Graph& r) {
  Graph g;
  for (const reference::Branch& b : r.branches) g.branches.push_back({b.fw, b.bw, b.cw, b.cbw, b.ftmp, b.btmp});
  g.loss = {r.loss_time, r.loss_tmp};
  return g;
}

inline std::vector<reference::Op> to_reference(const Schedule& ops) {
  std::vector<reference::Op> out;
  for (const Op& op : ops) {
    reference::OpKind kind = reference::OpKind::loss;
    switch (op.kind) {
      case OpKind::F_all: kind = reference::OpKind::F_all; break;
      case OpKind::F_ck: kind = reference::OpKind::F_ck; break;
      case OpKind::F_none: kind = reference::OpKind::F_none; break;
      case OpKind::loss: kind = reference::OpKind::loss; break;
      case OpKind::B: kind = reference::OpKind::B; break;
      case OpKind::drop: kind = op.item == Item::x ? reference::OpKind::drop_x : reference::OpKind::drop_xbar; break;
    }
    out.push_back({kind, op.branch, op.stage});
  }
  return out;
}

inline Schedule from_reference(const std::vector<reference::Op>& ops) {
  Schedule out;
  for (const reference::Op& op : ops) {
    switch (op.kind) {
      case reference::OpKind::F_all: out.push_back(Op::f_all(op.branch, op.stage)); break;
      case reference::OpKind::F_ck: out.push_back(Op::f_ck(op.branch, op.stage)); break;
      case reference::OpKind::F_none: out.push_back(Op::f_none(op.branch, op.stage)); break;
      case reference::OpKind::loss: out.push_back(Op::loss_op()); break;
      case reference::OpKind::B: out.push_back(Op::b(op.branch, op.stage)); break;
      case reference::OpKind::drop_x: out.push_back(Op::drop(Item::x, op.branch, op.stage)); break;
      case reference::OpKind::drop_xbar: out.push_back(Op::drop(Item::xbar, op.branch, op.stage)); break;
    }
  }
  return out;
}

}  // namespace rematch::testing
