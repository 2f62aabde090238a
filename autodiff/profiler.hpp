// Measures a model on the real kernels and writes what the scheduler plans with (docs/model.md
// section 1): per stage fw/bw times (seconds) and cw/cbw/ftmp/btmp sizes (bytes), and the
// loss's time and transient memory. Sizes are read off an arena, so they are exactly what the
// executor will allocate:
//   cw[i]   the bytes of x_i;  cbw[i+1] the bytes F_all keeps (output plus tape);
//   ftmp[i] the largest extra while the forward runs, over both the taped and untaped forward;
//   btmp[i] the extra while the backward runs, beyond the y_i it allocates (for stage 0, which
//           makes no y_0, the extra beyond cw[0], or 0).
// Hence the executor's peak never exceeds the simulator's. It can stay below it by at most the
// largest cbw[i] - cw[i] (one ftmp serves both forwards: a taped forward of a multi-layer stage
// is charged its inner activations on top of keeping them) or cw[0] (no y_0 is made).
#pragma once

#include <vector>

#include "autodiff/model.hpp"
#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch::autodiff {

struct ProfileOptions {
  int repeats = 3;  // timed sweeps over each encoder after one warm-up sweep; medians are kept
};

// Branches that share an encoder share its measurements. The loss head's targets are replaced
// by a placeholder batch.
Graph profile(JoinModel& model, const ProfileOptions& options = {});

// The profile's times replaced by those of executed steps of `schedule` (one
// StepResult::op_seconds per step): per stage the median of its forward ops and of its
// backwards, over every step and the branches that share its encoder, and the loss op's median.
// Ops timed inside a step see the caches a step leaves them, which the profiler's sweeps only
// approximate; several steps make the medians robust to one slow step. Sizes are unchanged.
Graph calibrate(const Graph& profiled, const JoinModel& model, const Schedule& schedule,
                const std::vector<std::vector<double>>& steps_op_seconds);

}  // namespace rematch::autodiff
