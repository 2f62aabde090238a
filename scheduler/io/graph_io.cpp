#include "scheduler/io/graph_io.hpp"

#include <nlohmann/json.hpp>

#include "scheduler/io/json_reader.hpp"
#include "scheduler/io/schedule_io.hpp"

namespace rematch {

namespace {

using nlohmann::json;
using namespace json_reader;

std::size_t stage_count(const json& object, const std::string& path) {
  const json& fw = member(object, "fw", path);
  if (!fw.is_array()) throw InputError(path + ".fw must be an array (got " + std::string(fw.type_name()) + ")");
  if (fw.empty()) throw InputError(path + ".fw is empty: a branch needs at least one stage");
  return fw.size();
}

Graph parse_chain(const json& chain) {
  const std::string path = "chain";
  const std::size_t n = stage_count(chain, path);
  Branch b;
  b.fw = number_array(chain, "fw", n, path);
  std::vector<double> bw = number_array(chain, "bw", n + 1, path);
  b.cw = number_array(chain, "cw", n + 1, path);
  b.cbw = number_array(chain, "cbw", n + 1, path);
  b.ftmp = number_array(chain, "ftmp", n, path);
  std::vector<double> btmp = number_array(chain, "btmp", n + 1, path);
  // rotor's layout: the last backward entry is the loss.
  Graph graph;
  graph.loss = {bw.back(), btmp.back()};
  bw.pop_back();
  btmp.pop_back();
  b.bw = std::move(bw);
  b.btmp = std::move(btmp);
  graph.branches.push_back(std::move(b));
  return graph;
}

Graph parse_join(const json& join) {
  const json& branches = member(join, "branches", "join");
  if (!branches.is_array() || branches.empty()) throw InputError("join.branches must be a non-empty array");
  Graph graph;
  GraphTotals totals;  // named by the file's branch index, before copies expand
  for (std::size_t k = 0; k < branches.size(); ++k) {
    const std::string path = "join.branches[" + std::to_string(k) + "]";
    const json& object = branches[k];
    const std::size_t n = stage_count(object, path);
    Branch b;
    b.fw = number_array(object, "fw", n, path);
    b.bw = number_array(object, "bw", n, path);
    b.cw = number_array(object, "cw", n + 1, path);
    b.cbw = number_array(object, "cbw", n + 1, path);
    b.ftmp = number_array(object, "ftmp", n, path);
    b.btmp = number_array(object, "btmp", n, path);
    try {
      validate(Graph{{b}, {}});
    } catch (const InputError& e) {
      throw InputError(path + "." + e.what());
    }
    long long copies = 1;
    if (object.contains("copies")) {
      copies = non_negative_integer(object["copies"], path + ".copies");
      if (copies < 1 || copies > GraphLimits::max_branches)
        throw InputError(path + ".copies must be between 1 and " + std::to_string(GraphLimits::max_branches));
    }
    totals.add(b, copies, path);
    for (long long c = 0; c < copies; ++c) graph.branches.push_back(b);
  }
  const json& loss = member(join, "loss", "join");
  graph.loss.time = non_negative_number(member(loss, "time", "join.loss"), "join.loss.time");
  if (loss.contains("tmp")) graph.loss.tmp = non_negative_number(loss["tmp"], "join.loss.tmp");
  totals.add(graph.loss, "join.loss");
  return graph;
}

}  // namespace

Graph parse_graph(const std::string& json_text) {
  const json root = parse(json_text, "graph file");
  if (!root.is_object() || (root.contains("chain") == root.contains("join")))
    throw InputError("graph file must be a JSON object with exactly one of the keys \"chain\" and \"join\"");
  const bool chain = root.contains("chain");
  Graph graph = chain ? parse_chain(root["chain"]) : parse_join(root["join"]);
  try {
    validate(graph);
  } catch (const InputError& e) {
    throw InputError(std::string(chain ? "chain." : "join.") + e.what());
  }
  return graph;
}

Graph read_graph_file(const std::string& path) {
  try {
    return parse_graph(read_text_file(path));
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
}

std::string graph_to_json(const Graph& graph, bool as_chain) {
  json root;
  if (as_chain && graph.is_chain()) {
    const Branch& b = graph.branches[0];
    json bw = b.bw, btmp = b.btmp;
    bw.push_back(graph.loss.time);
    btmp.push_back(graph.loss.tmp);
    root["chain"] = {{"fw", b.fw}, {"bw", bw}, {"cw", b.cw}, {"cbw", b.cbw}, {"ftmp", b.ftmp}, {"btmp", btmp}};
  } else {
    json branches = json::array();
    for (const Branch& b : graph.branches)
      branches.push_back({{"fw", b.fw}, {"bw", b.bw}, {"cw", b.cw}, {"cbw", b.cbw}, {"ftmp", b.ftmp}, {"btmp", b.btmp}});
    root["join"] = {{"branches", branches}, {"loss", {{"time", graph.loss.time}, {"tmp", graph.loss.tmp}}}};
  }
  return root.dump(1);
}

}  // namespace rematch
