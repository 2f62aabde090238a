#include "scheduler/graph.hpp"

#include <cmath>
#include <numeric>
#include <sstream>

namespace rematch {

double Graph::initial_memory() const {
  double total = 0;
  for (const Branch& b : branches) total += b.cw.front();
  return total;
}

double Graph::store_all_time() const {
  double total = loss.time;
  for (const Branch& b : branches) {
    total += std::accumulate(b.fw.begin(), b.fw.end(), 0.0);
    total += std::accumulate(b.bw.begin(), b.bw.end(), 0.0);
  }
  return total;
}

int Graph::first_identical(int j) const {
  int first = 0;
  while (!(branches[first] == branches[j])) ++first;
  return first;
}

namespace {

std::string number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

}  // namespace

void GraphTotals::add_sum(double& total, double value, const std::string& key, const char* what) {
  total += value;
  if (total > GraphLimits::max_value)
    throw InputError(key + ": the " + what + " of the graph add up to " + number(total) + ", above the limit of " +
                     number(GraphLimits::max_value));
}

void GraphTotals::add(const Branch& b, long long copies, const std::string& branch_key) {
  const auto key = [&](const char* name) { return branch_key.empty() ? std::string(name) : branch_key + "." + name; };
  branches_ += copies;
  if (branches_ > GraphLimits::max_branches)
    throw InputError(key("copies") + ": the graph has " + std::to_string(branches_) + " branches (copies included), above the limit of " +
                     std::to_string(GraphLimits::max_branches));
  stages_ += copies * b.stages();
  if (stages_ > GraphLimits::max_stages)
    throw InputError(key("fw") + ": the graph has " + std::to_string(stages_) + " stages (copies included), above the limit of " +
                     std::to_string(GraphLimits::max_stages));
  const auto sum = [&](const std::vector<double>& values) {
    return double(copies) * std::accumulate(values.begin(), values.end(), 0.0);
  };
  add_sum(times_, sum(b.fw), key("fw"), "times");
  add_sum(times_, sum(b.bw), key("bw"), "times");
  for (auto [values, name] : {std::pair{&b.cw, "cw"}, {&b.cbw, "cbw"}, {&b.ftmp, "ftmp"}, {&b.btmp, "btmp"}})
    add_sum(sizes_, sum(*values), key(name), "sizes");
}

void GraphTotals::add(const Loss& loss, const std::string& key) {
  add_sum(times_, loss.time, key + ".time", "times");
  add_sum(sizes_, loss.tmp, key + ".tmp", "sizes");
}

double distinct_order_count(const Graph& graph) {
  std::vector<int> copies(graph.branches.size(), 0);
  for (int j = 0; j < graph.num_branches(); ++j) ++copies[graph.first_identical(j)];
  double orders = 1;
  int placed = 0;
  for (int m : copies)
    for (int r = 1; r <= m; ++r) orders = orders * ++placed / r;
  return std::round(orders);
}

namespace {

std::string where(const std::string& branch_prefix, const char* key) { return branch_prefix + key; }

void check_numbers(const std::vector<double>& values, const std::string& key) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]))
      throw InputError(key + "[" + std::to_string(i) + "] is not a finite number");
    if (values[i] > GraphLimits::max_value)
      throw InputError(key + "[" + std::to_string(i) + "] = " + number(values[i]) + " is above the limit of " +
                       number(GraphLimits::max_value));
    if (values[i] < 0)
      throw InputError(key + "[" + std::to_string(i) + "] is negative (" + std::to_string(values[i]) + ")");
  }
}

void check_length(const std::vector<double>& values, std::size_t expected, const std::string& key) {
  if (values.size() != expected)
    throw InputError(key + " has length " + std::to_string(values.size()) + ", expected " +
                     std::to_string(expected));
}

}  // namespace

void validate(const Graph& graph) {
  if (graph.branches.empty()) throw InputError("graph has no branch");
  GraphTotals totals;
  for (std::size_t j = 0; j < graph.branches.size(); ++j) {
    const Branch& b = graph.branches[j];
    const std::string prefix = graph.is_chain() ? "" : "branches[" + std::to_string(j) + "].";
    const std::size_t n = b.fw.size();
    if (n == 0) throw InputError(where(prefix, "fw") + " is empty: a branch needs at least one stage");
    check_length(b.bw, n, where(prefix, "bw"));
    check_length(b.cw, n + 1, where(prefix, "cw"));
    check_length(b.cbw, n + 1, where(prefix, "cbw"));
    check_length(b.ftmp, n, where(prefix, "ftmp"));
    check_length(b.btmp, n, where(prefix, "btmp"));
    for (auto [values, key] : {std::pair{&b.fw, "fw"}, {&b.bw, "bw"}, {&b.cw, "cw"}, {&b.cbw, "cbw"},
                               {&b.ftmp, "ftmp"}, {&b.btmp, "btmp"}})
      check_numbers(*values, where(prefix, key));
    for (std::size_t i = 0; i <= n; ++i)
      if (b.cbw[i] < b.cw[i])
        throw InputError(where(prefix, "cbw") + "[" + std::to_string(i) + "] = " + std::to_string(b.cbw[i]) +
                         " is smaller than cw[" + std::to_string(i) + "] = " + std::to_string(b.cw[i]));
    totals.add(b, 1, graph.is_chain() ? std::string() : "branches[" + std::to_string(j) + "]");
  }
  if (!std::isfinite(graph.loss.time) || graph.loss.time < 0)
    throw InputError("loss.time must be a non-negative finite number");
  if (!std::isfinite(graph.loss.tmp) || graph.loss.tmp < 0)
    throw InputError("loss.tmp must be a non-negative finite number");
  totals.add(graph.loss, "loss");
  const double orders = distinct_order_count(graph);
  double stages = 0;
  for (const Branch& b : graph.branches) stages += b.stages();
  if (orders > GraphLimits::max_orders)
    throw InputError("branches: " + number(orders) + " forward orders of " + std::to_string(graph.num_branches()) +
                     " branches (identical ones counted once), above the limit of " + number(GraphLimits::max_orders));
  if (orders * stages * stages * stages > GraphLimits::max_order_work)
    throw InputError("branches: " + number(orders) + " forward orders x " + number(stages) + "^3 stages = " +
                     number(orders * stages * stages * stages) + ", above the limit of " +
                     number(GraphLimits::max_order_work) + " (the least-memory recursion would take minutes)");
}

}  // namespace rematch
