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

// Throws InputError naming the key and index of the first violation of docs/model.md#graphs
// (lengths, non-negative finite numbers, cbw[i] >= cw[i], at least one branch and one stage per
// branch). cbw[0] is never used: x_0 is data, xbar_0 never exists.
void validate(const Graph& graph);

}  // namespace rematch
