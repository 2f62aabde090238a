// Internal: shape checks shared by the search and the replay (the model itself is not shared).
#pragma once

#include "tests/reference/exhaustive.hpp"

namespace rematch::reference::detail {

// Throws std::invalid_argument on an empty graph, a wrong array length, a negative or non-finite
// value, or cbw[i] < cw[i].
void check_graph(const Graph& g);

}  // namespace rematch::reference::detail
