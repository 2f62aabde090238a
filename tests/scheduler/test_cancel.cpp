// Cooperative cancellation (SolveOptions::cancel): a set flag stops every table-filling solver with
// Cancelled, before or during its fill, on the caller's thread; an unset flag changes nothing.
#include "scheduler/cancel.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"

namespace rematch {
namespace {

Branch uneven_branch(int n) {
  Branch b;
  for (int i = 0; i < n; ++i) {
    b.fw.push_back(1 + i % 3);
    b.bw.push_back(2 + i % 5);
    b.ftmp.push_back(i % 2);
    b.btmp.push_back(i % 3);
  }
  for (int i = 0; i <= n; ++i) {
    b.cw.push_back(2 + i % 4);
    b.cbw.push_back(b.cw.back() + (i == 0 ? 0 : 1 + i % 3));
  }
  return b;
}

Graph graph_of(int branches, int n) {
  Graph g;
  for (int j = 0; j < branches; ++j) g.branches.push_back(uneven_branch(n + j));
  g.loss = {1, 1};
  return g;
}

double tight_budget(const Graph& g) { return 0.5 * (min_feasible_memory(g) + simulate(g, solve(g, 1e18, {.solver = "store-all"}).ops).peak); }

TEST(CancelledSolve, ASetFlagStopsEveryProgramSolver) {
  const std::atomic<bool> stop{true};
  for (int branches : {1, 2, 3}) {
    const Graph g = graph_of(branches, 6);
    const double budget = tight_budget(g);
    for (const char* solver : {"optimal", "branch-sequential", "persistent"}) {
      EXPECT_THROW(solve(g, budget, {.solver = solver, .cancel = &stop}), Cancelled) << solver << " k=" << branches;
    }
    EXPECT_THROW(min_feasible_memory(g, {.cancel = &stop}), Cancelled) << "k=" << branches;
  }
}

TEST(CancelledSolve, AnUnsetFlagGivesTheSameSolution) {
  const std::atomic<bool> go{false};
  for (int branches : {1, 2}) {
    const Graph g = graph_of(branches, 8);
    const double budget = tight_budget(g);
    const Solution plain = solve(g, budget);
    const Solution flagged = solve(g, budget, {.cancel = &go});
    EXPECT_EQ(plain.ops, flagged.ops);
    EXPECT_EQ(plain.makespan, flagged.makespan);
  }
}

TEST(CancelledSolve, AFlagSetDuringTheFillStopsItOnTheCallersThread) {
  // A long chain at a fine resolution: its fill runs for many seconds unless stopped (a solve that
  // ran to its end would return normally and fail the test).
  const Graph g = graph_of(1, 160);
  const double budget = tight_budget(g);
  std::atomic<bool> stop{false};
  std::thread setter([&stop] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  EXPECT_THROW(solve(g, budget, {.slots = 2000, .certify_states = 0, .work_limit = 1e15, .cancel = &stop}), Cancelled);
  setter.join();
}

}  // namespace
}  // namespace rematch
