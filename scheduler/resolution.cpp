#include "scheduler/resolution.hpp"

#include <cmath>
#include <cstdint>
#include <numeric>

#include "scheduler/join_dp.hpp"
#include "scheduler/solution_check.hpp"

namespace rematch {

namespace {

template <class Visit>
void for_each_size(const Graph& graph, Visit&& visit) {
  for (const Branch& b : graph.branches)
    for (const auto* values : {&b.cw, &b.cbw, &b.ftmp, &b.btmp})
      for (double v : *values) visit(v);
  visit(graph.loss.tmp);
}

}  // namespace

int total_stages(const Graph& graph) {
  int total = 0;
  for (const Branch& b : graph.branches) total += b.stages();
  return total;
}

double integer_size_gcd(const Graph& graph) {
  std::int64_t g = 0;
  bool integral = true;
  for_each_size(graph, [&](double v) {
    if (v != std::floor(v) || v > 9.0e15) integral = false;
    else g = std::gcd(g, static_cast<std::int64_t>(v));
  });
  if (!integral) return 0;
  return g == 0 ? 1.0 : static_cast<double>(g);
}

TableBytes nested_table_bytes(DpClass kind) {
  return [kind](const Graph& graph, int slots) { return nested_join_table_bytes(graph, slots, kind); };
}

int fitting_slots(const Graph& graph, const SolveOptions& options, const TableBytes& bytes) {
  int slots = default_slots;
  while (slots > 16 && bytes(graph, slots) > options.table_budget_bytes) slots = slots * 3 / 4;
  return slots;
}

std::optional<Resolution> resolution_for(const Graph& graph, double memory, const SolveOptions& options,
                                         const TableBytes& bytes) {
  auto fits = [&](double slots) {
    return slots <= 2e9 && bytes(graph, static_cast<int>(slots)) <= options.table_budget_bytes;
  };
  if (options.slots > 0) {
    if (!fits(options.slots)) return std::nullopt;
    return Resolution{memory / options.slots, options.slots, false};
  }
  if (const double g = integer_size_gcd(graph); g > 0) {
    const double slots = std::floor(memory / g);
    if (fits(slots)) return Resolution{g, static_cast<int>(slots), true};
  }
  const int slots = fitting_slots(graph, options, bytes);
  return Resolution{memory / slots, slots, false, slots < default_slots};
}

// One chain of every stage and loss stage, per forward order. The persistent class relaxes one or two rows per checkpoint where
// the full program relaxes up to 60; whole solves measured 10-20x faster (docs/solvers.md).
double nested_program_work(const Graph& graph, int slots, DpClass kind) {
  const double stages = total_stages(graph) + graph.num_branches();
  const double per_cell = kind == DpClass::persistent ? 1.0 / 12 : 1.0;
  return per_cell * double(distinct_branch_orders(graph).size()) * stages * stages * stages / 6 * slots;
}

Resolution nested_resolution(const std::optional<Resolution>& res, const Graph& graph, const SolveOptions& options,
                             DpClass kind) {
  if (res) return *res;
  throw InputError("--slots " + std::to_string(options.slots) + " needs " +
                   number_text(double(nested_join_table_bytes(graph, options.slots, kind)) / (1 << 20)) +
                   " MiB of tables, over the table budget");
}

std::string describe_program(const std::string& kind, const Resolution& res) {
  return kind + (res.unit ? "dynamic program at unit memory resolution (slot " + number_text(res.slot) + ")"
                          : "dynamic program over " + std::to_string(res.slots) + " memory slots of " +
                                number_text(res.slot) + " (sizes rounded up)");
}

}  // namespace rematch
