#include <random>

#include "tests/reference/exhaustive.hpp"

namespace rematch::reference {
namespace {

double uniform(std::mt19937_64& rng, int lo, int hi) {
  return static_cast<double>(std::uniform_int_distribution<int>(lo, hi)(rng));
}

Branch random_branch(std::mt19937_64& rng, const RandomSpec& spec) {
  const int n = static_cast<int>(uniform(rng, spec.min_stages, spec.max_stages));
  Branch b;
  for (int i = 0; i <= n; ++i) {
    const double cw = uniform(rng, 1, spec.max_size);
    b.cw.push_back(cw);
    b.cbw.push_back(i == 0 ? cw : cw + uniform(rng, 0, spec.max_size));
  }
  for (int i = 0; i < n; ++i) {
    b.fw.push_back(uniform(rng, 1, spec.max_time));
    b.bw.push_back(uniform(rng, 1, spec.max_time));
    b.ftmp.push_back(uniform(rng, 0, spec.max_tmp));
    b.btmp.push_back(uniform(rng, 0, spec.max_tmp));
  }
  return b;
}

void random_loss(std::mt19937_64& rng, const RandomSpec& spec, Graph& g) {
  g.loss_time = uniform(rng, 0, spec.max_time);
  g.loss_tmp = uniform(rng, 0, spec.max_tmp);
}

}  // namespace

Graph random_chain(std::mt19937_64& rng, const RandomSpec& spec) {
  return random_join(rng, 1, false, spec);
}

Graph random_join(std::mt19937_64& rng, int branches, bool identical, const RandomSpec& spec) {
  Graph g;
  for (int j = 0; j < branches; ++j) {
    g.branches.push_back(identical && j > 0 ? g.branches.front() : random_branch(rng, spec));
  }
  random_loss(rng, spec, g);
  return g;
}

}  // namespace rematch::reference
