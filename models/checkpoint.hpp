// Weight files: the model's configuration and every parameter tensor, in plain row-major fp32.
// Saving writes a temporary file beside the target, flushes it to disk and renames it over the
// target, so a crash mid-write never corrupts the last good file.
#pragma once

#include <stdexcept>
#include <string>

#include "autodiff/model.hpp"
#include "models/zoo.hpp"

namespace rematch::models {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void save_weights(const std::string& path, const ModelConfig& config, autodiff::JoinModel& model);
// Throws CheckpointError naming the file and the problem (unreadable, not a rematch file,
// truncated, or written for another model: the differing field is named).
void load_weights(const std::string& path, const ModelConfig& config, autodiff::JoinModel& model);

}  // namespace rematch::models
