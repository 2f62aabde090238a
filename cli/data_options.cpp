#include "cli/data_options.hpp"

#include "scheduler/solver.hpp"

namespace rematch::cli {

void add_data_options(CLI::App* cmd, DataArgs& a, const std::string& prefix) {
  const std::string p = "--" + prefix;
  cmd->add_option(p + "data", a.data, "samples X.npy of a labelled set (<f4, <f2 or |u1 scaled by 1/255)");
  cmd->add_option(p + "labels", a.labels, "y.npy: classes of --" + prefix + "data, or 1/0 (same/different) of --" + prefix + "pairs");
  cmd->add_option(p + "pairs", a.pairs, "X1.npy X2.npy: explicit pairs, labelled by --" + prefix + "labels")->expected(2);
  cmd->add_option(p + "triplets", a.triplets, "A.npy P.npy N.npy: explicit anchor, positive, negative")->expected(3);
}

data::DataFiles data_files(const DataArgs& a, const std::string& prefix) {
  const int given = !a.data.empty() + !a.pairs.empty() + !a.triplets.empty();
  const std::string p = "--" + prefix;
  if (given > 1) throw InputError("give one of " + p + "data, " + p + "pairs and " + p + "triplets");
  if (given == 0) {
    if (!a.labels.empty()) throw InputError(p + "labels needs " + p + "data or " + p + "pairs");
    return {};
  }
  if (!a.data.empty()) {
    if (a.labels.empty()) throw InputError(p + "data needs " + p + "labels (the class of each sample)");
    return {data::Layout::labelled, {a.data}, a.labels};
  }
  if (!a.pairs.empty()) {
    if (a.labels.empty()) throw InputError(p + "pairs needs " + p + "labels (1 same, 0 different)");
    return {data::Layout::pairs, a.pairs, a.labels};
  }
  if (!a.labels.empty()) throw InputError(p + "triplets takes no " + p + "labels");
  return {data::Layout::triplets, a.triplets, ""};
}

}  // namespace rematch::cli
