#include "models/data/fashion_mnist.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <new>

namespace rematch::data {
namespace {

// One open gzip (or plain) file; every error names it.
class GzFile {
 public:
  explicit GzFile(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    if (!std::filesystem::exists(path_, ec)) fail("missing file");
    if (std::filesystem::is_directory(path_, ec)) fail("is a directory, not a file");
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr && errno == ENOMEM) throw std::bad_alloc();
    if (file_ == nullptr) fail(std::string("cannot open: ") + std::strerror(errno));
    gzbuffer(file_, 1 << 17);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  ~GzFile() { gzclose(file_); }

  [[noreturn]] void fail(const std::string& problem) const {
    throw DataError("IDX file " + path_ + ": " + problem);
  }

  // Up to n bytes; fewer only at the end of the data. A gzip stream cut short
  // also ends up here as a short read (zlib reports it as Z_BUF_ERROR, not -1).
  std::size_t read(unsigned char* dst, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      // gzread takes an unsigned length, so large requests go in slices.
      const auto want = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
      const int got = gzread(file_, dst + done, want);
      if (got < 0) {
        int code = Z_OK;
        const std::string message = gzerror(file_, &code);
        // zlib's buffers are allocated as it reads: a process limit shows up here, not as corrupt data.
        if (code == Z_MEM_ERROR) throw std::bad_alloc();
        fail("corrupt gzip data: " + message);
      }
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

  void read_exact(unsigned char* dst, std::size_t n, const std::string& what, std::size_t offset) {
    const std::size_t got = read(dst, n);
    if (got < n) {
      fail("truncated: " + what + " needs bytes " + std::to_string(offset) + ".." +
           std::to_string(offset + n) + " but the data ends at byte " + std::to_string(offset + got));
    }
  }

  void expect_end(const std::string& after) {
    unsigned char extra = 0;
    if (read(&extra, 1) != 0) fail("trailing data after " + after);
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

// IDX headers are big-endian 32-bit words: the magic, then one size per dimension.
template <std::size_t N>
std::array<std::uint32_t, N> read_header(GzFile& f, std::uint32_t magic, const char* kind) {
  std::array<unsigned char, 4 * N> raw{};
  f.read_exact(raw.data(), raw.size(), "the header", 0);
  std::array<std::uint32_t, N> words{};
  for (std::size_t w = 0; w < N; ++w) {
    const unsigned char* b = raw.data() + 4 * w;
    words[w] = std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
  }
  if (words[0] != magic) {
    char msg[128];
    std::snprintf(msg, sizeof msg, "bad magic 0x%08x (expected 0x%08x for IDX %s)", words[0], magic, kind);
    f.fail(msg);
  }
  return words;
}

}  // namespace

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path) {
  GzFile images(images_path);
  GzFile labels(labels_path);
  const auto [image_magic, count, rows, cols] = read_header<4>(images, kIdxImagesMagic, "images");
  const auto [label_magic, label_count] = read_header<2>(labels, kIdxLabelsMagic, "labels");
  if (rows == 0 || cols == 0) {
    images.fail("bad dimensions " + std::to_string(rows) + "x" + std::to_string(cols));
  }
  if (count != label_count) {
    throw DataError("IDX count mismatch: " + images_path + " holds " + std::to_string(count) +
                    " images but " + labels_path + " holds " + std::to_string(label_count) + " labels");
  }

  Dataset d;
  d.count = count;
  d.rows = rows;
  d.cols = cols;
  // rows * cols < 2^64 always; only count * pixels can overflow.
  if (d.count > std::numeric_limits<std::int64_t>::max() / d.image_size()) {
    images.fail("dimensions overflow: " + std::to_string(count) + " x " + std::to_string(rows) + " x " +
                std::to_string(cols));
  }
  const std::int64_t total = d.count * d.image_size();

  // Appending as data arrives (rather than sizing from the header) keeps a
  // corrupt header from allocating gigabytes before truncation is noticed.
  d.pixels.reserve(static_cast<std::size_t>(std::min<std::int64_t>(total, std::int64_t{1} << 26)));
  constexpr std::int64_t kChunk = 1 << 16;
  for (std::int64_t done = 0; done < total;) {
    const auto n = static_cast<std::size_t>(std::min<std::int64_t>(total - done, kChunk));
    const std::size_t at = d.pixels.size();
    d.pixels.resize(at + n);
    images.read_exact(d.pixels.data() + at, n, "pixel data of " + std::to_string(count) + " images", 16 + done);
    done += static_cast<std::int64_t>(n);
  }
  images.expect_end(std::to_string(count) + " images");

  d.labels.reserve(static_cast<std::size_t>(std::min<std::int64_t>(d.count, std::int64_t{1} << 26)));
  std::vector<unsigned char> chunk(kChunk);
  for (std::int64_t done = 0; done < d.count;) {
    const auto n = static_cast<std::size_t>(std::min<std::int64_t>(d.count - done, std::ssize(chunk)));
    labels.read_exact(chunk.data(), n, std::to_string(count) + " labels", 8 + done);
    d.labels.insert(d.labels.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    done += static_cast<std::int64_t>(n);
  }
  labels.expect_end(std::to_string(count) + " labels");
  return d;
}

Dataset load_fashion_mnist(const std::string& dir, Split split) {
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::filesystem::path base(dir);
  return load_idx_pair((base / (prefix + "-images-idx3-ubyte.gz")).string(),
                       (base / (prefix + "-labels-idx1-ubyte.gz")).string());
}

void Dataset::read(std::int64_t i, float* out) const {
  const std::uint8_t* p = image(i);
  for (std::int64_t k = 0; k < image_size(); ++k) out[k] = intensity(p[k]);
}

}  // namespace rematch::data
