#include "scheduler/io/schedule_io.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "scheduler/io/json_reader.hpp"

namespace rematch {

namespace {

using nlohmann::json;
using namespace json_reader;

OpKind op_kind(const std::string& name, const std::string& path) {
  for (OpKind kind : {OpKind::F_all, OpKind::F_ck, OpKind::F_none, OpKind::loss, OpKind::B, OpKind::drop})
    if (name == op_name(kind)) return kind;
  throw InputError(path + ".op: unknown op " + describe(name) + " (known: F_all, F_ck, F_none, loss, B, drop)");
}

json op_to_json(const Op& op) {
  json o = {{"op", op_name(op.kind)}};
  if (op.kind == OpKind::loss) return o;
  if (op.kind == OpKind::drop) o["item"] = item_name(op.item);
  o["branch"] = op.branch;
  o["stage"] = op.stage;
  return o;
}

}  // namespace

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw InputError("'" + path + "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError("cannot read file '" + path + "'");
  return text.str();
}

Schedule parse_schedule(const std::string& json_text) {
  const json root = parse(json_text, "schedule file");
  const json& ops = member(root, "ops", "schedule");
  if (!ops.is_array()) throw InputError("schedule.ops must be an array");
  Schedule schedule;
  for (std::size_t k = 0; k < ops.size(); ++k) {
    const std::string path = "ops[" + std::to_string(k) + "]";
    const json& o = ops[k];
    const json& name = member(o, "op", path);
    if (!name.is_string()) throw InputError(path + ".op must be a string");
    Op op;
    op.kind = op_kind(name.get<std::string>(), path);
    if (op.kind != OpKind::loss) {
      if (o.contains("branch")) op.branch = static_cast<int>(non_negative_integer(o["branch"], path + ".branch"));
      op.stage = static_cast<int>(non_negative_integer(member(o, "stage", path), path + ".stage"));
    }
    if (op.kind == OpKind::drop) {
      const json& item = member(o, "item", path);
      if (item == "x") op.item = Item::x;
      else if (item == "xbar") op.item = Item::xbar;
      else throw InputError(path + ".item must be \"x\" or \"xbar\" (got " + describe(item) + ")");
    }
    schedule.push_back(op);
  }
  return schedule;
}

Schedule read_schedule_file(const std::string& path) {
  try {
    return parse_schedule(read_text_file(path));
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
}

std::string solution_to_json(const Solution& solution, const std::string& extra_json) {
  json out = {{"solver", solution.solver},          {"exact", solution.exact},
              {"memory_limit", solution.memory_limit}, {"makespan", solution.makespan},
              {"peak_memory", solution.peak},        {"method", solution.method}};
  if (solution.grouped_runs > 0) out["grouped_runs"] = solution.grouped_runs;
  const json extra = json::parse(extra_json);
  for (auto& [key, value] : extra.items()) out[key] = value;
  json ops = json::array();
  for (const Op& op : solution.ops) ops.push_back(op_to_json(op));
  out["ops"] = std::move(ops);
  return out.dump();
}

std::string solve_result_json(const Graph& graph, const Solution& solution) {
  const double base = graph.store_all_time();
  const json extra = {{"store_all_makespan", base},
                      {"overhead_pct", base > 0 ? 100.0 * (solution.makespan - base) / base : 0.0}};
  return solution_to_json(solution, extra.dump());
}

}  // namespace rematch
