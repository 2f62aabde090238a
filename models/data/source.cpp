#include "models/data/source.hpp"

#include <algorithm>
#include <cmath>

#include "models/data/npy.hpp"

namespace rematch::data {
namespace {

class NpyRows final : public Rows {
 public:
  explicit NpyRows(const std::string& path) : file_(path) { require_samples(file_, {}); }
  std::int64_t samples() const override { return file_.rows(); }
  std::vector<std::int64_t> sample_shape() const override { return file_.header().row_shape(); }
  void read(std::int64_t i, float* out) const override { file_.read_rows(i, 1, out); }

 private:
  NpyFile file_;
};

// 0..n-1 in a seeded Fisher-Yates order (with the portable draw of the Sampler).
std::vector<std::int64_t> shuffled(std::int64_t n, std::mt19937_64& rng) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[std::size_t(i)] = i;
  for (std::int64_t i = n - 1; i > 0; --i) {
    std::swap(order[std::size_t(i)], order[uniform_below(rng, std::uint64_t(i + 1))]);
  }
  return order;
}

}  // namespace

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::labelled: return "labelled";
    case Layout::pairs: return "pairs";
    case Layout::triplets: return "triplets";
  }
  return "?";
}

RowSubset::RowSubset(std::shared_ptr<const Rows> base, std::vector<std::int64_t> index)
    : base_(std::move(base)), index_(std::move(index)) {
  for (std::int64_t i : index_) {
    if (i < 0 || i >= base_->samples()) throw std::invalid_argument("RowSubset: index out of range");
  }
}

void RowSubset::read(std::int64_t i, float* out) const { base_->read(index_[std::size_t(i)], out); }

Source Source::open(const DataFiles& files, std::int64_t classes) {
  const std::size_t want = files.layout == Layout::labelled ? 1 : files.layout == Layout::pairs ? 2 : 3;
  if (files.arrays.size() != want) {
    throw DataError(std::string("the ") + layout_name(files.layout) + " layout takes " + std::to_string(want) +
                    " sample files, " + std::to_string(files.arrays.size()) + " given");
  }
  const bool labelled = files.layout != Layout::triplets;
  if (labelled && files.labels.empty()) throw DataError(std::string("the ") + layout_name(files.layout) + " layout needs a labels file");
  if (!labelled && !files.labels.empty()) throw DataError("the triplets layout takes no labels file");
  Source s;
  s.layout_ = files.layout;
  for (const std::string& path : files.arrays) {
    auto rows = std::make_shared<const NpyRows>(path);
    if (!s.arrays_.empty()) {
      const Rows& first = *s.arrays_[0];
      if (rows->samples() != first.samples()) {
        throw DataError(path + ": " + std::to_string(rows->samples()) + " samples, " + s.names_[0] + " has " +
                        std::to_string(first.samples()));
      }
      if (rows->sample_shape() != first.sample_shape()) {
        throw DataError(path + ": samples of shape " + shape_text(rows->sample_shape()) + ", " + s.names_[0] +
                        " has " + shape_text(first.sample_shape()));
      }
    }
    s.arrays_.push_back(std::move(rows));
    s.names_.push_back(path);
  }
  if (labelled) {
    const NpyFile y(files.labels);
    const std::int64_t limit = files.layout == Layout::pairs ? 2 : classes > 0 ? std::min(classes, kMaxClasses) : kMaxClasses;
    const std::vector<std::int64_t> values = y.read_labels(limit);
    if (std::ssize(values) != s.samples()) {
      y.fail(std::to_string(values.size()) + " labels for the " + std::to_string(s.samples()) + " samples of " + s.names_[0]);
    }
    s.labels_.assign(values.begin(), values.end());
  }
  if (s.samples() == 0) throw DataError(s.names_[0] + ": no samples");
  return s;
}

Source Source::labelled(std::shared_ptr<const Dataset> data) {
  Source s;
  s.labels_ = data->labels;
  s.arrays_.push_back(std::move(data));
  s.names_.push_back("Fashion-MNIST");
  return s;
}

void Source::require_shape(int k, std::span<const std::int64_t> shape) const {
  const auto have = arrays_[std::size_t(k)]->sample_shape();
  if (!std::ranges::equal(have, shape)) {
    throw DataError(names_[std::size_t(k)] + ": samples of shape " + shape_text(have) + ", the model's input is " +
                    shape_text(shape));
  }
}

std::pair<Source, Source> Source::split(double fraction, std::uint64_t seed) const {
  if (!(fraction > 0 && fraction < 1)) throw DataError("--split must lie strictly between 0 and 1");
  const std::int64_t n = samples();
  const auto held = static_cast<std::int64_t>(std::llround(fraction * double(n)));
  if (held == 0 || held == n) {
    throw DataError("--split " + std::to_string(fraction) + " of " + std::to_string(n) + " samples leaves one part empty");
  }
  std::mt19937_64 rng(seed);
  const std::vector<std::int64_t> order = shuffled(n, rng);
  auto part = [&](std::int64_t begin, std::int64_t end) {
    std::vector<std::int64_t> index(order.begin() + begin, order.begin() + end);
    std::ranges::sort(index);  // file order: reads stay sequential where they can
    Source p;
    p.layout_ = layout_;
    p.names_ = names_;
    for (const auto& a : arrays_) p.arrays_.push_back(std::make_shared<const RowSubset>(a, index));
    if (!labels_.empty()) {
      for (std::int64_t i : index) p.labels_.push_back(labels_[std::size_t(i)]);
    }
    return p;
  };
  return {part(held, n), part(0, held)};
}

