#pragma once
// Memory and layouts shared by every layer.
//
// Matrices (FC activations and weights) live in a blocked layout
// [rows/br][cols/bc][br][bc]: each br x bc block is a small row-major matrix
// that one BRGEMM call reads or writes contiguously. Logical sizes that do not
// divide the block sizes are padded, and every kernel keeps the padding zero,
// so padded rows/columns never leak into reductions.
//
// Conv1d tensors stay plain NCW (width is the vector dimension of its BRGEMM),
// so they need no blocked layout, only the aligned buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <utility>

#include "kernels/op_timing.hpp"

namespace rematch::kernels {

inline constexpr std::size_t kAlignment = 64;  // one cache line, one zmm register

// bf16 as stored by LIBXSMM: the upper 16 bits of an IEEE fp32.
struct bfloat16 {
  std::uint16_t bits = 0;
};
bfloat16 to_bf16(float f);  // round to nearest even; NaN stays NaN
float to_float(bfloat16 h);

// Where buffers come from. The default is the C heap; the autodiff runtime passes its budgeted
// arena, so every activation and every kernel scratch buffer is counted against the budget.
class Allocator {
 public:
  virtual ~Allocator() = default;
  // kAlignment-aligned storage of `bytes` (a multiple of kAlignment); throws when refused.
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* p, std::size_t bytes) noexcept = 0;
  // Takes over `bytes` of storage at p that `origin` allocated, as if this allocator had handed
  // them out: it counts them from now on, and its deallocate(p, bytes) gives them back to origin.
  // Throws when refused; the default refuses, so only allocators that count storage adopt it.
  virtual void adopt(void* p, std::size_t bytes, Allocator& origin);
};
Allocator& heap_allocator();

// Bytes an AlignedBuffer of n values of `elem_size` bytes takes: rounded up to whole cache lines.
constexpr std::size_t aligned_bytes(std::size_t n, std::size_t elem_size) {
  return (n * elem_size + kAlignment - 1) / kAlignment * kAlignment;
}

// Selects the AlignedBuffer constructor that leaves the storage as the allocator returns it,
// for scratch a kernel overwrites completely before reading.
struct Uninitialised {};

// Zero-initialised (unless asked otherwise), 64-byte aligned, move-only storage.
template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n, Allocator& allocator = heap_allocator())
      : AlignedBuffer(n, allocator, Uninitialised{}) {
    if (n == 0) return;
    const OpScope scope(OpKind::zero_fill);
    std::memset(static_cast<void*>(data()), 0, bytes());
  }
  AlignedBuffer(std::size_t n, Allocator& allocator, Uninitialised) : size_(n) {
    if (n == 0) return;
    const std::size_t bytes = aligned_bytes(n, sizeof(T));
    void* p = allocator.allocate(bytes);
    data_ = std::unique_ptr<T, Release>(static_cast<T*>(p), Release{&allocator, bytes});
  }
  // A moved-from buffer is empty (size 0), so size() tells whether a buffer holds storage.
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    if (this != &other) {
      data_ = std::move(other.data_);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return data_ ? data_.get_deleter().bytes : 0; }
  std::span<T> span() { return {data(), size_}; }
  std::span<const T> span() const { return {data(), size_}; }
  // Hands the storage, without copying it, to `owner` (Allocator::adopt), which counts it and
  // releases it from now on. Throws, leaving the buffer as it was, when the owner refuses.
  void transfer_to(Allocator& owner) {
    if (!data_ || data_.get_deleter().allocator == &owner) return;
    Release& release = data_.get_deleter();
    owner.adopt(data_.get(), release.bytes, *release.allocator);
    release.allocator = &owner;
  }

 private:
  struct Release {
    Allocator* allocator = nullptr;
    std::size_t bytes = 0;
    void operator()(T* p) const { allocator->deallocate(p, bytes); }
  };
  std::unique_ptr<T, Release> data_;
  std::size_t size_ = 0;
};

