#pragma once
// The one fast kernel every layer is built on: LIBXSMM's stride-based
// batch-reduce GEMM, C = beta * C + sum_{i < count} A_i * B_i, where
// A_i = a + i * stride_a and B_i = b + i * stride_b (column-major, like LIBXSMM).
// The batch is reduced inside the JIT kernel in index order, so a call is
// deterministic; layers make each output block the result of exactly one
// sequence of calls, which keeps them deterministic for any thread count.
#include <cstdint>
#include <functional>
#include <span>
#include <string>

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
  // fp32, one product per call (no batch): the kernel also brings the next call's operands
  // (next_a, next_b, shaped like a and b) into L2, interleaved with its arithmetic, so operands
  // streamed from memory arrive while it computes instead of stalling the thread.
  bool prefetch_next = false;
  // prefetch_next kernels only: b is stored transposed (n x k, column-major, ldb >= n), so a
  // row-major operand is read in place. LIBXSMM 1.17 JITs this for single products (checked on
  // AVX-512 and AVX2 targets); its batch-reduce kernels with a transposed operand crash.
  bool transpose_b = false;
};

// True when LIBXSMM can JIT bf16 BRGEMM on this CPU (AVX512-BF16, "cpx" or later).
bool bf16_supported();

// LIBXSMM's JIT target on this process ("hsw", "skx", "cpx", ...): the CPU's best, or what the
// environment variable LIBXSMM_TARGET holds it to.
std::string jit_target();

// The fp32 m (vector dimension) LIBXSMM's JIT kernels run best at on this CPU: four vector
// registers, 64 with AVX-512 and 32 with AVX2. Wider m (e.g. 64 on an AVX2 host) made it pick
// register tiles that ran ~25% slower.
std::int64_t preferred_m();

// dst[c * ld_dst + r] = src[r * ld_src + c] for an 8 x 8 tile, through registers (eight row
// loads, three shuffle stages, eight row stores). LIBXSMM 1.17 JITs a transposed operand only
// for single products (`BrgemmDesc::transpose_b`), not for batch-reduce calls (see
// docs/kernels.md), so the BRGEMM paths transpose operands with this; a scalar loop writes one
// float per cache line and runs at a fraction of memory bandwidth.
void transpose8x8(const float* src, std::int64_t ld_src, float* dst, std::int64_t ld_dst);
// dst (cols x rows, row-major) = src (rows x cols, row-major): one block of a blocked matrix,
// through 8 x 8 register tiles when they fit.
void transpose_block(const float* src, std::int64_t rows, std::int64_t cols, float* dst);

class Brgemm {
 public:
  Brgemm() = default;
  explicit Brgemm(const BrgemmDesc& d);  // JITs now; throws if LIBXSMM cannot
  const BrgemmDesc& desc() const { return desc_; }
  void operator()(const float* a, const float* b, float* c, std::int64_t count) const;
  // bf16: A must be VNNI-packed (pairs along k interleaved).
  void operator()(const bfloat16* a, const bfloat16* b, float* c, std::int64_t count) const;
  // desc().prefetch_next kernels: c (+)= a * b, fetching next_a and next_b meanwhile.
  void operator()(const float* a, const float* b, float* c, const float* next_a, const float* next_b) const;

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

