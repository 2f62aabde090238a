// --max-overhead: the recompute overhead the curve predicts for the budget it picks, against the
// overhead measured at the machine's speed of the moment (a pace, as in bench_runtime).
//
//   build/bench/max_overhead/bench_max_overhead [--bound 10] [--depth 8] [--width 256]
//                                               [--batch 512] [--steps 15]
//
// Picks the budget as `rematch train --max-overhead` does (models/budget.hpp), then runs two
// training sessions of the zoo's siamese MLP side by side: one within that budget, one at
// store-all (a budget above its peak). After one warm-up step each, the steps alternate, so that
// each bounded step has a store-all step next to it; the measured overhead is the median over the
// pairs of (bounded step / store-all step) - 1.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "models/budget.hpp"
#include "models/training.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rematch;
  double bound = 10;
  int steps = 15;
  models::TrainConfig config;
  config.model.depth = 8;
  config.model.width = 256;
  config.model.batch = 512;
  config.optimizer.kind = autodiff::OptimizerConfig::Kind::adam;
  config.optimizer.lr = 1e-3f;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string key = argv[a];
    const double value = std::atof(argv[a + 1]);
    if (key == "--bound") bound = value;
    else if (key == "--steps") steps = int(value);
    else if (key == "--depth") config.model.depth = int(value);
    else if (key == "--width") config.model.width = int(value);
    else if (key == "--batch") config.model.batch = int(value);
    else {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      return 3;
    }
  }
  try {
    const models::BudgetChoice choice = models::choose_budget(config, models::Budget::within_overhead(bound));
    for (const std::string& line : choice.lines) std::printf("%s\n", line.c_str());
    config.memory = choice.bytes;
    models::TrainingSession bounded(config);
    models::TrainConfig unbounded = config;
    unbounded.memory = std::size_t(bounded.store_all_peak()) * 2;
    models::TrainingSession store_all(unbounded);
    bounded.step();
    store_all.step();
    std::vector<double> ratios, bounded_s, store_all_s;
    for (int s = 0; s < steps; ++s) {
      bounded_s.push_back(bounded.step().seconds);
      store_all_s.push_back(store_all.step().seconds);
      ratios.push_back(bounded_s.back() / store_all_s.back());
    }
    double curve_pct = 0;
    for (const CurvePoint& p : choice.curve->points)
      if (std::size_t(std::ceil(p.budget)) == choice.bytes) curve_pct = p.overhead_pct;
    std::printf("model siamese-mlp depth %d width %d batch %d; budget %zu B of store-all peak %.0f B\n",
                config.model.depth, config.model.width, config.model.batch, choice.bytes, bounded.store_all_peak());
    std::printf("predicted overhead: curve %.2f %%, plan (calibrated) %.2f %%\n", curve_pct,
                100 * (bounded.plan().makespan / bounded.store_all_makespan() - 1));
    std::printf("measured overhead:  paced %.2f %% (median of %d pairs); medians %.4f s vs %.4f s\n",
                100 * (median(ratios) - 1), steps, median(bounded_s), median(store_all_s));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_max_overhead: %s\n", e.what());
    return 3;
  }
  return 0;
}
