#include "models/data/ragged.hpp"

#include <limits>

#include "scheduler/io/atomic_file.hpp"

namespace rematch::data {

RaggedArray::RaggedArray(const std::string& values, const std::string& offsets)
    : values_(std::make_unique<NpyFile>(values)) {
  const NpyHeader& h = values_->header();
  if (h.shape.empty() || h.shape.size() > 2) {
    values_->fail("sequence values must be (total length, channels) or (total length,), the shape is " +
                 shape_text(h.shape));
  }
  require_samples(*values_, {});
  channels_ = h.shape.size() == 2 ? h.shape[1] : 1;
  if (channels_ <= 0) values_->fail("sequence values need at least one channel");
  const std::int64_t total = h.shape[0];
  NpyFile off(offsets);
  offsets_ = off.read_labels(total == std::numeric_limits<std::int64_t>::max() ? total : total + 1);
  if (offsets_.size() < 2) off.fail("offsets need n + 1 >= 2 entries, got " + std::to_string(offsets_.size()));
  if (offsets_.front() != 0) off.fail("offsets must start at 0, the first is " + std::to_string(offsets_.front()));
  for (std::size_t i = 1; i < offsets_.size(); ++i) {
    if (offsets_[i] <= offsets_[i - 1]) {
      off.fail("offsets must increase strictly (no empty sequence): offsets[" + std::to_string(i) +
               "] = " + std::to_string(offsets_[i]) + " after " + std::to_string(offsets_[i - 1]));
    }
  }
  if (offsets_.back() != total) {
    off.fail("the last offset is " + std::to_string(offsets_.back()) + ", but " + values_->path() +
             " holds " + std::to_string(total) + " positions");
  }
}

std::vector<std::int64_t> RaggedArray::lengths() const {
  std::vector<std::int64_t> out(static_cast<std::size_t>(sequences()));
  for (std::int64_t i = 0; i < sequences(); ++i) out[std::size_t(i)] = length(i);
  return out;
}

void RaggedArray::read(std::int64_t i, std::int64_t width, float* out) const {
  const std::int64_t len = length(i);
  if (width < len) throw DataError(path() + ": sequence " + std::to_string(i) + " is longer than " + std::to_string(width));
  std::vector<float> rows(std::size_t(len * channels_));
  values_->read_rows(offsets_[std::size_t(i)], len, rows.data());
  for (std::int64_t c = 0; c < channels_; ++c) {
    float* line = out + c * width;
    for (std::int64_t q = 0; q < len; ++q) line[q] = rows[std::size_t(q * channels_ + c)];
    for (std::int64_t q = len; q < width; ++q) line[q] = 0.0f;
  }
}

void write_npy_integers(const std::string& path, std::span<const std::int64_t> values) {
  const std::int64_t shape[] = {std::int64_t(values.size())};
  as_data_error([&] {
    io::AtomicFile file(path);
    const std::string header = npy_header_bytes(DType::i8, shape);
    file.write(header.data(), header.size());
    file.write(values.data(), values.size_bytes());
    file.commit();
  });
}

void write_ragged(const std::string& values, const std::string& offsets, std::int64_t channels,
                  std::span<const std::vector<float>> sequences) {
  std::vector<std::int64_t> off{0};
  std::vector<float> all;
  for (const auto& s : sequences) {
    if (s.empty() || std::int64_t(s.size()) % channels != 0) {
      throw DataError(values + ": a sequence must hold a whole, non-zero number of positions");
    }
    all.insert(all.end(), s.begin(), s.end());
    off.push_back(off.back() + std::int64_t(s.size()) / channels);
  }
  const std::int64_t shape[] = {off.back(), channels};
  write_npy(values, shape, all);
  write_npy_integers(offsets, off);
}

}  // namespace rematch::data
