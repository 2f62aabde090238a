// The exit statuses of every rematch command (docs/cli.md), and the handling of allocation
// failures wherever they happen.
#pragma once

namespace rematch::cli {

constexpr int exit_ok = 0;
constexpr int exit_invalid_schedule = 1;  // simulate found an invalid op
constexpr int exit_infeasible = 2;        // the budget is below the least feasible one (named)
constexpr int exit_bad_input = 3;         // any other bad input, or an output that cannot be written
constexpr int exit_out_of_memory = 4;     // an allocation failed (a process memory limit, or none left)

// The one-line message of exit_out_of_memory, without the "rematch: " prefix.
constexpr const char* out_of_memory_message =
    "out of memory: an allocation failed (raise the process's memory limit, or ask for less)";

// Makes an allocation failure (std::bad_alloc, std::length_error) that escapes where no handler
// can catch it (a noexcept function, a parallel region) end the process with the one-line
// message and exit_out_of_memory instead of "terminate called ...".
void install_out_of_memory_terminate_handler();

}  // namespace rematch::cli
