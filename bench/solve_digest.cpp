// A digest of every solve result (makespan, peak, method, ops, or the error and its least budget)
// over seeded random graphs: chains and joins (distinct and identical branches), integer and real
// sizes, budgets from the least feasible one to store-all, every solver, and a small work limit
// that sends long chains through the grouped solve. Run it before and after restructuring the
// solvers: the digests must be identical.
//
//   bench_solve_digest [graphs=3000] [seed=1]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "scheduler/solver.hpp"

namespace {

using namespace rematch;

struct Digest {
  std::uint64_t h = 1469598103934665603ull;
  void add(const std::string& text) {
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  void add(double v) {
    char text[64];
    std::snprintf(text, sizeof text, "%a", v);
    add(std::string(text));
  }
};

Branch random_branch(std::mt19937_64& rng, int stages, bool integer) {
  auto draw = [&](double lo, double hi) {
    const double v = std::uniform_real_distribution<double>(lo, hi)(rng);
    return integer ? double(std::int64_t(v)) : v;
  };
  Branch b;
  for (int i = 0; i <= stages; ++i) {
    b.cw.push_back(draw(1, 20));
    b.cbw.push_back(i == 0 ? b.cw.back() : b.cw.back() + draw(0, 20));
  }
  for (int i = 0; i < stages; ++i) {
    b.fw.push_back(draw(1, 10));
    b.bw.push_back(draw(1, 20));
    b.ftmp.push_back(draw(0, 5));
    b.btmp.push_back(draw(0, 5));
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  const int graphs = argc > 1 ? std::atoi(argv[1]) : 3000;
  const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  std::mt19937_64 rng(seed);
  const std::vector<std::string> solvers = {"optimal", "branch-sequential", "persistent", "even-split",
                                            "store-all", "recompute-all", "segments:2", "sqrt", "revolve"};
  Digest all;
  int solved = 0, refused = 0;
  for (int n = 0; n < graphs; ++n) {
    const int shape = n % 5;  // 0, 1: chain; 2: two branches; 3: two identical; 4: long chain, grouped
    const bool integer = (n / 5) % 2 == 0;
    Graph g;
    const int branches = shape == 2 || shape == 3 ? 2 : 1;
    for (int j = 0; j < branches; ++j) {
      const int stages = shape == 4 ? 20 + int(rng() % 30) : shape >= 2 ? 1 + int(rng() % 4) : 1 + int(rng() % 10);
      g.branches.push_back(shape == 3 && j > 0 ? g.branches.front() : random_branch(rng, stages, integer));
    }
    g.loss = {double(rng() % 10), double(rng() % 5)};
    SolveOptions base;
    if (shape == 4) base.work_limit = 2e5;
    if (n % 7 == 0) base.slots = 50 + int(rng() % 200);
    if (n % 11 == 0) base.certify_states = 0;
    const double least = min_feasible_memory(g, base);
    const double top = solve(g, 1e300, {.solver = "store-all"}).peak;
    all.add(least);
    const double fraction = std::uniform_real_distribution<double>(0, 1)(rng);
    std::vector<double> budgets = {least, least + (top - least) * fraction, top, least * 0.9};
    if (integer) budgets[1] = double(std::int64_t(budgets[1]));
    const int s_count = shape == 4 ? 3 : int(solvers.size());
    for (int s = 0; s < s_count; ++s)
      for (double budget : budgets) {
        SolveOptions options = base;
        options.solver = solvers[s];
        try {
          const Solution r = solve(g, budget, options);
          all.add(r.makespan);
          all.add(r.peak);
          all.add(r.method);
          all.add(r.solver);
          all.add(double(r.exact));
          all.add(double(r.grouped_runs));
          for (const Op& op : r.ops) all.add(to_string(op));
          ++solved;
        } catch (const InfeasibleBudget& e) {
          all.add(std::string("infeasible ") + e.what());
          all.add(e.min_memory);
          ++refused;
        } catch (const std::exception& e) {
          all.add(std::string("error ") + e.what());
          ++refused;
        }
      }
  }
  std::printf("graphs %d, solves %d, refused %d, digest %016llx\n", graphs, solved, refused,
              static_cast<unsigned long long>(all.h));
}
