// Whole-tensor bfloat16 conversions for activations kept at half size: element for element the
// rounding of kernels::to_bf16 (nearest even, NaN kept quiet and non-zero), written so the
// compiler vectorises them, and threaded. bf16 -> fp32 is exact.
#pragma once

#include <span>

#include "kernels/tensor.hpp"

namespace rematch::kernels {

// out[i] = to_bf16(in[i]); the spans have one length.
void narrow(std::span<const float> in, std::span<bfloat16> out);
// out[i] = to_float(in[i]); the spans have one length.
void widen(std::span<const bfloat16> in, std::span<float> out);

}  // namespace rematch::kernels
