// A trained model applied without training (`rematch embed`, `rematch evaluate`): weights read
// from a .npz weight file, activations in an arena of at most `memory` bytes, and the batch the
// largest that fits it: one sample's forward pass is measured, the batch sized from it and
// halved until a trial forward of every branch fits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "autodiff/arena.hpp"
#include "autodiff/model.hpp"
#include "models/model_file.hpp"

namespace rematch::models {

class Inference {
 public:
  // Throws InfeasibleBudget (with the bytes one sample needs) when `memory` is below one
  // sample's forward pass, CheckpointError for a weight file that does not fit the model.
  Inference(ModelDescription description, const std::string& weights, std::size_t memory, std::int64_t max_batch);

  const ModelDescription& description() const { return description_; }
  const autodiff::JoinModel& model() const { return *model_; }
  std::int64_t batch() const { return batch_; }
  std::size_t peak() const { return activations_.high_water(); }  // activation bytes so far
  // Branch `branch`'s encoder on exactly batch() rows of its input: its output rows.
  std::vector<float> embed(int branch, std::span<const float> inputs);

 private:
  std::size_t trial(std::int64_t batch, std::size_t budget);  // peak bytes, or 0 if over budget
  void build_at(std::int64_t batch);
  std::vector<float> run(int branch, std::span<const float> inputs, autodiff::Arena& arena);

  ModelDescription description_;
  autodiff::Arena parameters_{"parameters"};
  autodiff::Arena activations_;
  std::unique_ptr<autodiff::JoinModel> model_;
  std::int64_t batch_ = 0;
};

}  // namespace rematch::models
