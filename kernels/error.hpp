#pragma once
// Argument checking shared by all kernel modules: every bad shape or argument
// becomes a std::invalid_argument that names the layer and the problem.
#include <stdexcept>
#include <string>

namespace rematch::kernels {

inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("rematch::kernels: " + what);
}

}  // namespace rematch::kernels
