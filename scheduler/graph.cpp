#include "scheduler/graph.hpp"

#include <cmath>
#include <numeric>

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

std::string where(const std::string& branch_prefix, const char* key) { return branch_prefix + key; }

void check_numbers(const std::vector<double>& values, const std::string& key) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]))
      throw InputError(key + "[" + std::to_string(i) + "] is not a finite number");
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
  }
  if (!std::isfinite(graph.loss.time) || graph.loss.time < 0)
    throw InputError("loss.time must be a non-negative finite number");
  if (!std::isfinite(graph.loss.tmp) || graph.loss.tmp < 0)
    throw InputError("loss.tmp must be a non-negative finite number");
}

}  // namespace rematch
