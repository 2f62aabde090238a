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

void Sampler::copy_image(std::int64_t sample, std::vector<float>& out) {
  const std::size_t at = out.size();
  out.resize(at + static_cast<std::size_t>(rows_.sample_size()));
  rows_.read(sample, out.data() + at);
}

PairBatch Sampler::pairs(std::int64_t batch, double similar_fraction) {
  require(batch > 0, "batch must be positive");
  require(similar_fraction >= 0.0 && similar_fraction <= 1.0, "similar_fraction must be in [0, 1]");
  const auto n_similar = static_cast<std::int64_t>(std::llround(similar_fraction * static_cast<double>(batch)));
  require(n_similar == 0 || pairable_ > 0, "similar pairs need a class with at least two samples");
  require(n_similar == batch || index_.nonempty_classes() >= 2, "dissimilar pairs need at least two classes");

  PairBatch b;
  b.batch = batch;
  b.dim = rows_.sample_size();
  b.similar.assign(static_cast<std::size_t>(batch), 0.0f);
  std::fill_n(b.similar.begin(), n_similar, 1.0f);
  for (std::int64_t i = batch - 1; i > 0; --i) {  // Fisher-Yates, with our portable draw
    const auto j = static_cast<std::int64_t>(uniform_below(rng_, static_cast<std::uint64_t>(i + 1)));
    std::swap(b.similar[static_cast<std::size_t>(i)], b.similar[static_cast<std::size_t>(j)]);
  }
  b.left.reserve(static_cast<std::size_t>(batch * b.dim));
  b.right.reserve(static_cast<std::size_t>(batch * b.dim));
  for (float s : b.similar) {
    std::int64_t a = 0, p = 0;
    if (s != 0.0f) {
      a = draw_anchor_with_partner();
      p = draw_positive(a);
    } else {
      a = static_cast<std::int64_t>(uniform_below(rng_, static_cast<std::uint64_t>(index_.samples())));
      p = draw_negative(a);
    }
    b.left_index.push_back(a);
    b.right_index.push_back(p);
    copy_image(a, b.left);
    copy_image(p, b.right);
  }
  return b;
}

TripletBatch Sampler::triplets(std::int64_t batch) {
  require(batch > 0, "batch must be positive");
  require(pairable_ > 0, "triplets need a class with at least two samples");
  require(index_.nonempty_classes() >= 2, "triplets need at least two classes");

  TripletBatch b;
  b.batch = batch;
  b.dim = rows_.sample_size();
  for (auto* v : {&b.anchor, &b.positive, &b.negative}) v->reserve(static_cast<std::size_t>(batch * b.dim));
  for (std::int64_t i = 0; i < batch; ++i) {
    const std::int64_t a = draw_anchor_with_partner();
    const std::int64_t p = draw_positive(a);
    const std::int64_t n = draw_negative(a);
    b.anchor_index.push_back(a);
    b.positive_index.push_back(p);
    b.negative_index.push_back(n);
    copy_image(a, b.anchor);
    copy_image(p, b.positive);
    copy_image(n, b.negative);
  }
  return b;
}

PairBatch sample_pairs(const Dataset& data, std::int64_t batch, std::uint64_t seed, double similar_fraction) {
  return Sampler(data, seed).pairs(batch, similar_fraction);
}

TripletBatch sample_triplets(const Dataset& data, std::int64_t batch, std::uint64_t seed) {
  return Sampler(data, seed).triplets(batch);
}

}  // namespace rematch::data
