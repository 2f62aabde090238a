// The data flags of `rematch train`, `embed` and `evaluate` (docs/data.md):
//   --data X.npy --labels y.npy          a labelled set
//   --pairs X1.npy X2.npy --labels s.npy explicit pairs (labels 1 same, 0 different)
//   --triplets A.npy P.npy N.npy         explicit triplets
// and for train the held-out set: the same with a --test- prefix, or --split R.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "models/data/source.hpp"

namespace rematch::cli {

struct DataArgs {
  std::string data, labels;
  std::vector<std::string> pairs, triplets;
};

// Registers --data, --labels, --pairs, --triplets (prefix "test-": --test-data, ...).
void add_data_options(CLI::App* cmd, DataArgs& args, const std::string& prefix = "");
// The files named, or none (no flag given). Throws InputError for a contradictory choice.
data::DataFiles data_files(const DataArgs& args, const std::string& prefix = "");

}  // namespace rematch::cli
