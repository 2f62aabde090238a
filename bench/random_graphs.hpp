// Graphs for the solver benchmarks: layer sizes and times spread like a real network's, seeded.
#pragma once

#include <cstdint>
#include <random>

#include "scheduler/graph.hpp"

namespace rematch::bench {

// fw 1..10, bw = 2 fw, cw 1..20, cbw = cw + 0..20, ftmp and btmp 0..4.
inline Branch heterogeneous_branch(int stages, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> time(1.0, 10.0), size(1.0, 20.0), extra(0.0, 20.0), tmp(0.0, 4.0);
  Branch b;
  for (int i = 0; i < stages; ++i) {
    b.fw.push_back(time(rng));
    b.bw.push_back(2 * b.fw.back());
    b.ftmp.push_back(tmp(rng));
    b.btmp.push_back(tmp(rng));
  }
  for (int i = 0; i <= stages; ++i) {
    b.cw.push_back(size(rng));
    b.cbw.push_back(i == 0 ? b.cw.back() : b.cw.back() + extra(rng));
  }
  return b;
}

}  // namespace rematch::bench
