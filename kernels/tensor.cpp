#include "kernels/tensor.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <string>

#include "kernels/brgemm.hpp"  // transpose_block
#include "kernels/op_timing.hpp"
#include "kernels/error.hpp"

namespace rematch::kernels {

bfloat16 to_bf16(float f) {
  const auto u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0) {
    return {static_cast<std::uint16_t>((u >> 16) | 0x0040u)};  // keep NaN quiet and non-zero
  }
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return {static_cast<std::uint16_t>((u + rounding) >> 16)};
}

float to_float(bfloat16 h) { return std::bit_cast<float>(static_cast<std::uint32_t>(h.bits) << 16); }

namespace {
// Buffers from this size on (a batch's input rows, which a step reads as its input tensor) are
// placed on transparent huge pages, as the arena's chunks are: a narrow first layer streams them
// from memory, and on 4 KiB pages the step took ~15% longer (N = 262,144 x 784, 2 threads).
constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

class HeapAllocator final : public Allocator {
 public:
  void* allocate(std::size_t bytes) override {
    const bool huge = bytes >= kHugePageBytes;
    void* p = std::aligned_alloc(huge ? kHugePageBytes : kAlignment,
                                 huge ? (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes : bytes);
    if (p == nullptr) throw std::bad_alloc();
    if (huge) (void)madvise(p, bytes, MADV_HUGEPAGE);
    return p;
  }
  void deallocate(void* p, std::size_t) noexcept override { std::free(p); }
};
}  // namespace

void Allocator::adopt(void*, std::size_t, Allocator&) {
  throw std::invalid_argument("allocator: cannot take over storage from another allocator");
}

Allocator& heap_allocator() {
  static HeapAllocator heap;
  return heap;
}

void validate(const BlockShape& s, const char* name) {
  require(s.rows > 0 && s.cols > 0,
          std::string(name) + ": sizes must be positive, got " + std::to_string(s.rows) + " x " +
              std::to_string(s.cols));
  require(s.brow > 0 && s.bcol > 0,
          std::string(name) + ": block sizes must be positive, got " + std::to_string(s.brow) +
              " x " + std::to_string(s.bcol));
}

std::int64_t choose_block(std::int64_t dim, std::int64_t preferred, std::int64_t multiple) {
  require(dim > 0 && preferred > 0 && multiple > 0, "choose_block: arguments must be positive");
  if (dim >= preferred) return preferred;
  return (dim + multiple - 1) / multiple * multiple;
}

template <class T>
Blocked<T>::Blocked(const BlockShape& s, bool vnni_, Allocator& allocator) : shape(s), vnni(vnni_) {
  validate(s, "Blocked");
  require(!vnni || s.brow % 2 == 0, "Blocked: VNNI layout needs an even block row count");
  data = AlignedBuffer<T>(static_cast<std::size_t>(s.elems()), allocator);
}
template <class T>
Blocked<T>::Blocked(const BlockShape& s, bool vnni_, Allocator& allocator, Uninitialised)
    : shape(s), vnni(vnni_) {
  validate(s, "Blocked");
  require(!vnni || s.brow % 2 == 0, "Blocked: VNNI layout needs an even block row count");
  data = AlignedBuffer<T>(static_cast<std::size_t>(s.elems()), allocator, Uninitialised{});
}
template struct Blocked<float>;
template struct Blocked<bfloat16>;

void zero_padding(BlockedMatrix& m) {
  const BlockShape& s = m.shape;
  const std::int64_t last_rows = s.rows - (s.row_blocks() - 1) * s.brow;
  const std::int64_t last_cols = s.cols - (s.col_blocks() - 1) * s.bcol;
  if (last_rows == s.brow && last_cols == s.bcol) return;
  const OpScope scope(OpKind::zero_fill);
  for (std::int64_t rb = 0; rb < s.row_blocks(); ++rb) {
    const std::int64_t rows = rb + 1 == s.row_blocks() ? last_rows : s.brow;
    for (std::int64_t cb = 0; cb < s.col_blocks(); ++cb) {
      const std::int64_t cols = cb + 1 == s.col_blocks() ? last_cols : s.bcol;
      float* blk = m.block(rb, cb);
      if (cols < s.bcol) {
        for (std::int64_t i = 0; i < rows; ++i) std::fill(blk + i * s.bcol + cols, blk + (i + 1) * s.bcol, 0.0f);
      }
      std::fill(blk + rows * s.bcol, blk + s.brow * s.bcol, 0.0f);
    }
  }
}

void pack_into(std::span<const float> plain, BlockedMatrix& out) {
  const OpScope scope(OpKind::layout);
  const BlockShape& s = out.shape;
  require(static_cast<std::int64_t>(plain.size()) == s.rows * s.cols,
          "pack: plain matrix has " + std::to_string(plain.size()) + " values, expected " +
              std::to_string(s.rows * s.cols));
  // A row block per task, row by row: its source rows are one contiguous region read in order
  // (a block at a time instead read every row's slice from another page, which the prefetchers
  // did not follow), scattered into the row's slice of each block, padding zeroed. Raw pointers:
  // the compiler cannot keep a span's pointer in a register across stores.
  const float* src = plain.data();
  const std::int64_t row_blocks = s.row_blocks(), col_blocks = s.col_blocks();
#pragma omp parallel for schedule(static)
  for (std::int64_t rb = 0; rb < row_blocks; ++rb) {
    for (std::int64_t i = 0; i < s.brow; ++i) {
      const std::int64_t r = rb * s.brow + i;
      for (std::int64_t cb = 0; cb < col_blocks; ++cb) {
        float* dst = out.block(rb, cb) + i * s.bcol;
        if (r >= s.rows) {
          std::fill(dst, dst + s.bcol, 0.0f);
          continue;
        }
        const std::int64_t cols = std::min(s.bcol, s.cols - cb * s.bcol);
        const float* row = src + r * s.cols + cb * s.bcol;
        std::copy(row, row + cols, dst);
        std::fill(dst + cols, dst + s.bcol, 0.0f);
      }
    }
  }
}

BlockedMatrix pack(std::span<const float> plain, const BlockShape& shape) {
  BlockedMatrix m(shape);
  pack_into(plain, m);
  return m;
}

void unpack(const BlockedMatrix& m, std::span<float> plain) {
  const OpScope scope(OpKind::layout);
  const BlockShape& s = m.shape;
  require(static_cast<std::int64_t>(plain.size()) == s.rows * s.cols,
          "unpack: plain matrix has " + std::to_string(plain.size()) + " values, expected " +
              std::to_string(s.rows * s.cols));
  float* dst = plain.data();
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < s.rows; ++r) {
    for (std::int64_t cb = 0; cb < s.col_blocks(); ++cb) {
      const float* row = m.block(r / s.brow, cb) + (r % s.brow) * s.bcol;
      const std::int64_t cols = std::min(s.bcol, s.cols - cb * s.bcol);
      std::copy(row, row + cols, dst + r * s.cols + cb * s.bcol);
    }
  }
}

