#pragma once
// Ragged sequence data: n sequences of varying length with the same channel count, stored as
//   values   (T, C) or (T,)  every sequence's positions one after another, channels last
//                            (<f4, <f2 or |u1 as any sample file; see npy.hpp);
//   offsets  (n + 1,)        integers, offsets[0] = 0, strictly increasing, offsets[n] = T:
//                            sequence i is rows offsets[i] .. offsets[i+1] - 1 of values.
// Sequences are read from the values file on demand, never the whole file; the offsets are
// held in memory. See docs/sequences.md.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/data/npy.hpp"

namespace rematch::data {

class RaggedArray {
 public:
  // Opens and checks both files; throws DataError naming the file and the problem.
  RaggedArray(const std::string& values, const std::string& offsets);

  const std::string& path() const { return values_->path(); }
  std::int64_t sequences() const { return std::int64_t(offsets_.size()) - 1; }
  std::int64_t channels() const { return channels_; }
  std::int64_t length(std::int64_t i) const { return offsets_[std::size_t(i + 1)] - offsets_[std::size_t(i)]; }
  std::vector<std::int64_t> lengths() const;

  // Sequence i as channels x width (channel-major, the model's NCW sample), zero past its
  // length; requires width >= length(i).
  void read(std::int64_t i, std::int64_t width, float* out) const;

 private:
  std::unique_ptr<NpyFile> values_;  // held by pointer: a RaggedArray moves, an NpyFile does not
  std::int64_t channels_ = 1;
  std::vector<std::int64_t> offsets_;
};

// A 1-d integer array (offsets, labels) written atomically as <i8.
void write_npy_integers(const std::string& path, std::span<const std::int64_t> values);

// Writes sequences (each length x channels, channels last) as a values and an offsets file.
void write_ragged(const std::string& values, const std::string& offsets, std::int64_t channels,
                  std::span<const std::vector<float>> sequences);

}  // namespace rematch::data
