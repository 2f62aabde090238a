// Graph files (docs/model.md#files): rotor's chain layout or the join layout, as JSON.
#pragma once

#include <string>

#include "scheduler/graph.hpp"

namespace rematch {

// Parses and validates a graph; InputError names the offending key and index ("chain.cw[3] is
// negative", "join.branches[1].fw: missing"). A join branch may carry "copies": k (identical
// branches, e.g. a siamese pair) and is then repeated k times. Unknown keys are ignored.
Graph parse_graph(const std::string& json_text);
Graph read_graph_file(const std::string& path);

// The join layout (a chain is written as a join with one branch unless as_chain is set).
std::string graph_to_json(const Graph& graph, bool as_chain);

}  // namespace rematch
