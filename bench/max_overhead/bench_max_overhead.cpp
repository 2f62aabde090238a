// --max-overhead: the recompute overhead the curve predicts for the budget it picks, against the
// overhead measured at the machine's speed of the moment (a pace, as in bench_runtime).
//
//   build/bench/max_overhead/bench_max_overhead [--bounds 0,5,10,20] [--depth 8] [--width 256]
//                                               [--batch 512] [--steps 15] [--json FILE]
//
// For each bound, picks the budget as `rematch train --max-overhead` does (models/budget.hpp),
// then runs two training sessions of the zoo's siamese MLP side by side: one within that budget,
// one at store-all (a budget above its peak). After one warm-up step each, the steps alternate,
// so that each bounded step has a store-all step next to it; the measured overhead is the median
// over the pairs of (bounded step / store-all step) - 1. Bound 0 picks the store-all peak itself:
// the control, whose measured overhead is the pacing's own error.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "bench/host.hpp"
#include "models/budget.hpp"
#include "scheduler/io/atomic_file.hpp"
#include "models/training.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::vector<double> parse_list(const std::string& text) {
  std::vector<double> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    char* end = nullptr;
    const std::string item = text.substr(at, comma - at);
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !std::isfinite(v) || v < 0)
      throw std::invalid_argument("--bounds: '" + item + "' is not a non-negative percentage");
    out.push_back(v);
    at = comma + 1;
  }
  return out;
}

// One bound: the budget it picks, the predictions, and the paced measurement.
nlohmann::json measure(rematch::models::TrainConfig config, double bound, int steps) {
  using namespace rematch;
  const models::BudgetChoice choice = models::choose_budget(config, models::Budget::within_overhead(bound));
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
  const double plan_pct = 100 * (bounded.plan().makespan / bounded.store_all_makespan() - 1);
  const double measured_pct = 100 * (median(ratios) - 1);
  std::printf("%6.1f %% %12zu %12.0f %9.2f %% %9.2f %% %9.2f %% %+8.2f %% %9.4f %9.4f\n", bound, choice.bytes,
              bounded.store_all_peak(), curve_pct, plan_pct, measured_pct,
              100 * ((1 + measured_pct / 100) / (1 + plan_pct / 100) - 1), median(bounded_s), median(store_all_s));
  std::fflush(stdout);
  return {{"bound_pct", bound},
          {"budget", choice.bytes},
          {"store_all_peak", bounded.store_all_peak()},
          {"curve_overhead_pct", curve_pct},
          {"plan_overhead_pct", plan_pct},
          {"measured_overhead_pct", measured_pct},
          {"bounded_step_s", median(bounded_s)},
          {"store_all_step_s", median(store_all_s)}};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rematch;
  std::vector<double> bounds{0, 5, 10, 20};
  int steps = 15;
  std::string json_path;
  models::TrainConfig config;
  config.model.depth = 8;
  config.model.width = 256;
  config.model.batch = 512;
  config.optimizer.kind = autodiff::OptimizerConfig::Kind::adam;
  config.optimizer.lr = 1e-3f;
  try {
    for (int a = 1; a < argc; a += 2) {
      const std::string key = argv[a];
      if (a + 1 >= argc) throw std::invalid_argument(key + " needs a value");
      const std::string text = argv[a + 1];
      const auto count = [&] {
        char* end = nullptr;
        const long v = std::strtol(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || v < 1 || v > 1000000) throw std::invalid_argument(key + ": '" + text + "' is not a positive count");
        return int(v);
      };
      if (key == "--bounds") bounds = parse_list(text);
      else if (key == "--steps") steps = count();
      else if (key == "--depth") config.model.depth = count();
      else if (key == "--width") config.model.width = count();
      else if (key == "--batch") config.model.batch = count();
      else if (key == "--json") json_path = text;
      else throw std::invalid_argument("unknown option " + key);
    }
    std::printf("bench_max_overhead: CPU %s, ISA %s, OpenMP threads %d\n", bench::cpu_model().c_str(),
                bench::vector_isa().c_str(), omp_get_max_threads());
    std::printf("model siamese-mlp depth %d width %d batch %d, Adam; %d alternating pairs of steps per bound\n",
                config.model.depth, config.model.width, config.model.batch, steps);
    std::printf("%8s %12s %12s %11s %11s %11s %10s %9s %9s\n", "bound", "budget B", "store-all B", "curve",
                "plan", "measured", "meas/plan", "bounded s", "s-a s");
    nlohmann::json rows = nlohmann::json::array();
    for (double bound : bounds) rows.push_back(measure(config, bound, steps));
    if (!json_path.empty()) {
      const nlohmann::json out = {{"cpu", bench::cpu_model()}, {"isa", bench::vector_isa()}, {"threads", omp_get_max_threads()},
                                  {"depth", config.model.depth}, {"width", config.model.width},
                                  {"batch", config.model.batch}, {"steps", steps}, {"bounds", rows}};
      io::write_file_atomically(json_path, out.dump(2) + "\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_max_overhead: %s\n", e.what());
    return 3;
  }
  return 0;
}
