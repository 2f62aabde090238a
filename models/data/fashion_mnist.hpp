#pragma once
// Fashion-MNIST (or any IDX image/label pair) read from its gzip files.
//
// The reader streams through zlib, so the compressed files are never held in
// memory, and checks everything the IDX header promises: magic number, image
// size, item count, and that the payload is exactly as long as announced.
// Every failure is a DataError whose message names the file and the problem.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/data/rows.hpp"

namespace rematch::data {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::uint32_t kIdxImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
inline constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension

// Where Debian's dataset-fashion-mnist package installs the four files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct Dataset final : Rows {
  std::int64_t count = 0, rows = 0, cols = 0;
  // count x rows x cols, row-major, as stored (0..255): a quarter of the memory of floats, which
  // matters when the process runs under a memory limit (bench/beyond_ram).
  std::vector<std::uint8_t> pixels;
  std::vector<std::int32_t> labels;  // count class indices (0..255 as stored in IDX)

  std::int64_t image_size() const { return rows * cols; }
  std::int64_t samples() const override { return count; }
  std::vector<std::int64_t> sample_shape() const override { return {rows * cols}; }
  void read(std::int64_t i, float* out) const override;
  const std::uint8_t* image(std::int64_t i) const { return pixels.data() + i * image_size(); }
  // Pixel value as the models read it, in [0, 1].
  static float intensity(std::uint8_t p) { return static_cast<float>(p) / 255.0f; }
};

enum class Split { train, test };

// Reads train-{images-idx3,labels-idx1}-ubyte.gz or the t10k- pair from `dir`.
Dataset load_fashion_mnist(const std::string& dir = kFashionMnistDir, Split split = Split::train);

// Reads an explicit pair; the two files must hold the same number of items.
// Uncompressed IDX files are accepted too (zlib reads them transparently).
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path);

}  // namespace rematch::data
