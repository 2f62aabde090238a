#include "models/budget.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "autodiff/profiler.hpp"
#include "scheduler/simulator.hpp"

namespace rematch::models {
namespace {

using autodiff::format_bytes;

// Memory not counted in the plan that the process maps while it runs (OpenMP thread stacks, the
// allocator's per-thread arenas, LIBXSMM's code buffers): a floor, or a share of the room.
constexpr double margin_floor = 256.0 * (1 << 20);
constexpr double margin_share = 0.05;
constexpr double unlimited = 1e18;  // cgroup files say "max" or a page-rounded 2^63

// The value after `key` in a "Key:   123 kB" file (/proc/meminfo, /proc/self/status), in bytes.
std::optional<double> kib_field(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) {
      std::istringstream rest(line.substr(key.size()));
      double kib = 0;
      if (rest >> kib) return kib * 1024;
    }
  return std::nullopt;
}

std::optional<double> number_file(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  try {
    return std::stod(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The cgroup's memory limit less its usage, when a limit is set: v2 (memory.max) or v1
// (memory.limit_in_bytes), at the process's cgroup path or, inside a container whose cgroup
// file system is its own, at the mount's root.
std::optional<BudgetTerm> cgroup_room() {
  std::ifstream in("/proc/self/cgroup");
  std::string line, v2, v1;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) v2 = line.substr(3);
    const auto at = line.find(":memory:");
    if (at != std::string::npos) v1 = line.substr(at + 8);
  }
  struct Candidate {
    std::string limit, usage, name;
  };
  std::vector<Candidate> candidates;
  for (const std::string& dir : {"/sys/fs/cgroup" + v2, std::string("/sys/fs/cgroup")})
    candidates.push_back({dir + "/memory.max", dir + "/memory.current", "cgroup memory.max"});
  for (const std::string& dir : {"/sys/fs/cgroup/memory" + v1, std::string("/sys/fs/cgroup/memory")})
    candidates.push_back({dir + "/memory.limit_in_bytes", dir + "/memory.usage_in_bytes", "cgroup memory.limit_in_bytes"});
  for (const Candidate& c : candidates) {
    const std::optional<double> limit = number_file(c.limit);
    if (!limit || *limit >= unlimited) continue;
    return BudgetTerm{c.name + " less usage", std::max(0.0, *limit - number_file(c.usage).value_or(0))};
  }
  return std::nullopt;
}

// The uncompressed size of a gzip file (its trailer's ISIZE: exact below 4 GiB), 0 if unreadable.
double gzip_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in || in.tellg() < 4) return 0;
  in.seekg(-4, std::ios::end);
  unsigned char b[4] = {};
  in.read(reinterpret_cast<char*>(b), 4);
  return in ? double(b[0] | b[1] << 8 | b[2] << 16 | std::uint32_t(b[3]) << 24) : 0;
}

// What the Fashion-MNIST reader keeps: the pixels as stored and the labels as 32-bit integers.
double data_reader_bytes(const std::string& dir) {
  double bytes = 0;
  for (const char* split : {"train", "t10k"}) {
    bytes += std::max(0.0, gzip_size(dir + "/" + split + "-images-idx3-ubyte.gz") - 16);
    bytes += 4 * std::max(0.0, gzip_size(dir + "/" + split + "-labels-idx1-ubyte.gz") - 8);
  }
  return bytes;
}

std::string line(const std::string& name, double bytes, const std::string& note = "") {
  char text[160];
  std::snprintf(text, sizeof text, "  %-34s %12s%s", name.c_str(), format_bytes(bytes).c_str(),
                note.empty() ? "" : ("  " + note).c_str());
  return text;
}

std::string percent(double pct) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f %%", pct);
  return text;
}

}  // namespace

