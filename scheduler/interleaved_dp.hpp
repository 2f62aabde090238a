// Join graphs whose reversals interleave segment by segment.
//
// Each branch keeps a stack of checkpoints from its forward sweep (x_j by F_ck/F_none, or xbar_j by
// F_all j-1 then dropping x_{j-1}); after the loss the segments between consecutive checkpoints are
// reversed, those of different branches in any merged order, each as a chain sub-problem (ChainDp,
// full end) within the memory the other branches leave it. The sub-problem V(p, k, T): each branch
// j holds its checkpoint at p_j (kind k_j: x or xbar); forward every branch to its output, run the
// loss, reverse every branch down to its p_j, all within T slots (everything held counted). The
// segment reversed last is the one whose checkpoint was taken first, so V picks which branch
// advances first (two branches A and B shown):
//   V(a, ka, b, kb, T) = min over a' > a and k' of
//       fw_A[a..a'-1] + V(a', k', b, kb, T - |in_a|) + R_A(a..a'-1, ka, k', T - |held by B at the end|)
//     and the same with the roles of A and B exchanged; V(n_A, ., n_B, ., T) is the loss.
// Every merge of the branches' segment sequences is in the class (the forwards run in the reverse
// order of the reversals); the nested (branch-sequential) class is not a subset, since its spines
// may end segments early, so the optimal solver takes the better of the two.
//
// The table has prod_j 2 (n_j + 1) rows of max_memory + 1 budgets, each relaxed by 2 sum_j (n_j - p_j)
// forward runs: fine for two branches, for three only when the branches are short (work()).
// Identical branches (siamese, triplet) are interchangeable, so only states whose identical
// branches' checkpoints come in ascending order are computed (about 1/g! of them for g identical
// branches); a state is read through its sorted form, and emission follows the permutation back to
// the real branches.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "scheduler/chain_dp.hpp"
#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"

namespace rematch {

class InterleavedJoinDp {
 public:
  // `graph` must have two branches or more; sizes in slots of `slot` (rounded up), budgets
  // 0..max_memory. fold_identical = false computes every state (for tests of the folding).
  InterleavedJoinDp(const Graph& graph, double slot, int max_memory, bool fold_identical = true);

  float value(int memory) const;    // least makespan, ChainDp::infinity if infeasible
  int least_memory() const;         // least budget (slots) with a finite value, max_memory + 1 if none
  Schedule emit(int memory) const;  // an optimal schedule of the class

  // Bytes of the tables allocated at `max_memory` slots: the distinct branches' chains', and V's rows of
  // every state (only the computed rows are touched, but an address-space limit counts them all).
  static std::size_t table_bytes(const Graph& graph, int max_memory);
  // Budget-cells relaxed while filling V (one float add-and-min each), identical branches folded.
  static double work(const Graph& graph, int max_memory);

 private:
  struct Side {  // one branch seen from V
    int branch = 0;            // its slot in a state; the graph's branch, up to the folding
    const ChainDp* dp = nullptr;
    std::size_t stride = 0;    // of the branch's digit (2 position + kind) in a state code
    int group = 0;             // the first branch identical to it (itself if none, or unfolded)
    int stages() const { return dp->chain().stages - 1; }
    int held(int position, Input kind) const;         // the checkpoint's size
    int held_at_end(int position, Input kind) const;  // what stays once V is done down to it
  };
  struct Advance {  // one forward run of one branch, from its checkpoint to the next
    int to = 0;
    Input kind = Input::x;
    double cost = 0;
    int peak = 0;  // of the run's ops, counting the branch's own items only
  };
  // A state: each branch's checkpoint position and kind.
  struct State {
    std::vector<int> pos;
    std::vector<Input> kind;
  };
  State decode(std::size_t code) const;
  // The code of the computed state equivalent to `code` (identical branches' digits ascending);
  // order[s], when given, receives the slot of `code` whose digit went to slot s.
  std::size_t canonical(std::size_t code, std::vector<int>* order = nullptr) const;
  std::vector<Advance> advances(const Side& side, int from, Input kind) const;
  // Calls visit(mover, run, child code (not folded), own input size, others' size during the run,
  // at the end); of identical branches at the same checkpoint, only the first moves.
  template <class Visit>
  void for_each_option(std::size_t code, const State& state, Visit&& visit) const;
  void fill(std::size_t code);
  // `branch_of[s]`: the graph's branch that slot s of `code` stands for.
  void emit(std::size_t code, int memory, const std::vector<int>& branch_of, Schedule& out) const;
  static void emit_run(int branch, int from, const Advance& run, Schedule& out);

  static constexpr std::size_t max_sides = 64;
  std::vector<std::unique_ptr<ChainDp>> chains_;  // one per distinct branch
  std::vector<Side> sides_;
  bool folded_ = false;     // some branches are folded with an identical one
  std::size_t states_ = 1;  // state codes 0..states_-1; the all-x-at-0 state is code 0
  int loss_tmp_ = 0;
  double loss_time_ = 0;
  int width_ = 0;  // budgets 0..max_memory
  Table table_;  // rows of computed states only are written (fill())
};

}  // namespace rematch
