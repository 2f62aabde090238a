// Schedules and solutions as JSON (docs/model.md#files).
#pragma once

#include <string>

#include "scheduler/schedule.hpp"
#include "scheduler/solver.hpp"

namespace rematch {

// Reads {"ops": [{"op": "F_ck", "branch": 0, "stage": 3}, {"op": "loss"}, {"op": "drop",
// "item": "xbar", "branch": 1, "stage": 2}, ...]} (other keys ignored; "branch" defaults to 0).
Schedule parse_schedule(const std::string& json_text);
Schedule read_schedule_file(const std::string& path);

// {"solver", "exact", "memory_limit", "makespan", "peak_memory", "ops", ...}; `extra` is a JSON
// object whose keys are added (e.g. overhead figures).
std::string solution_to_json(const Solution& solution, const std::string& extra_json = "{}");
// What `rematch solve --format json` prints: solution_to_json with the overhead over store-all
// ("store_all_makespan", "overhead_pct").
std::string solve_result_json(const Graph& graph, const Solution& solution);

// Whole-file read with a clear error for a missing or unreadable file.
std::string read_text_file(const std::string& path);

}  // namespace rematch
