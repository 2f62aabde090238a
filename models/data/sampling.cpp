#include "models/data/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace rematch::data {
namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("rematch::data sampling: ") + what);
}

}  // namespace

std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  require(bound > 0, "uniform_below needs a positive bound");
  // 2^64 mod bound: the values below it are the incomplete last period of x % bound.
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t x = rng();
    if (x >= threshold) return x % bound;
  }
}

void check_output(std::int64_t batch, RowRange keep, std::int64_t dim,
                  std::initializer_list<std::span<float>> out) {
  require(batch > 0, "batch must be positive");
  require(keep.first >= 0 && keep.count > 0 && keep.first + keep.count <= batch,
          "the rows kept must lie within the batch");
  for (std::span<float> o : out) {
    require(std::ssize(o) == keep.count * dim, "the output of a sample batch must hold its rows exactly");
  }
}

ClassIndex::ClassIndex(std::span<const std::int32_t> labels) : position_(labels.size()) {
  samples_ = std::ssize(labels);
  std::int32_t max_label = -1;
  for (std::int32_t l : labels) {
    if (l < 0) throw std::invalid_argument("rematch::data sampling: negative label " + std::to_string(l));
    max_label = std::max(max_label, l);
  }
  members_.resize(static_cast<std::size_t>(max_label + 1));
  for (std::int64_t i = 0; i < samples_; ++i) {
    auto& m = members_[static_cast<std::size_t>(labels[static_cast<std::size_t>(i)])];
    position_[static_cast<std::size_t>(i)] = std::ssize(m);
    m.push_back(i);
  }
  nonempty_ = std::ranges::count_if(members_, [](const auto& m) { return !m.empty(); });
}

namespace {

const Dataset& checked(const Dataset& data) {
  require(std::ssize(data.labels) == data.count && data.rows > 0 && data.cols > 0 &&
              std::ssize(data.pixels) == data.count * data.image_size(),
          "dataset sizes disagree (count, rows, cols, images, labels)");
  return data;
}

}  // namespace

Sampler::Sampler(const Dataset& data, std::uint64_t seed) : Sampler(checked(data), data.labels, seed) {}

Sampler::Sampler(const Rows& rows, std::span<const std::int32_t> labels, std::uint64_t seed)
    : rows_(rows), labels_(labels), index_(labels), rng_(seed) {
  require(std::ssize(labels) == rows.samples() && rows.sample_size() > 0, "samples and labels disagree in number");
  for (std::int32_t l = 0; l < index_.label_slots(); ++l) {
    const std::int64_t n = std::ssize(index_.members(l));
    if (n >= 2) pairable_ += n;
  }
}

std::int64_t Sampler::draw_anchor_with_partner() {
  auto r = static_cast<std::int64_t>(uniform_below(rng_, static_cast<std::uint64_t>(pairable_)));
  for (std::int32_t l = 0;; ++l) {
    const auto& m = index_.members(l);
    if (m.size() < 2) continue;
    if (r < std::ssize(m)) return m[static_cast<std::size_t>(r)];
    r -= std::ssize(m);
  }
}

std::int64_t Sampler::draw_positive(std::int64_t anchor) {
  const auto& m = index_.members(labels_[static_cast<std::size_t>(anchor)]);
  // Draw among the other members: skip over the anchor's own slot.
  auto r = static_cast<std::int64_t>(uniform_below(rng_, m.size() - 1));
  if (r >= index_.position(anchor)) ++r;
  return m[static_cast<std::size_t>(r)];
}

std::int64_t Sampler::draw_negative(std::int64_t anchor) {
  const std::int32_t own = labels_[static_cast<std::size_t>(anchor)];
  const std::int64_t others = index_.samples() - std::ssize(index_.members(own));
  auto r = static_cast<std::int64_t>(uniform_below(rng_, static_cast<std::uint64_t>(others)));
  for (std::int32_t l = 0;; ++l) {
    if (l == own) continue;
    const auto& m = index_.members(l);
    if (r < std::ssize(m)) return m[static_cast<std::size_t>(r)];
    r -= std::ssize(m);
  }
}

