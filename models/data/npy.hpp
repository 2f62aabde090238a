#pragma once
// NumPy .npy arrays: the header parsed and checked against the file, rows read on demand.
//
// Format versions 1.0, 2.0 and 3.0; C order only; little-endian data. Samples are read as
// float32 whatever their stored type:
//   <f4  as stored;   <f2  widened exactly;   |u1  divided by 255 (0..255 -> [0, 1]).
// Label files hold integers: |u1 |i1 <u2 <i2 <u4 <i4 <u8 <i8.
// Nothing reads a whole file: an NpyFile keeps the descriptor and reads row ranges with
// pread, so a data file larger than the process's memory limit is usable.
// Every problem (wrong magic, unsupported dtype, Fortran order, malformed header, a data
// size that disagrees with the shape) throws DataError naming the file and the problem.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/data/fashion_mnist.hpp"
#include "models/data/input_file.hpp"
#include "scheduler/io/atomic_file.hpp"

namespace rematch::data {

enum class DType { f4, f2, u1, i1, u2, i2, u4, i4, u8, i8 };

std::string dtype_name(DType t);  // as in the header: "<f4", "|u1", ...
std::size_t dtype_size(DType t);
bool is_integer(DType t);

// Most dimensions an array may have, and the longest header accepted (numpy writes a few
// hundred bytes; the limit keeps a hostile length from allocating gigabytes).
inline constexpr std::size_t kNpyMaxDims = 32;
inline constexpr std::uint32_t kNpyMaxHeader = 1 << 16;

struct NpyHeader {
  DType dtype = DType::f4;
  std::vector<std::int64_t> shape;
  std::uint64_t data_offset = 0;  // bytes before the first element
  std::uint64_t data_bytes = 0;   // product of shape times the element size

  std::int64_t elements() const;
  std::int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  std::int64_t row_elements() const;  // product of shape[1:]; 1 for a 0- or 1-d array
  std::vector<std::int64_t> row_shape() const { return {shape.begin() + (shape.empty() ? 0 : 1), shape.end()}; }
};

// Reads `n` bytes at `offset` into `out`, or throws.
using ReadAt = std::function<void(std::uint64_t offset, void* out, std::size_t n)>;

// Parses and checks the header of an array of `size` bytes whose reader is `read`; `name`
// begins every error message. The data must be exactly data_bytes long.
NpyHeader read_npy_header(const ReadAt& read, std::uint64_t size, const std::string& name);

// "(60000, 784)", "(10,)": a shape as numpy prints it, for messages.
std::string shape_text(std::span<const std::int64_t> shape);

// Converts `count` stored elements of type `t` to float (see the scaling above).
void to_float(DType t, const void* stored, std::size_t count, float* out);

// The header of a C-order array, padded as numpy pads it (version 1.0 if it fits).
std::string npy_header_bytes(DType t, std::span<const std::int64_t> shape);

class NpyFile {
 public:
  explicit NpyFile(std::string path);

  const std::string& path() const { return file_.path(); }
  const NpyHeader& header() const { return header_; }
  std::int64_t rows() const { return header_.rows(); }
  std::int64_t row_elements() const { return header_.row_elements(); }

  // Rows [begin, begin + count) as float, count * row_elements() values. Samples only (see
  // require_samples); a non-finite stored value is refused with its row named.
  void read_rows(std::int64_t begin, std::int64_t count, float* out) const;
  // The whole array as integers (a label file: 1-d, integer dtype); each must lie in
  // [0, limit), otherwise the error names the first offending index and value.
  std::vector<std::int64_t> read_labels(std::int64_t limit) const;

  [[noreturn]] void fail(const std::string& problem) const { file_.fail(problem); }

 private:
  InputFile file_;
  NpyHeader header_;
};

// Requires `file` to hold samples (<f4, <f2 or |u1) whose rows have `shape` (a model's input),
// naming the file, the expected and the found shape otherwise. An empty `shape` accepts any.
void require_samples(const NpyFile& file, std::span<const std::int64_t> shape);

// Runs `write`, reporting a failed file write (io::WriteError) as the DataError every reader and
// writer of this library throws.
template <class F>
void as_data_error(F&& write) {
  try {
    write();
  } catch (const io::WriteError& e) {
    throw DataError(e.what());
  }
}

// Writes a float32 array atomically (io::AtomicFile: temporary file, checked writes, rename).
void write_npy(const std::string& path, std::span<const std::int64_t> shape, std::span<const float> values);

// A float32 array written row block by row block (the embeddings of a large file), appearing
// at `path` only when commit() finds every promised row written.
class NpyWriter {
 public:
  NpyWriter(const std::string& path, std::vector<std::int64_t> shape);
  ~NpyWriter();
  void append(std::span<const float> rows);  // a whole number of rows
  void commit();

 private:
  std::unique_ptr<io::AtomicFile> file_;
  std::vector<std::int64_t> shape_;
  std::uint64_t expected_ = 0;  // data bytes the shape promises
};

}  // namespace rematch::data