Batches::Batches(const Source& source, std::uint64_t seed) : source_(source), rng_(seed) {
  if (source.layout() == Layout::labelled) sampler_.emplace(source.array(0), source.labels(), seed);
}

std::int64_t Batches::next() {
  if (at_ == order_.size()) {  // a new epoch in a fresh order
    order_ = shuffled(source_.samples(), rng_);
    at_ = 0;
  }
  return order_[at_++];
}

namespace {

[[noreturn]] void wrong_layout(const Source& s, const char* what) {
  throw DataError(std::string(what) + " cannot be drawn from the " + layout_name(s.layout()) + " layout");
}

// Room for `batch` samples of `dim` floats, for the calls that return a whole batch.
std::vector<float> room(std::int64_t batch, std::int64_t dim) {
  return std::vector<float>(std::size_t(std::max<std::int64_t>(batch, 0) * dim));
}

}  // namespace

PairDraw Batches::pairs(std::int64_t batch, RowRange keep, std::span<float> left, std::span<float> right) {
  if (sampler_) return sampler_->pairs(batch, keep, left, right);
  if (source_.layout() != Layout::pairs && source_.layout() != Layout::triplets) wrong_layout(source_, "pairs");
  PairDraw b;
  b.batch = keep.count;
  b.dim = source_.array(0).sample_size();
  check_output(batch, keep, b.dim, {left, right});
  const bool triplets = source_.layout() == Layout::triplets;
  std::int64_t row = 0;
  for (std::int64_t k = 0; k < batch; ++k) {
    // From triplets, each row gives a similar pair (anchor, positive) then a dissimilar one.
    const bool second = triplets && k % 2 == 1;
    if (!second) row = next();
    if (!keep.contains(k)) continue;
    const std::int64_t at = (k - keep.first) * b.dim;
    source_.array(0).read(row, left.data() + at);
    source_.array(second ? 2 : 1).read(row, right.data() + at);
    b.similar.push_back(triplets ? (second ? 0.0f : 1.0f) : float(source_.labels()[std::size_t(row)]));
    b.left_index.push_back(row);
    b.right_index.push_back(row);
  }
  return b;
}

PairBatch Batches::pairs(std::int64_t batch) {
  std::vector<float> left = room(batch, source_.array(0).sample_size()), right(left.size());
  PairDraw d = pairs(batch, {0, batch}, left, right);
  return {std::move(d), std::move(left), std::move(right)};
}

TripletDraw Batches::triplets(std::int64_t batch, RowRange keep, std::span<float> anchor, std::span<float> positive,
                              std::span<float> negative) {
  if (sampler_) return sampler_->triplets(batch, keep, anchor, positive, negative);
  if (source_.layout() != Layout::triplets) wrong_layout(source_, "triplets");
  TripletDraw b;
  b.batch = keep.count;
  b.dim = source_.array(0).sample_size();
  check_output(batch, keep, b.dim, {anchor, positive, negative});
  for (std::int64_t k = 0; k < batch; ++k) {
    const std::int64_t row = next();
    if (!keep.contains(k)) continue;
    const std::int64_t at = (k - keep.first) * b.dim;
    source_.array(0).read(row, anchor.data() + at);
    source_.array(1).read(row, positive.data() + at);
    source_.array(2).read(row, negative.data() + at);
    b.anchor_index.push_back(row);
    b.positive_index.push_back(row);
    b.negative_index.push_back(row);
  }
  return b;
}

TripletBatch Batches::triplets(std::int64_t batch) {
  std::vector<float> anchor = room(batch, source_.array(0).sample_size()), positive(anchor.size()), negative(anchor.size());
  TripletDraw d = triplets(batch, {0, batch}, anchor, positive, negative);
  return {std::move(d), std::move(anchor), std::move(positive), std::move(negative)};
}

ClassDraw Batches::classes(std::int64_t batch, RowRange keep, std::span<float> samples) {
  if (source_.layout() != Layout::labelled) wrong_layout(source_, "classified samples");
  ClassDraw b;
  b.batch = keep.count;
  b.dim = source_.array(0).sample_size();
  check_output(batch, keep, b.dim, {samples});
  for (std::int64_t k = 0; k < batch; ++k) {
    const std::int64_t row = next();
    if (!keep.contains(k)) continue;
    source_.array(0).read(row, samples.data() + (k - keep.first) * b.dim);
    b.labels.push_back(source_.labels()[std::size_t(row)]);
  }
  return b;
}

ClassBatch Batches::classes(std::int64_t batch) {
  std::vector<float> samples = room(batch, source_.array(0).sample_size());
  ClassDraw d = classes(batch, {0, batch}, samples);
  return {std::move(d), std::move(samples)};
}

}  // namespace rematch::data
