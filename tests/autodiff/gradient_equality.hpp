// Bitwise equality of per-branch gradients: what the schedule-independence tests assert between a
// scheduled run and store-all.
#pragma once

#include <cstring>
#include <vector>

#include "autodiff/encoder.hpp"

namespace rematch::autodiff {

inline bool bitwise_equal(const std::vector<Gradients>& a, const std::vector<Gradients>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t j = 0; j < a.size(); ++j) {
    for (std::size_t l = 0; l < a[j].size(); ++l) {
      for (std::size_t p = 0; p < a[j][l].size(); ++p) {
        const Tensor &x = a[j][l][p], &y = b[j][l][p];
        if (x.data.size() != y.data.size() ||
            std::memcmp(x.data.data(), y.data.data(), x.data.size() * sizeof(float)) != 0)
          return false;
      }
    }
  }
  return true;
}

}  // namespace rematch::autodiff