BlockShape transposed(const BlockShape& s) { return {s.cols, s.rows, s.bcol, s.brow, s.column_panels}; }

void transpose_into(const BlockedMatrix& m, BlockedMatrix& out) {
  const OpScope scope(OpKind::layout);
  const BlockShape& s = m.shape;
  require(out.shape == transposed(s), "transpose: output shape is not the transposed input shape");
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t rb = 0; rb < s.row_blocks(); ++rb) {
    for (std::int64_t cb = 0; cb < s.col_blocks(); ++cb) {
      transpose_block(m.block(rb, cb), s.brow, s.bcol, out.block(cb, rb));
    }
  }
}

BlockedBf16 to_bf16(const BlockedMatrix& m, bool vnni) {
  BlockedBf16 out;
  to_bf16_into(m, vnni, out);
  return out;
}

void to_bf16_into(const BlockedMatrix& m, bool vnni, BlockedBf16& out, Allocator& allocator) {
  const OpScope scope(OpKind::layout);
  if (!(out.shape == m.shape) || out.vnni != vnni || out.data.size() == 0) {
    out = BlockedBf16(m.shape, vnni, allocator);
  }
  const BlockShape& s = m.shape;
  const std::int64_t blocks = s.row_blocks() * s.col_blocks();
#pragma omp parallel for schedule(static)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const float* src = m.data.data() + b * s.block_elems();
    bfloat16* dst = out.data.data() + b * s.block_elems();
    for (std::int64_t i = 0; i < s.brow; ++i) {
      for (std::int64_t j = 0; j < s.bcol; ++j) {
        const std::int64_t at = vnni ? (i / 2) * 2 * s.bcol + 2 * j + i % 2 : i * s.bcol + j;
        dst[at] = to_bf16(src[i * s.bcol + j]);
      }
    }
  }
}

}  // namespace rematch::kernels