double parse_percent(const std::string& text, const std::string& what) {
  const std::string number = !text.empty() && text.back() == '%' ? text.substr(0, text.size() - 1) : text;
  std::size_t used = 0;
  double pct = -1;
  try {
    pct = std::stod(number, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != number.size() || !(pct >= 0 && std::isfinite(pct)))
    throw InputError(what + " '" + text + "': expected a non-negative percentage such as 10%");
  return pct;
}

MemoryRoom memory_room() {
  MemoryRoom room;
  if (const auto available = kib_field("/proc/meminfo", "MemAvailable:"))
    room.limits.push_back({"MemAvailable", *available});
  if (const auto cgroup = cgroup_room()) room.limits.push_back(*cgroup);
  rlimit as{};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
    room.limits.push_back({"RLIMIT_AS less mapped", std::max(0.0, double(as.rlim_cur) -
                                                                       kib_field("/proc/self/status", "VmSize:").value_or(0))});
  room.bytes = room.limits.empty() ? 0 : room.limits.front().bytes;
  for (const BudgetTerm& t : room.limits) room.bytes = std::min(room.bytes, t.bytes);
  return room;
}

double optimizer_state_bytes(const autodiff::OptimizerConfig& optimizer, double weights) {
  return optimizer.kind == autodiff::OptimizerConfig::Kind::adam ? 2 * weights
         : optimizer.momentum != 0                               ? weights
                                                                 : 0;
}

std::size_t planning_table_budget(const TrainConfig& config, double weights, std::size_t cap) {
  const MemoryRoom room = memory_room();
  if (room.limits.empty()) return cap;
  const double left = room.bytes - double(config.memory) - weights - optimizer_state_bytes(config.optimizer, weights);
  return std::size_t(std::clamp(left / 2, 0.0, double(cap)));
}

BudgetChoice choose_budget(const TrainConfig& config, const Budget& budget, bool want_curve) {
  if (budget.kind == Budget::Kind::bytes && !(budget.value >= 0 && std::isfinite(budget.value)))
    throw InputError("--memory must be a non-negative number of bytes");
  if (budget.kind == Budget::Kind::share && !(budget.value > 0 && budget.value <= 1))
    throw InputError("--memory: a share must be in (0, 100] %");
  if (budget.max_overhead_pct && !(*budget.max_overhead_pct >= 0 && std::isfinite(*budget.max_overhead_pct)))
    throw InputError("--max-overhead must be a non-negative percentage");
  BudgetChoice choice;
  double cap = budget.value;
  if (budget.kind == Budget::Kind::bytes && !budget.max_overhead_pct && !want_curve) {
    choice.bytes = std::size_t(cap);
    return choice;
  }
  // Measured before the model exists: everything the run will hold besides activations comes off.
  const MemoryRoom room = memory_room();
  autodiff::Arena parameters("parameters");
  const auto model = build_model(config.model, parameters);
  if (budget.kind != Budget::Kind::bytes) {
    const double weights = double(parameters.in_use());
    const double optimizer = optimizer_state_bytes(config.optimizer, weights);
    const double data = data_reader_bytes(config.data_dir);
    const double margin = std::max(margin_floor, margin_share * room.bytes);
    choice.lines.push_back("memory this process may use:");
    for (const BudgetTerm& t : room.limits)
      choice.lines.push_back(line(t.name, t.bytes, t.bytes == room.bytes ? "(lowest)" : ""));
    choice.lines.push_back(line("- weights", weights));
    choice.lines.push_back(line("- gradients", weights));
    choice.lines.push_back(line("- optimizer state", optimizer, config.optimizer.kind == autodiff::OptimizerConfig::Kind::adam
                                                                    ? "(Adam: two moments)"
                                                                    : "(SGD momentum)"));
    choice.lines.push_back(line("- data reader buffers", data));
    choice.lines.push_back(line("- kernel scratch", 0, "(drawn from the activation arena: inside the budget)"));
    choice.lines.push_back(line("- margin", margin, "(the larger of 256 MiB and 5 % of the room)"));
    const double left = room.bytes - 2 * weights - optimizer - data - margin;
    const double share = budget.kind == Budget::Kind::share ? budget.value : 1;
    cap = std::floor(std::max(0.0, left) * share);
    choice.lines.push_back(line(share < 1 ? "= activations (" + percent(100 * share) + " of what is left)" : "= activations",
                                cap));
    if (!(left > 0))
      throw NoRoom("no memory left for activations: the process may use " + format_bytes(room.bytes) +
                   ", the run needs " + format_bytes(room.bytes - left) +
                   " besides them (weights and gradients " + format_bytes(2 * weights) + ", optimizer state " +
                   format_bytes(optimizer) + ", data " + format_bytes(data) + ", margin " + format_bytes(margin) + ")");
  }
  choice.bytes = std::size_t(cap);
  if (!budget.max_overhead_pct && !want_curve) return choice;

  model->set_activation_precision(config.activations);
  const Graph graph = autodiff::profile(*model, config.profile);
  CurveOptions options;
  options.solve.solver = config.solver;
  choice.curve = time_memory_curve(graph, options);
  if (!budget.max_overhead_pct) return choice;
  const Curve& curve = *choice.curve;
  const CurvePoint* best = nullptr;  // least overhead within the cap, for the refusal
  for (const CurvePoint& p : curve.points) {
    if (exceeds(p.budget, cap)) break;
    if (!best || p.overhead_pct < best->overhead_pct) best = &p;
    if (p.overhead_pct <= *budget.max_overhead_pct) {
      choice.bytes = std::size_t(std::ceil(p.budget));
      std::string detail = "(";
      detail += std::to_string(choice.bytes) + " bytes; curve: predicted overhead " + percent(p.overhead_pct) + ")";
      choice.lines.push_back(line("least budget within " + percent(*budget.max_overhead_pct) + " overhead",
                                  double(choice.bytes), detail));
      return choice;
    }
  }
  if (!best)
    throw InfeasibleBudget("budget " + format_bytes(cap) + " is below the least feasible budget " +
                               format_bytes(curve.least) + " of the model",
                           curve.least);
  throw InfeasibleBudget("no budget within " + format_bytes(cap) + " keeps the predicted overhead within " +
                             percent(*budget.max_overhead_pct) + ": the least achievable is " +
                             percent(best->overhead_pct) + " at " + format_bytes(best->budget),
                         best->budget);
}

}  // namespace rematch::models
