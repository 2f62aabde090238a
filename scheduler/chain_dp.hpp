// The chain dynamic program behind the `optimal` solver.
//
// It extends rotor's persistent program (Beaumont et al. 2019) with sub-problems that give their
// input up before their own backward (docs/model.md#a-worked-example, ../docs/solvers.md): a sub-problem
// (i, l, in, start, end) holds its input at position i (x_i or xbar_i), the gradient y_{l+1} and,
// with start = G, xbar_{l+1}; it ends
//   full     with y_i produced (an xbar input stays, an x input is consumed by B_i),
//   early    with y_{i+1} and xbar_{i+1} held and the input gone (B_i left to the caller),
//   consumed with y_{i+1} held and nothing of stage i kept.
// The loss is modelled as an extra last stage n whose "forward" is free and whose backward is the
// loss, so a chain of n stages is a DP chain of n + 1 stages and positions 0..n+1 (x_{n+1},
// xbar_{n+1} and y_{n+1} are empty placeholders).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "scheduler/graph.hpp"
#include "scheduler/schedule.hpp"
#include "scheduler/table_memory.hpp"

namespace rematch {

// The schedules a program searches.
enum class DpClass : std::uint8_t {
  with_drops,  // every pattern above: the `optimal` solver's program
  // rotor's persistent class: a stored item stays until its backward (ends `full` only), and an
  // xbar checkpoint only comes from the input's own F_all. A twelfth of the modes and options.
  persistent,
};

// Sizes in any unit (int memory slots for the tables, double for exact least-budget searches).
template <class Size>
struct DpChain {
  int stages = 0;                   // n + 1: the branch's stages, then the loss
  DpClass kind = DpClass::with_drops;
  std::vector<double> fw, bw;       // per stage; fw[n] = 0, bw[n] = loss time
  std::vector<Size> ftmp, btmp;     // per stage; btmp[n] = loss tmp
  std::vector<Size> x, xb;          // per position 0..n+1; x[n+1] = xb[n+1] = 0

  // Join graphs (join_solver.hpp) nest the branches: the "loss" stage of an outer branch is the
  // whole problem of the next branch (its forward, the loss, its backward).
  Size pre_loss_extra = 0;          // held until the loss stage: the inputs of the inner branches
  bool inner_loss = false;          // stage n's backward is the inner problem
  Size loss_reserve[2] = {0, 0};    // held by this branch during it, by the kind of x_n (x, xbar)
  Size inner_least[2] = {0, 0};     // least budget of the inner problem, by kind (least-budget search)
};

// Builds the DP chain of branch `branch` of `graph` (the loss is the graph's), sizes divided by
// `slot` and rounded up (slot = 0 keeps the original values; Size = double then).
template <class Size>
DpChain<Size> make_dp_chain(const Graph& graph, int branch, double slot, DpClass kind = DpClass::with_drops);

enum class Input : std::uint8_t { x = 0, xbar = 1 };
enum class Start : std::uint8_t { none = 0, grad_bar = 1 };  // N: y_{l+1} only; G: also xbar_{l+1}
enum class End : std::uint8_t { full = 0, early = 1, consumed = 2 };

struct Mode {
  Input in = Input::x;
  Start start = Start::none;
  End end = End::full;
  int index() const { return (static_cast<int>(in) * 2 + static_cast<int>(start)) * 3 + static_cast<int>(end); }
  static constexpr int count = 12;
  static Mode from_index(int m) {
    return {static_cast<Input>(m / 6), static_cast<Start>(m / 3 % 2), static_cast<End>(m % 3)};
  }
};

// Where a sub-chain's rows are: row = pair * per_pair + slot[mode index]; a mode outside the
// program's class has slot -1. With alias_xbar_full, the rows of an xbar input that stays to the
// end are read as the x-input row at budget t - (xb - x) (ChainDp::is_shifted says where).
struct RowLayout {
  int per_pair = Mode::count;
  int slot[Mode::count] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  bool alias_xbar_full = false;
  static RowLayout of(DpClass kind);
};

class ChainDp;

// The problem run at the loss stage of a nested chain (DpChain::inner_loss).
struct InnerProblem {
  const ChainDp* dp = nullptr;
  int branch = 0;  // the inner chain's branch in the graph, for its ops
};

// Tables of least makespans for every sub-problem and every budget 0..max_memory (in slots).
class ChainDp {
 public:
  // inner_x / inner_xbar: the inner problems of a nested chain, by the kind of x_n it holds.
  ChainDp(DpChain<int> chain, int max_memory, InnerProblem inner_x = {}, InnerProblem inner_xbar = {});

