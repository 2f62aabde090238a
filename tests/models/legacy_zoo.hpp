// The zoo's builder before model files: the bitwise reference of test_model_files.
#pragma once

#include "models/zoo.hpp"

namespace rematch::models::legacy {

std::unique_ptr<autodiff::JoinModel> build_model(const ModelConfig& config,
                                                 kernels::Allocator& parameters);

}  // namespace rematch::models::legacy
