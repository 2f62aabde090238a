#include "models/checkpoint.hpp"

#include <algorithm>
#include <vector>

#include "models/data/npz.hpp"

namespace rematch::models {
namespace {

std::vector<autodiff::Tensor*> all_parameters(autodiff::JoinModel& model, std::span<const std::string> names,
                                              const std::string& path) {
  std::vector<autodiff::Tensor*> out;
  for (int e = 0; e < model.encoders(); ++e) {
    for (autodiff::Tensor* p : model.encoder(e).parameters()) out.push_back(p);
  }
  if (out.size() != names.size()) {
    throw CheckpointError("weights " + path + ": " + std::to_string(names.size()) + " names for the model's " +
                          std::to_string(out.size()) + " tensors");
  }
  return out;
}

}  // namespace

void save_weights(const std::string& path, std::span<const std::string> names, autodiff::JoinModel& model) {
  const auto params = all_parameters(model, names, path);
  std::vector<data::NpzArray> arrays;
  for (std::size_t t = 0; t < params.size(); ++t) {
    const autodiff::Tensor& p = *params[t];
    data::NpzArray a{names[t], {p.shape.rows, p.shape.cols}, std::vector<float>(std::size_t(p.shape.rows * p.shape.cols))};
    kernels::unpack(p, a.values);
    arrays.push_back(std::move(a));
  }
  try {
    data::write_npz(path, arrays);
  } catch (const data::DataError& e) {
    throw CheckpointError(std::string("weights ") + e.what());
  }
}

void load_weights(const std::string& path, std::span<const std::string> names, autodiff::JoinModel& model) {
  const auto params = all_parameters(model, names, path);
  try {
    const data::NpzReader file(path);
    // Every tensor is read and checked before any is overwritten: a refused file leaves the
    // model as it was.
    std::vector<data::NpzArray> arrays;
    for (std::size_t t = 0; t < params.size(); ++t) {
      if (!file.contains(names[t])) file.fail("no tensor " + names[t] + " (is it the weights of another model?)");
      data::NpzArray a = file.read(names[t]);
      const std::vector<std::int64_t> want = {params[t]->shape.rows, params[t]->shape.cols};
      if (a.shape != want) {
        std::string got;
        for (std::int64_t d : a.shape) got += (got.empty() ? "" : " x ") + std::to_string(d);
        file.fail("tensor " + names[t] + " is " + (got.empty() ? "a scalar" : got) + ", the model's is " +
                  std::to_string(want[0]) + " x " + std::to_string(want[1]));
      }
      arrays.push_back(std::move(a));
    }
    for (const std::string& member : file.names()) {
      if (std::find(names.begin(), names.end(), member) == names.end()) {
        file.fail("tensor " + member + " is not a parameter of this model");
      }
    }
    for (std::size_t t = 0; t < params.size(); ++t) kernels::pack_into(arrays[t].values, *params[t]);
  } catch (const data::DataError& e) {
    throw CheckpointError(std::string("weights ") + e.what());
  }
}

}  // namespace rematch::models