  static constexpr float infinity = 3.0e38f;
  // Least time of sub-problem (i, l, mode) with `memory` slots; `infinity` when infeasible.
  float value(int i, int l, Mode mode, int memory) const;
  // Appends the ops of an optimal schedule of the sub-problem (ops of branch `branch`).
  void emit(int i, int l, Mode mode, int memory, int branch, Schedule& out) const;

  const DpChain<int>& chain() const { return chain_; }
  // The row of value() over budgets 0..max_memory, for callers that relax whole rows: the value at
  // budget t is infinity below `shift`, else stored[t - shift] (a row stored for another mode).
  struct RowView {
    const float* stored;
    int shift;
  };
  RowView values(int i, int l, Mode mode) const;

 private:
  // A row as the fill reads it: the value at budget t is values[t - shift], infinite below
  // first_feasible (>= shift).
  struct Row {
    const float* values = nullptr;
    const float* block_end = nullptr;  // values at the ends of the stored row's 8-budget blocks
    float floor = 0;                   // a lower bound of the row (its least value when shift = 0)
    int first_feasible = 0;
    int shift = 0;
  };
  float value_at(const Row& row, int memory) const;
  Row row(int i, int l, Mode mode) const;
  Row row_at(std::size_t row) const;
  Row zero_row() const;
  // Rows read from the x-input row (budget shifted by xb - x) instead of being computed and stored.
  bool is_shifted(int i, Mode mode) const;
  template <class OptionT>
  Row child_of(const OptionT& option) const;
  std::size_t row_index(int i, int l, Mode mode) const;
  bool in_class(int mode_index) const { return layout_.slot[mode_index] >= 0; }
  void fill(int i, int l, float* block_start);  // block_start: the caller's scratch (see fill)
  // out = min(out, cost + child[. - shift] + cont) from budget `peak` on (see fill()).
  void relax_option(float* out, float* out_start, const Row& child, int shift, const Row& cont, float cost,
                    int peak);
  void finish_row(std::size_t row);

  static constexpr int block = 8;  // budgets per block: one AVX vector of floats

  DpChain<int> chain_;
  RowLayout layout_;
  int width_;        // budgets 0..max_memory
  int stride_;       // a row's length in the table: width_ rounded up to whole blocks
  int blocks_;       // blocks of 8 budgets per row (stride_ / 8)
  int block_stride_; // a row's length in block_end_: blocks_ and a vector's worth of padding
  InnerProblem inner_[2];
  // Left uninitialised: fill() initialises each row on the thread that fills it, so the first touch
  // (page faults, the kernel zeroing pages: about 0.8 s per GB) is shared by the threads and the
  // row is in cache when it is used. (Transparent huge pages were slower: their first allocation
  // compacts memory.)
  Table table_;
  // Per row, the value at the end of each 8-budget block (the block's least value, since rows are
  // non-increasing): the bounds that decide which blocks an option can improve, read from a table
  // an eighth of the size of the values.
  Table block_end_;
  std::vector<float> zero_block_end_;
  // Per row (sub-problem and mode), kept apart from the table so that pruning stays in cache:
  std::vector<float> floor_;          // value at the largest budget (the row's minimum)
  std::vector<int> first_feasible_;   // least budget with a finite value (width_ if none)
  std::vector<float> zeros_;          // the zero row (zero_row())
};

// The least budget at which the chain DP finds a schedule, computed exactly in the chain's units,
// and a schedule of that peak (appended to `out`; the least budget is returned too); a nested
// chain's inner problem is emitted by `emit_inner` (given the kind of x_n the outer branch holds).
double dp_min_memory(const DpChain<double>& chain);
using InnerEmitter = std::function<void(Input kind, Schedule& out)>;
double dp_min_memory_schedule(const DpChain<double>& chain, int branch, const InnerEmitter& emit_inner,
                              Schedule& out);

// The sub-problem that is a whole (possibly nested) branch problem.
inline constexpr Mode whole_problem{Input::x, Start::none, End::full};

// Bytes a ChainDp of `stages` stages allocates at `max_memory` slots.
std::size_t chain_dp_table_bytes(int stages, int max_memory, DpClass kind = DpClass::with_drops);

}  // namespace rematch