PairDraw Sampler::pairs(std::int64_t batch, RowRange keep, std::span<float> left, std::span<float> right,
                       double similar_fraction) {
  require(batch > 0, "batch must be positive");
  require(similar_fraction >= 0.0 && similar_fraction <= 1.0, "similar_fraction must be in [0, 1]");
  const auto n_similar = static_cast<std::int64_t>(std::llround(similar_fraction * static_cast<double>(batch)));
  require(n_similar == 0 || pairable_ > 0, "similar pairs need a class with at least two samples");
  require(n_similar == batch || index_.nonempty_classes() >= 2, "dissimilar pairs need at least two classes");
  const std::int64_t dim = rows_.sample_size();
  check_output(batch, keep, dim, {left, right});

  std::vector<float> similar(static_cast<std::size_t>(batch), 0.0f);
  std::fill_n(similar.begin(), n_similar, 1.0f);
  for (std::int64_t i = batch - 1; i > 0; --i) {  // Fisher-Yates, with our portable draw
    const auto j = static_cast<std::int64_t>(uniform_below(rng_, static_cast<std::uint64_t>(i + 1)));
    std::swap(similar[static_cast<std::size_t>(i)], similar[static_cast<std::size_t>(j)]);
  }
  PairDraw d;
  d.batch = keep.count;
  d.dim = dim;
  for (std::int64_t i = 0; i < batch; ++i) {
    std::int64_t a = 0, p = 0;
    if (similar[static_cast<std::size_t>(i)] != 0.0f) {
      a = draw_anchor_with_partner();
      p = draw_positive(a);
    } else {
      a = static_cast<std::int64_t>(uniform_below(rng_, static_cast<std::uint64_t>(index_.samples())));
      p = draw_negative(a);
    }
    if (!keep.contains(i)) continue;
    const std::size_t at = static_cast<std::size_t>((i - keep.first) * dim);
    d.similar.push_back(similar[static_cast<std::size_t>(i)]);
    d.left_index.push_back(a);
    d.right_index.push_back(p);
    rows_.read(a, left.data() + at);
    rows_.read(p, right.data() + at);
  }
  return d;
}

PairBatch Sampler::pairs(std::int64_t batch, double similar_fraction) {
  std::vector<float> left(static_cast<std::size_t>(std::max<std::int64_t>(batch, 0) * rows_.sample_size()));
  std::vector<float> right(left.size());
  PairDraw d = pairs(batch, {0, batch}, left, right, similar_fraction);
  return {std::move(d), std::move(left), std::move(right)};
}

TripletDraw Sampler::triplets(std::int64_t batch, RowRange keep, std::span<float> anchor,
                              std::span<float> positive, std::span<float> negative) {
  require(batch > 0, "batch must be positive");
  require(pairable_ > 0, "triplets need a class with at least two samples");
  require(index_.nonempty_classes() >= 2, "triplets need at least two classes");
  const std::int64_t dim = rows_.sample_size();
  check_output(batch, keep, dim, {anchor, positive, negative});

  TripletDraw d;
  d.batch = keep.count;
  d.dim = dim;
  for (std::int64_t i = 0; i < batch; ++i) {
    const std::int64_t a = draw_anchor_with_partner();
    const std::int64_t p = draw_positive(a);
    const std::int64_t n = draw_negative(a);
    if (!keep.contains(i)) continue;
    const std::size_t at = static_cast<std::size_t>((i - keep.first) * dim);
    d.anchor_index.push_back(a);
    d.positive_index.push_back(p);
    d.negative_index.push_back(n);
    rows_.read(a, anchor.data() + at);
    rows_.read(p, positive.data() + at);
    rows_.read(n, negative.data() + at);
  }
  return d;
}

TripletBatch Sampler::triplets(std::int64_t batch) {
  std::vector<float> anchor(static_cast<std::size_t>(std::max<std::int64_t>(batch, 0) * rows_.sample_size()));
  std::vector<float> positive(anchor.size()), negative(anchor.size());
  TripletDraw d = triplets(batch, {0, batch}, anchor, positive, negative);
  return {std::move(d), std::move(anchor), std::move(positive), std::move(negative)};
}

PairBatch sample_pairs(const Dataset& data, std::int64_t batch, std::uint64_t seed, double similar_fraction) {
  return Sampler(data, seed).pairs(batch, similar_fraction);
}

TripletBatch sample_triplets(const Dataset& data, std::int64_t batch, std::uint64_t seed) {
  return Sampler(data, seed).triplets(batch);
}

}  // namespace rematch::data
