#pragma once
// What a layer costs, in the units the scheduler plans with.
#include <cstdint>

namespace rematch::kernels {

struct LayerCost {
  double fwd_flops = 0;          // one forward pass
  double bwd_data_flops = 0;     // gradient w.r.t. the layer input
  double bwd_weights_flops = 0;  // gradient w.r.t. parameters (0 for parameter-free layers)
  std::int64_t saved_bytes = 0;  // storage the backward pass needs from the forward pass
};

}  // namespace rematch::kernels
