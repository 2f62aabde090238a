#include "scheduler/baselines.hpp"

#include <algorithm>
#include <cmath>

namespace rematch {

namespace {

// Forward from a held x_first (kept) to x_last without tape.
void advance(Schedule& ops, int branch, int first, int last) {
  for (int s = first; s < last; ++s) ops.push_back(s == first ? Op::f_ck(branch, s) : Op::f_none(branch, s));
}

void taped_forward(Schedule& ops, int branch, int first, int last) {
  for (int s = first; s < last; ++s) ops.push_back(Op::f_all(branch, s));
}

void backward(Schedule& ops, int branch, int last, int first) {
  for (int s = last - 1; s >= first; --s) ops.push_back(Op::b(branch, s));
}

// Stage boundaries of `segments` runs of near-equal length (the longer runs first).
std::vector<int> cut(int stages, int segments) {
  segments = std::clamp(segments, 1, stages);
  std::vector<int> bounds{0};
  for (int s = 0; s < segments; ++s)
    bounds.push_back(bounds.back() + stages / segments + (s < stages % segments ? 1 : 0));
  return bounds;
}

Schedule segmented(const Graph& graph, const std::vector<std::vector<int>>& bounds) {
  Schedule ops;
  for (int j = 0; j < graph.num_branches(); ++j) {
    const auto& b = bounds[j];
    for (std::size_t s = 0; s + 2 < b.size(); ++s) advance(ops, j, b[s], b[s + 1]);
    taped_forward(ops, j, b[b.size() - 2], b.back());
  }
  ops.push_back(Op::loss_op());
  for (int j = 0; j < graph.num_branches(); ++j) {
    const auto& b = bounds[j];
    backward(ops, j, b.back(), b[b.size() - 2]);
    for (std::size_t s = b.size() - 2; s-- > 0;) {
      taped_forward(ops, j, b[s], b[s + 1]);
      backward(ops, j, b[s + 1], b[s]);
    }
  }
  return ops;
}

}  // namespace

Schedule store_all_schedule(const Graph& graph) { return segments_schedule(graph, 1); }

Schedule recompute_all_schedule(const Graph& graph) {
  Schedule ops;
  for (int j = 0; j < graph.num_branches(); ++j) advance(ops, j, 0, graph.branches[j].stages());
  ops.push_back(Op::loss_op());
  for (int j = 0; j < graph.num_branches(); ++j)
    for (int s = graph.branches[j].stages() - 1; s >= 0; --s) {
      advance(ops, j, 0, s);
      ops.push_back(Op::f_all(j, s));
      ops.push_back(Op::b(j, s));
    }
  return ops;
}

Schedule segments_schedule(const Graph& graph, int segments) {
  std::vector<std::vector<int>> bounds;
  for (const Branch& b : graph.branches) bounds.push_back(cut(b.stages(), segments));
  return segmented(graph, bounds);
}

Schedule sqrt_schedule(const Graph& graph) {
  std::vector<std::vector<int>> bounds;
  for (const Branch& b : graph.branches)
    bounds.push_back(cut(b.stages(), static_cast<int>(std::ceil(std::sqrt(double(b.stages()))))));
  return segmented(graph, bounds);
}

}  // namespace rematch
