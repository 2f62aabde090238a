// The schedules users already know, as fixed op lists (they do not adapt to a budget; the solver
// front checks their peak against it). Each works on chains and, branch after branch, on joins.
#pragma once

#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch {

// Every forward with tape, the loss, every backward: no recomputation, the most memory.
Schedule store_all_schedule(const Graph& graph);

// Keeps only the inputs; before each backward recomputes from x_0: the least memory of the
// classic strategies, quadratic time.
Schedule recompute_all_schedule(const Graph& graph);

// PyTorch's torch.utils.checkpoint.checkpoint_sequential: each branch is cut into `segments`
// runs of consecutive stages of near-equal count; all but the last run forward without tape,
// keeping their input; the last run keeps everything; each checkpointed run is recomputed with
// tape just before its backward. segments >= 1 (clamped to the branch's stage count).
Schedule segments_schedule(const Graph& graph, int segments);

// Chen et al. (2016), "Training deep nets with sublinear memory cost": segments of about sqrt(n)
// stages, i.e. segments_schedule with ceil(sqrt(n)) segments per branch.
Schedule sqrt_schedule(const Graph& graph);

}  // namespace rematch
