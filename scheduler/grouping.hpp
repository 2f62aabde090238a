// Long branches grouped into super-stages: runs of consecutive stages that a schedule treats as
// one stage. The grouped graph's costs bound those of every op its expansion runs (docs/model.md
// section 2), so a schedule valid for the grouped graph within M expands into one valid for the
// original graph within M, with the same makespan. The solvers use it where the full dynamic
// program would take too long; the result is optimal only within the grouped class.
//
// Group g of a branch covers stages [a, b) = [starts[g], starts[g+1]); X_g = x_a, Y_g = y_a,
// XBAR_{g+1} = {xbar_{a+1}, ..., xbar_b}. A grouped op expands as
//   F_ck g    F_ck a, F_none a+1, ..., F_none b-1
//   F_none g  F_none a, ..., F_none b-1 (on an XBAR_g input, the rest of XBAR_g dropped first)
//   F_all g   F_all a, ..., F_all b-1
//   B g       B b-1, ..., B a
//   drop      x_a, or every member of XBAR_g
#pragma once

#include <vector>

#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch {

// Per branch, the first stage of every group followed by the branch's stage count.
using StageGroups = std::vector<std::vector<int>>;

// `groups` runs of consecutive stages per branch, as even in length as possible (fewer when a
// branch is shorter).
StageGroups even_groups(const Graph& graph, int groups);

// The graph whose stages are the groups.
Graph grouped_graph(const Graph& graph, const StageGroups& groups);

// The op sequence on the original graph that a schedule of grouped_graph(graph, groups) stands for.
Schedule expand_grouped(const StageGroups& groups, const Schedule& grouped);

}  // namespace rematch
