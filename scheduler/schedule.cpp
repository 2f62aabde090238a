#include "scheduler/schedule.hpp"

namespace rematch {

const char* op_name(OpKind kind) {
  switch (kind) {
    case OpKind::F_all: return "F_all";
    case OpKind::F_ck: return "F_ck";
    case OpKind::F_none: return "F_none";
    case OpKind::loss: return "loss";
    case OpKind::B: return "B";
    case OpKind::drop: return "drop";
  }
  return "?";
}

const char* item_name(Item item) { return item == Item::x ? "x" : "xbar"; }

std::string to_string(const Op& op) {
  std::string text = op_name(op.kind);
  if (op.kind == OpKind::loss) return text;
  if (op.kind == OpKind::drop) text += std::string(" ") + item_name(op.item);
  return text + " " + std::to_string(op.branch) + " " + std::to_string(op.stage);
}

std::string to_compact_string(const Schedule& schedule, bool show_branch) {
  std::string text;
  for (const Op& op : schedule) {
    if (!text.empty()) text += ' ';
    switch (op.kind) {
      case OpKind::F_all: text += "Fa"; break;
      case OpKind::F_ck: text += "Fc"; break;
      case OpKind::F_none: text += "Fn"; break;
      case OpKind::B: text += "B"; break;
      case OpKind::drop: text += op.item == Item::x ? "dx" : "dxb"; break;
      case OpKind::loss: text += "L"; continue;
    }
    if (show_branch) text += std::to_string(op.branch) + ".";
    text += std::to_string(op.stage);
  }
  return text;
}

}  // namespace rematch
