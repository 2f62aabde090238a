// How every solver hands back its result: the schedule replayed by the simulator (makespan and
// peak are the replay's, never a solver's own tables'), or InfeasibleBudget naming the least budget.
#pragma once

#include <string>

#include "scheduler/solver.hpp"

namespace rematch {

// `value` with 15 significant digits, for messages.
std::string number_text(double value);

// The Solution of `ops` as the simulator replays it within `memory_limit`; a schedule it rejects is
// a solver bug (std::logic_error).
Solution replayed_solution(const Graph& graph, double memory_limit, std::string solver, Schedule ops, bool exact,
                           std::string method);

// Throws InfeasibleBudget for `memory_limit` below `min_memory`; `who` ("solver revolve") is named
// in the message when not empty.
[[noreturn]] void throw_infeasible(double memory_limit, double min_memory, const std::string& who);

}  // namespace rematch
