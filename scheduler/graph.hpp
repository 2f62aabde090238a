// The model of docs/model.md#graphs: a join graph of k >= 1 branches meeting in one loss node.
// A chain is a join graph with one branch.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace rematch {

// Rejected input (graph, schedule, budget, option). The message names the offending key and index.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One branch of n stages; stage i maps x_i to x_{i+1}. Names and meanings are rotor's (docs/model.md#graphs).
struct Branch {
  std::vector<double> fw;    // n: forward time of stage i
  std::vector<double> bw;    // n: backward time of stage i
  std::vector<double> cw;    // n+1: size of x_i (and of its gradient y_i)
  std::vector<double> cbw;   // n+1: size of xbar_i (x_i plus what stage i-1 keeps for its backward)
  std::vector<double> ftmp;  // n: transient memory of the forward of stage i
  std::vector<double> btmp;  // n: transient memory of the backward of stage i

  int stages() const { return static_cast<int>(fw.size()); }
  friend bool operator==(const Branch&, const Branch&) = default;
};

struct Loss {
  double time = 0;  // forward and backward of the loss together
  double tmp = 0;   // its transient memory
  friend bool operator==(const Loss&, const Loss&) = default;
};

struct Graph {
  std::vector<Branch> branches;
  Loss loss;

  int num_branches() const { return static_cast<int>(branches.size()); }
  bool is_chain() const { return branches.size() == 1; }
  // Memory held before the first op: every branch input x^j_0.
  double initial_memory() const;
  // Makespan of a schedule without recomputation: every forward, the loss and every backward once.
  double store_all_time() const;
  // The first branch identical to branch j (j itself if none comes before it): identical
  // branches (siamese, triplet) are interchangeable in every schedule.
  int first_identical(int j) const;
};

// What a graph may hold (docs/cli.md, "Limits"). Values and sums up to max_value keep every
// makespan and peak the solvers form finite, in their float tables too (a makespan is at most
// stages x the sum of all times). The counts bound the work: the least-memory recursion takes
// about orders x stages^3 steps (a 1000-stage chain's least budget and solve take tens of seconds
// on two cores; docs/solvers.md), and the nested program has up to
// 2^branches tables per order.
struct GraphLimits {
  static constexpr double max_value = 1e30;      // each number; the sum of all times; of all sizes
  static constexpr int max_stages = 1000;        // stages of all branches together, copies included
  static constexpr int max_branches = 8;         // branches, copies included
  static constexpr double max_orders = 720;      // forward orders (identical branches counted once)
  static constexpr double max_order_work = 1e9;    // orders x stages^3 (a chain of max_stages)
};

// Running totals of a graph as its branches are added, against GraphLimits: add() throws
// InputError naming the key (under `branch_key`, e.g. "branches[2].fw"; "fw" for an empty one) and
// the limit when a total passes it.
class GraphTotals {
 public:
  void add(const Branch& branch, long long copies, const std::string& branch_key);
  void add(const Loss& loss, const std::string& key);

 private:
  void add_sum(double& total, double value, const std::string& key, const char* what);
  double times_ = 0, sizes_ = 0;
  long long stages_ = 0, branches_ = 0;
};

// Forward orders of the branches worth trying: k! / (m_1! m_2! ...) for groups of m_i identical
// branches (join_dp.hpp's distinct_branch_orders enumerates them).
double distinct_order_count(const Graph& graph);

// Throws InputError naming the key and index of the first violation of docs/model.md#graphs
// (lengths, non-negative finite numbers, cbw[i] >= cw[i], at least one branch and one stage per
// branch) or of GraphLimits. cbw[0] is never used: x_0 is data, xbar_0 never exists.
void validate(const Graph& graph);

}  // namespace rematch