// Geometry of a blocked matrix. Plain data; all offsets in elements.
// Blocks are ordered row of blocks by row of blocks ([rows/br][cols/bc][br][bc]),
// or, with column_panels, column by column ([cols/bc][rows/br][br][bc]). A GEMM
// reduces along a row of blocks of its left operand and along a column of
// blocks of its right operand, so right operands (weights) use column panels:
// each BRGEMM then streams one contiguous region per operand.
struct BlockShape {
  std::int64_t rows = 0, cols = 0;   // logical size
  std::int64_t brow = 0, bcol = 0;   // block size
  bool column_panels = false;
  std::int64_t row_blocks() const { return (rows + brow - 1) / brow; }
  std::int64_t col_blocks() const { return (cols + bcol - 1) / bcol; }
  std::int64_t block_elems() const { return brow * bcol; }
  std::int64_t elems() const { return row_blocks() * col_blocks() * block_elems(); }
  // Distance between vertically / horizontally adjacent blocks.
  std::int64_t down_step() const { return (column_panels ? 1 : col_blocks()) * block_elems(); }
  std::int64_t right_step() const { return (column_panels ? row_blocks() : 1) * block_elems(); }
  std::int64_t block_offset(std::int64_t rb, std::int64_t cb) const {
    return rb * down_step() + cb * right_step();
  }
  // Whether the layout is the plain row-major rows x cols matrix itself: one block column of
  // whole rows and no padding rows (a buffer of rows * cols values in row order is this layout).
  bool row_major() const { return bcol == cols && rows % brow == 0; }
  bool operator==(const BlockShape&) const = default;
};

// Throws unless all sizes are positive.
void validate(const BlockShape& s, const char* name);

// A block size for a dimension: the preferred size, or the dimension itself
// (rounded up to `multiple`) when it is smaller.
std::int64_t choose_block(std::int64_t dim, std::int64_t preferred, std::int64_t multiple = 1);

// Within a block, element (r, c) is at r * bcol + c, except for VNNI-packed
// bf16 right operands, where row pairs are interleaved: (r/2) * 2 * bcol + 2 * c + r % 2,
// the layout LIBXSMM's bf16 BRGEMM requires for its A operand.
template <class T>
struct Blocked {
  BlockShape shape;
  AlignedBuffer<T> data;
  bool vnni = false;

  Blocked() = default;
  explicit Blocked(const BlockShape& s, bool vnni_ = false,
                   Allocator& allocator = heap_allocator());
  // Storage left as the allocator returns it, for a producer that writes every element, the
  // padding included (as zeros).
  Blocked(const BlockShape& s, bool vnni_, Allocator& allocator, Uninitialised);
  T* block(std::int64_t rb, std::int64_t cb) { return data.data() + shape.block_offset(rb, cb); }
  const T* block(std::int64_t rb, std::int64_t cb) const {
    return data.data() + shape.block_offset(rb, cb);
  }
};
using BlockedMatrix = Blocked<float>;
using BlockedBf16 = Blocked<bfloat16>;

// Zeroes the padding rows and columns of m (every element outside its logical rows x cols), for
// producers that write only the logical elements into uninitialised storage.
void zero_padding(BlockedMatrix& m);

// Row-major plain <-> blocked. `plain` holds shape.rows * shape.cols values.
BlockedMatrix pack(std::span<const float> plain, const BlockShape& shape);
void pack_into(std::span<const float> plain, BlockedMatrix& out);
void unpack(const BlockedMatrix& m, std::span<float> plain);

// out = m^T with blocks bcol x brow; out must have the transposed shape, which
// keeps the block order flag.
void transpose_into(const BlockedMatrix& m, BlockedMatrix& out);
BlockShape transposed(const BlockShape& s);

// fp32 -> bf16 in the same blocked geometry; `vnni` selects the layout above
// (needs an even block row count). The _into form reuses `out` when it already
// has the right shape and layout, else allocates it from `allocator`.
BlockedBf16 to_bf16(const BlockedMatrix& m, bool vnni);
void to_bf16_into(const BlockedMatrix& m, bool vnni, BlockedBf16& out,
                  Allocator& allocator = heap_allocator());

}  // namespace rematch::kernels
