// How finely the dynamic programs divide the budget: unit slots when every size is a multiple of
// one integer and the tables fit, else the finest slot count whose tables fit; and how much work
// the nested program's table fill is, which decides when long graphs are grouped.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "scheduler/chain_dp.hpp"
#include "scheduler/graph.hpp"
#include "scheduler/solver.hpp"

namespace rematch {

constexpr int default_slots = 4096;  // a slot is 0.025% of the budget

struct Resolution {
  double slot = 1;
  int slots = 0;
  bool unit = false;  // slots are a divisor of every size: no rounding at all
  bool reduced = false;  // fewer than default_slots, for the tables to fit the table budget
};

// Table bytes of a program at a slot count.
using TableBytes = std::function<std::size_t(const Graph&, int)>;

// Stages of all branches together.
int total_stages(const Graph& graph);

// The largest integer dividing every size, or 0 when some size is not an integer.
double integer_size_gcd(const Graph& graph);

// The nested program's table bytes (nested_join_table_bytes) for the class `kind`.
TableBytes nested_table_bytes(DpClass kind);

// The most slots, up to 4096 and at least 16, whose tables (`bytes`) fit the table budget.
int fitting_slots(const Graph& graph, const SolveOptions& options, const TableBytes& bytes);

// The finest resolution whose tables (`bytes`) fit the table budget: unit slots for integer sizes,
// else up to 4096 slots. Empty when a slot count forced by the options does not fit.
std::optional<Resolution> resolution_for(const Graph& graph, double memory, const SolveOptions& options,
                                         const TableBytes& bytes);

// The nested program's resolution (resolution_for), or an InputError naming the forced slot count.
Resolution nested_resolution(const std::optional<Resolution>& res, const Graph& graph, const SolveOptions& options,
                             DpClass kind);

// Cell updates of the nested program's table fill, up to a constant (SolveOptions::work_limit).
double nested_program_work(const Graph& graph, int slots, DpClass kind);

// "<kind>dynamic program at unit memory resolution (slot 4)", or over N slots of a size: for methods.
std::string describe_program(const std::string& kind, const Resolution& res);

}  // namespace rematch
