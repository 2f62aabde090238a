#include <cmath>
#include <stdexcept>
#include <string>

#include "tests/reference/exhaustive.hpp"
#include "tests/reference/graph_check.hpp"

namespace rematch::reference {
namespace detail {
namespace {

void check_array(const std::vector<double>& a, std::size_t length, const std::string& name) {
  if (a.size() != length) {
    throw std::invalid_argument("reference: " + name + " has " + std::to_string(a.size()) +
                                " entries, expected " + std::to_string(length));
  }
  for (double v : a) {
    if (!std::isfinite(v) || v < 0) throw std::invalid_argument("reference: bad value in " + name);
  }
}

}  // namespace

void check_graph(const Graph& g) {
  if (g.branches.empty()) throw std::invalid_argument("reference: graph has no branch");
  if (!std::isfinite(g.loss_time) || g.loss_time < 0 || !std::isfinite(g.loss_tmp) ||
      g.loss_tmp < 0) {
    throw std::invalid_argument("reference: bad loss time or tmp");
  }
  for (std::size_t j = 0; j < g.branches.size(); ++j) {
    const Branch& b = g.branches[j];
    const std::size_t n = b.fw.size();
    const std::string where = "branch " + std::to_string(j) + " ";
    if (n == 0) throw std::invalid_argument("reference: " + where + "has no stage");
    check_array(b.bw, n, where + "bw");
    check_array(b.fw, n, where + "fw");
    check_array(b.ftmp, n, where + "ftmp");
    check_array(b.btmp, n, where + "btmp");
    check_array(b.cw, n + 1, where + "cw");
    check_array(b.cbw, n + 1, where + "cbw");
    for (std::size_t i = 1; i <= n; ++i) {
      if (b.cbw[i] < b.cw[i]) throw std::invalid_argument("reference: " + where + "cbw < cw");
    }
  }
}

}  // namespace detail

Graph chain_from_rotor(std::vector<double> fw, std::vector<double> bw, std::vector<double> cw,
                       std::vector<double> cbw, std::vector<double> ftmp,
                       std::vector<double> btmp) {
  if (bw.empty() || btmp.empty()) throw std::invalid_argument("reference: empty rotor chain");
  Graph g;
  g.loss_time = bw.back();
  g.loss_tmp = btmp.back();
  bw.pop_back();
  btmp.pop_back();
  g.branches.push_back(Branch{std::move(fw), std::move(bw), std::move(cw), std::move(cbw),
                              std::move(ftmp), std::move(btmp)});
  detail::check_graph(g);
  return g;
}

std::string to_string(const Op& op) {
  const std::string where = std::to_string(op.branch) + " " + std::to_string(op.stage);
  switch (op.kind) {
    case OpKind::F_all: return "F_all " + where;
    case OpKind::F_ck: return "F_ck " + where;
    case OpKind::F_none: return "F_none " + where;
    case OpKind::loss: return "loss";
    case OpKind::B: return "B " + where;
    case OpKind::drop_x: return "drop x " + where;
    case OpKind::drop_xbar: return "drop xbar " + where;
  }
  return "?";
}

double store_all_makespan(const Graph& g) {
  double t = g.loss_time;
  for (const Branch& b : g.branches) {
    for (double v : b.fw) t += v;
    for (double v : b.bw) t += v;
  }
  return t;
}

}  // namespace rematch::reference
