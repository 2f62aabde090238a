// Weight files: a NumPy .npz archive with one float32 array per parameter tensor, named by the
// model's parameter names (models/model_file.hpp: parameter_names) and shaped rows x cols as the
// runtime holds the tensor, so `np.load(path)[name]` (or torch.from_numpy of it) reads a tensor
// with one call. Saving is atomic (temporary file, checked writes, fsync, rename). Loading
// verifies each member's CRC-32, refuses non-finite values, and requires exactly the model's
// tensors with the model's shapes. See docs/data.md.
#pragma once

#include <span>
#include <stdexcept>
#include <string>

#include "autodiff/model.hpp"

namespace rematch::models {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// names: one per tensor, in the order of model.encoder(e).parameters() over e.
void save_weights(const std::string& path, std::span<const std::string> names, autodiff::JoinModel& model);
// Throws CheckpointError naming the file and the problem (unreadable, not an .npz, a corrupt or
// non-finite member, a missing or extra tensor, a tensor of another shape).
void load_weights(const std::string& path, std::span<const std::string> names, autodiff::JoinModel& model);

}  // namespace rematch::models
