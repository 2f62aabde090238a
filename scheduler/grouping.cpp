#include "scheduler/grouping.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace rematch {

StageGroups even_groups(const Graph& graph, int groups) {
  if (groups < 1) throw std::invalid_argument("even_groups: at least one group");
  StageGroups starts;
  for (const Branch& b : graph.branches) {
    const int n = b.stages(), count = std::min(groups, n);
    std::vector<int> s;
    for (int g = 0; g <= count; ++g) s.push_back(static_cast<int>(static_cast<long long>(g) * n / count));
    starts.push_back(std::move(s));
  }
  return starts;
}

namespace {

// Group [a, b) of `branch` as one stage. The transients are the largest excess, over what the
// grouped op is charged for, of any op of its expansion (derivations in docs/solvers.md).
void add_group(const Branch& branch, int a, int b, Branch& out) {
  double fw = 0, bw = 0, tape = 0;  // tape: sum of cbw[a+1..b], the size of XBAR of the next group
  for (int i = a; i < b; ++i) {
    fw += branch.fw[i];
    bw += branch.bw[i];
    tape += branch.cbw[i + 1];
  }
  // Forward without tape: F_ck a (or F_none a), then F_none a+1..b-1, each holding its input.
  double ftmp = branch.cw[a + 1] + branch.ftmp[a] - branch.cw[b];
  for (int i = a + 1; i < b; ++i)
    ftmp = std::max(ftmp, branch.cw[i] + branch.cw[i + 1] + branch.ftmp[i] - branch.cw[b]);
  // Forward with tape: F_all i holds xbar_{a+1..i} and makes xbar_{i+1}.
  // Backward: B i holds y_{i+1} and xbar_{a+1..i+1} of the group, and makes y_i.
  double kept = 0, btmp = 0;
  for (int i = a; i < b; ++i) {
    kept += branch.cbw[i + 1];  // xbar_{a+1..i+1}
    ftmp = std::max(ftmp, kept + branch.ftmp[i] - tape);
    btmp = std::max(btmp, branch.cw[i + 1] + kept - branch.cw[b] - tape + branch.cw[i] + branch.btmp[i] -
                              branch.cw[a]);
  }
  out.fw.push_back(fw);
  out.bw.push_back(bw);
  out.cw.push_back(branch.cw[b]);
  out.cbw.push_back(tape);
  out.ftmp.push_back(std::max(0.0, ftmp));
  out.btmp.push_back(std::max(0.0, btmp));
}

}  // namespace

Graph grouped_graph(const Graph& graph, const StageGroups& groups) {
  if (groups.size() != graph.branches.size()) throw std::invalid_argument("grouped_graph: one grouping per branch");
  Graph out;
  out.loss = graph.loss;
  for (std::size_t j = 0; j < groups.size(); ++j) {
    const Branch& b = graph.branches[j];
    const std::vector<int>& s = groups[j];
    if (s.size() < 2 || s.front() != 0 || s.back() != b.stages() ||
        std::adjacent_find(s.begin(), s.end(), std::greater_equal<>()) != s.end())
      throw std::invalid_argument("grouped_graph: groups of branch " + std::to_string(j) +
                                  " must be increasing starts from 0 to its stage count");
    Branch g;
    g.cw.push_back(b.cw[0]);
    g.cbw.push_back(b.cbw[0]);
    for (std::size_t k = 0; k + 1 < s.size(); ++k) add_group(b, s[k], s[k + 1], g);
    out.branches.push_back(std::move(g));
  }
  return out;
}

Schedule expand_grouped(const StageGroups& groups, const Schedule& grouped) {
  // Whether X_g is held, per branch: F_none consumes X_g when held, else XBAR_g.
  std::vector<std::vector<char>> x_held;
  for (const std::vector<int>& s : groups) {
    x_held.emplace_back(s.size(), 0);
    x_held.back()[0] = 1;
  }
  Schedule ops;
  for (const Op& op : grouped) {
    const std::vector<int>& s = groups.at(op.branch);
    const int j = op.branch, g = op.stage, a = s.at(g);
    std::vector<char>& held = x_held[j];
    switch (op.kind) {
      case OpKind::F_ck:
      case OpKind::F_none: {
        const int b = s.at(g + 1);
        if (op.kind == OpKind::F_none && !held[g] && g > 0)
          for (int m = s.at(g - 1) + 1; m < a; ++m) ops.push_back(Op::drop(Item::xbar, j, m));
        ops.push_back(op.kind == OpKind::F_ck ? Op::f_ck(j, a) : Op::f_none(j, a));
        for (int i = a + 1; i < b; ++i) ops.push_back(Op::f_none(j, i));
        if (op.kind == OpKind::F_none) held[g] = 0;
        held[g + 1] = 1;
        break;
      }
      case OpKind::F_all:
        for (int i = a; i < s.at(g + 1); ++i) ops.push_back(Op::f_all(j, i));
        break;
      case OpKind::B:
        for (int i = s.at(g + 1) - 1; i >= a; --i) ops.push_back(Op::b(j, i));
        held[g] = 0;
        break;
      case OpKind::drop:
        if (op.item == Item::x) {
          ops.push_back(Op::drop(Item::x, j, a));
          held[g] = 0;
        } else {
          for (int m = s.at(g - 1) + 1; m <= a; ++m) ops.push_back(Op::drop(Item::xbar, j, m));
        }
        break;
      case OpKind::loss:
        ops.push_back(op);
        for (std::vector<char>& branch_held : x_held) branch_held.back() = 0;
        break;
    }
  }
  return ops;
}

}  // namespace rematch