  // The same product from the transpose of one operand (fp32; its shape is transposed() of the
  // planned one), without a transposed copy of the whole operand: each task transposes the blocks
  // it reduces over, one chunk at a time, into its thread's share of `scratch`
  // (transpose_scratch_floats(...) values) and uses them while they are in cache. The results are
  // bitwise those of run() on the transposed operand.
  //   left:  C = A * B from A^T; a task is a band of block rows of C (as in run()), which
  //          transposes its chunks of A's row panels once for all its C blocks. A must be in row
  //          order.
  //   right: C = A * B from B^T; a task is a group of block rows of one block column of C, which
  //          transposes its chunk of B's column panel once for all its C blocks. An A beyond a
  //          share of L3 instead has B transposed a slab of column panels at a time (each block
  //          once, into `scratch`), whose C columns are then computed as in run(). B must be in
  //          column panels.
  void run_left_transposed(const BlockedMatrix& at, const BlockedMatrix& b, BlockedMatrix& c,
                           std::span<float> scratch) const;
  void run_right_transposed(const BlockedMatrix& a, const BlockedMatrix& bt, BlockedMatrix& c,
                            std::span<float> scratch) const;
  // Scratch run_left_transposed (left) or run_right_transposed needs at the current OpenMP
  // thread count: per thread, a chunk of the transposed operand's blocks for each row of a band
  // (left) or one chunk (right), never more blocks than the band's (or one) panels have (a small
  // layer pays no more than its operand); or, for right with a slab, one slab (at most 8 MiB or
  // B, whichever is less, or one column panel of B when that is more).
  enum class Transposed { left, right };
  std::int64_t transpose_scratch_floats(Transposed operand) const;

 private:
  void check_transposed_run(const BlockedMatrix& c, std::span<float> scratch, Transposed operand) const;
  std::int64_t panel_floats(Transposed operand) const;  // one thread's share
  // Block rows per band: band_, narrowed (down to 1) while a C of `cols` shared columns per band
  // would give a thread fewer than 4 tasks.
  std::int64_t band(std::int64_t cols, std::int64_t threads) const;
  // How run() and run_left_transposed share out `cols` block columns of C (all, or a slab's):
  // bands of `band` block rows, each split into `splits` column groups of `per_split` blocks.
  struct Tasks {
    std::int64_t bands, splits, per_split;
  };
  Tasks tasks(std::int64_t band, std::int64_t threads, std::int64_t cols) const;
  // run_right_transposed's slab width in block columns of C (0: per-task panels instead).
  std::int64_t slab_columns() const;
  // One BRGEMM call of run_columns(): c (+)= sum_{q < count} A_q B_q over a slice of B's columns
  // (b and c offset to it), a and b each advancing by their block steps; `first` overwrites c.
  // With the register tile (tile_) the call also fetches `fetch_blocks` blocks of B from `fetch`
  // on (B's block steps apart) into L2, spread evenly over its arithmetic.
  template <class T>
  void product(const T* b, const T* a, float* c, std::int64_t count, bool first, const T* fetch,
               std::int64_t fetch_blocks) const;
  // run()'s tasks over the block columns [col0, col1) of C, B's block (p, j) at b_block(p, j).
  template <class T, class BBlock>
  void run_columns(const Blocked<T>& a, const BBlock& b_block, std::int64_t col0, std::int64_t col1,
                   BlockedMatrix& c, const Epilogue& epilogue) const;
  template <class T>
  void run_impl(const Blocked<T>& a, const Blocked<T>& b, BlockedMatrix& c,
                const Epilogue& epilogue) const;
  BlockShape a_, b_, c_;
  // Each C block is computed as column slices of sub_m_ (b_.bcol, or preferred_m() when that
  // divides it; fp32 only), each reducing `chunk_` blocks per BRGEMM call.
  std::int64_t sub_m_ = 0, chunk_ = 0;
  // fp32 products of 64-wide slices in AVX-512 builds, on right operands of 8 MiB or more, run on
  // tile_gemm (tile.hpp) in run_columns(),
  // bitwise LIBXSMM's results: it overlaps the fetch of the next right-operand chunk, which
  // LIBXSMM's calls leave to each chunk's first products, with the band's arithmetic. Its chunks
  // are column_chunk_ blocks (see the constructor).
  bool tile_ = false;
  std::int64_t column_chunk_ = 0;
  // Block rows of C a task computes together (1 for narrow panels), each right-operand chunk
  // serving all of them.
  std::int64_t band_ = 1;
  // Bytes of the next task's left row panel to prefetch into L1 (0: none; narrow panels on CPUs
  // where that pays off only).
  std::int64_t prefetch_bytes_ = 0;
  Brgemm start_, accumulate_;  // beta = 0 for the first chunk, 1 for the rest
};

}  // namespace rematch::kernels
