// Graphs given in docs/model.md, shared by the test suites that check against the model's published figures.
#pragma once

#include "scheduler/graph.hpp"

namespace rematch::testing {

// docs/model.md#a-worked-example, chain A: six unit stages, xbar twice the size of x; least feasible budget 6.
inline Graph spec_chain_a() {
  Branch b;
  b.fw = {1, 1, 1, 1, 1, 1};
  b.bw = {1, 1, 1, 1, 1, 1};
  b.cw = {1, 1, 1, 1, 1, 1, 1};
  b.cbw = {1, 2, 2, 2, 2, 2, 2};
  b.ftmp = {0, 0, 0, 0, 0, 0};
  b.btmp = {0, 0, 0, 0, 0, 0};
  return {{b}, Loss{0, 0}};
}

}  // namespace rematch::testing
