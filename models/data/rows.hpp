#pragma once
// Samples read by index: what batches are assembled from.
//
// A Rows is an in-memory data set (Fashion-MNIST), a .npy file read row by row on demand
// (never whole), or a subset of another Rows (a split). Every sample is `sample_size()` floats.
#include <cstdint>
#include <memory>
#include <vector>

namespace rematch::data {

class Rows {
 public:
  virtual ~Rows() = default;
  virtual std::int64_t samples() const = 0;
  virtual std::vector<std::int64_t> sample_shape() const = 0;
  // Writes sample i (0 <= i < samples()) as sample_size() floats.
  virtual void read(std::int64_t i, float* out) const = 0;

  std::int64_t sample_size() const {
    std::int64_t n = 1;
    for (std::int64_t d : sample_shape()) n *= d;
    return n;
  }
};

// The samples of `base` at `index` (each in [0, base->samples())), in that order.
class RowSubset final : public Rows {
 public:
  RowSubset(std::shared_ptr<const Rows> base, std::vector<std::int64_t> index);
  std::int64_t samples() const override { return std::ssize(index_); }
  std::vector<std::int64_t> sample_shape() const override { return base_->sample_shape(); }
  void read(std::int64_t i, float* out) const override;

 private:
  std::shared_ptr<const Rows> base_;
  std::vector<std::int64_t> index_;
};

}  // namespace rematch::data
