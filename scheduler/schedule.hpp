// A schedule is data: the sequence of docs/model.md#memory-and-operations operations, replayable by the simulator.
#pragma once

#include <string>
#include <vector>

namespace rematch {

enum class OpKind { F_all, F_ck, F_none, loss, B, drop };
enum class Item { x, xbar };  // what a drop removes

struct Op {
  OpKind kind = OpKind::loss;
  int branch = 0;
  int stage = 0;         // unused by loss
  Item item = Item::x;   // used by drop only

  static Op f_all(int branch, int stage) { return {OpKind::F_all, branch, stage, Item::x}; }
  static Op f_ck(int branch, int stage) { return {OpKind::F_ck, branch, stage, Item::x}; }
  static Op f_none(int branch, int stage) { return {OpKind::F_none, branch, stage, Item::x}; }
  static Op loss_op() { return {OpKind::loss, 0, 0, Item::x}; }
  static Op b(int branch, int stage) { return {OpKind::B, branch, stage, Item::x}; }
  static Op drop(Item item, int branch, int stage) { return {OpKind::drop, branch, stage, item}; }

  friend bool operator==(const Op&, const Op&) = default;
};

using Schedule = std::vector<Op>;

const char* op_name(OpKind kind);  // "F_all", "F_ck", "F_none", "loss", "B", "drop"
const char* item_name(Item item);  // "x", "xbar"

// docs/model.md notation, e.g. "F_all 0 3", "loss", "drop xbar 1 2" (branch then stage).
std::string to_string(const Op& op);
// Compact notation for people: "Fa3 Fc4 Fn5 L B5 dx3" on a chain, "Fa1.3" (branch.stage) on a join.
std::string to_compact_string(const Schedule& schedule, bool show_branch);

}  // namespace rematch
