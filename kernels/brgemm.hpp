#pragma once
// The one fast kernel every layer is built on: LIBXSMM's stride-based
// batch-reduce GEMM, C = beta * C + sum_{i < count} A_i * B_i, where
// A_i = a + i * stride_a and B_i = b + i * stride_b (column-major, like LIBXSMM).
// The batch is reduced inside the JIT kernel in index order, so a call is
// deterministic; layers make each output block the result of exactly one
// sequence of calls, which keeps them deterministic for any thread count.
#include <cstdint>
#include <functional>

#include "kernels/tensor.hpp"

namespace rematch::kernels {

enum class Precision { fp32, bf16 };  // bf16: bf16 inputs, fp32 accumulation and output

// Plain descriptor of one JIT kernel. Sizes, leading dimensions and strides in elements.
struct BrgemmDesc {
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t lda = 0, ldb = 0, ldc = 0;
  std::int64_t stride_a = 0, stride_b = 0;
  bool accumulate = false;  // beta = 1 instead of 0
  Precision precision = Precision::fp32;
};

// True when LIBXSMM can JIT bf16 BRGEMM on this CPU (AVX512-BF16, "cpx" or later).
bool bf16_supported();

class Brgemm {
 public:
  Brgemm() = default;
  explicit Brgemm(const BrgemmDesc& d);  // JITs now; throws if LIBXSMM cannot
  const BrgemmDesc& desc() const { return desc_; }
  void operator()(const float* a, const float* b, float* c, std::int64_t count) const;
  // bf16: A must be VNNI-packed (pairs along k interleaved).
  void operator()(const bfloat16* a, const bfloat16* b, float* c, std::int64_t count) const;

 private:
  BrgemmDesc desc_;
  void* kernel_ = nullptr;
};

// C = A * B on blocked row-major matrices (see tensor.hpp). Each C block (i, j)
// is C(i, j) = sum_p A(i, p) * B(p, j), reduced over p in order by a fixed
// sequence of BRGEMM calls (one per chunk of p). C blocks are spread over
// OpenMP threads.
// In LIBXSMM's column-major view a row-major block is its transpose, so the
// kernel computes C(i,j)^T = sum_p B(p,j)^T * A(i,p)^T: B is LIBXSMM's A operand,
// which is why bf16 runs need B VNNI-packed.
class BlockedGemm {
 public:
  // Called on each finished C block while it is still in cache (bias, activation).
  using Epilogue = std::function<void(float* c_block, std::int64_t rb, std::int64_t cb)>;

  // c_column_panels: block order of C (see BlockShape), e.g. for weight gradients.
  BlockedGemm(const BlockShape& a, const BlockShape& b, Precision precision = Precision::fp32,
              bool c_column_panels = false);
  const BlockShape& c_shape() const { return c_; }
  void run(const BlockedMatrix& a, const BlockedMatrix& b, BlockedMatrix& c,
           const Epilogue& epilogue = {}) const;
  void run(const BlockedBf16& a, const BlockedBf16& b, BlockedMatrix& c,
           const Epilogue& epilogue = {}) const;

 private:
  template <class T>
  void run_impl(const Blocked<T>& a, const Blocked<T>& b, BlockedMatrix& c,
                const Epilogue& epilogue) const;
  // Reduction blocks per BRGEMM call: 16 blocks of 64 x 64 floats keep a chunk
  // of the left row panel (256 KiB) in L2 across the C blocks of a task.
  static constexpr std::int64_t kInnerChunk = 16;
  BlockShape a_, b_, c_;
  Brgemm start_, accumulate_;  // beta = 0 for the first chunk, 1 for the rest
};

}  // namespace rematch::kernels
