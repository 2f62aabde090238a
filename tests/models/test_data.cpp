// The data module: IDX gzip reading and its error paths, the real
// Fashion-MNIST files when installed, sampler determinism and class
// constraints, and the verification metrics against brute force.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "models/data/fashion_mnist.hpp"
#include "models/data/metrics.hpp"
#include "models/data/sampling.hpp"

namespace fs = std::filesystem;
using namespace rematch::data;

namespace {

using Bytes = std::vector<unsigned char>;

void put_u32(Bytes& b, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<unsigned char>(v >> shift));
}

Bytes idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols, const Bytes& pixels,
                 std::uint32_t magic = kIdxImagesMagic) {
  Bytes b;
  for (std::uint32_t v : {magic, count, rows, cols}) put_u32(b, v);
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

Bytes idx_labels(const Bytes& labels, std::uint32_t magic = kIdxLabelsMagic) {
  Bytes b;
  put_u32(b, magic);
  put_u32(b, static_cast<std::uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

Bytes gzip_bytes(const Bytes& plain, const fs::path& scratch) {
  gzFile f = gzopen(scratch.c_str(), "wb");
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(gzwrite(f, plain.data(), static_cast<unsigned>(plain.size())), static_cast<int>(plain.size()));
  gzclose(f);
  std::ifstream in(scratch, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

class IdxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("rematch_test_data_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_gz(const std::string& name, const Bytes& plain) {
    const fs::path p = dir_ / name;
    gzFile f = gzopen(p.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, plain.data(), static_cast<unsigned>(plain.size())), static_cast<int>(plain.size()));
    EXPECT_EQ(gzclose(f), Z_OK);
    return p.string();
  }
  std::string write_raw(const std::string& name, const Bytes& bytes) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                             static_cast<std::streamsize>(bytes.size()));
    return p.string();
  }
  // The 3 images of 2x3 pixels and labels used by most tests.
  std::string good_images() { return write_gz("img.gz", idx_images(3, 2, 3, pixels_)); }
  std::string good_labels() { return write_gz("lbl.gz", idx_labels({0, 7, 255})); }

  fs::path dir_;
  const Bytes pixels_ = {0, 255, 51, 1, 2, 3, 10, 20, 30, 40, 50, 60, 255, 254, 253, 252, 251, 0};
};

// Runs `load` and returns the DataError message (empty if nothing was thrown).
template <class F>
std::string error_of(F load) {
  try {
    load();
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_F(IdxFiles, RoundTrip) {
  const Dataset d = load_idx_pair(good_images(), good_labels());
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.rows, 2);
  EXPECT_EQ(d.cols, 3);
  ASSERT_EQ(d.pixels.size(), pixels_.size());
  for (std::size_t i = 0; i < pixels_.size(); ++i) EXPECT_EQ(d.pixels[i], pixels_[i]);
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 7, 255}));
  EXPECT_EQ(d.image(2)[0], 255);
  EXPECT_EQ(Dataset::intensity(d.image(2)[0]), 1.0f);
}

TEST_F(IdxFiles, UncompressedFilesAreReadToo) {
  const Dataset d =
      load_idx_pair(write_raw("img", idx_images(3, 2, 3, pixels_)), write_raw("lbl", idx_labels({1, 2, 3})));
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{1, 2, 3}));
}

TEST_F(IdxFiles, SplitFileNames) {
  write_gz("t10k-images-idx3-ubyte.gz", idx_images(3, 2, 3, pixels_));
  write_gz("t10k-labels-idx1-ubyte.gz", idx_labels({4, 5, 6}));
  EXPECT_EQ(load_fashion_mnist(dir_.string(), Split::test).labels, (std::vector<std::int32_t>{4, 5, 6}));
  const std::string msg = error_of([&] { load_fashion_mnist(dir_.string(), Split::train); });
  EXPECT_NE(msg.find("train-images-idx3-ubyte.gz: missing file"), std::string::npos) << msg;
}

TEST_F(IdxFiles, MissingFile) {
  const std::string absent = (dir_ / "absent.gz").string();
  const std::string msg = error_of([&] { load_idx_pair(good_images(), absent); });
  EXPECT_NE(msg.find(absent + ": missing file"), std::string::npos) << msg;
}

TEST_F(IdxFiles, TruncatedPixelData) {
  Bytes short_pixels(pixels_.begin(), pixels_.end() - 4);
  const std::string images = write_gz("img.gz", idx_images(3, 2, 3, short_pixels));
  const std::string msg = error_of([&] { load_idx_pair(images, good_labels()); });
  EXPECT_NE(msg.find(images + ": truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ends at byte 30"), std::string::npos) << msg;
}

TEST_F(IdxFiles, TruncatedLabels) {
  Bytes labels = idx_labels({1, 2, 3});
  labels.pop_back();
  labels[7] = 3;  // the header still promises three labels
  const std::string path = write_gz("lbl.gz", labels);
  const std::string msg = error_of([&] { load_idx_pair(good_images(), path); });
  EXPECT_NE(msg.find(path + ": truncated"), std::string::npos) << msg;
}

TEST_F(IdxFiles, TruncatedHeader) {
  const std::string images = write_gz("img.gz", {0, 0, 8, 3, 0, 0});
  const std::string msg = error_of([&] { load_idx_pair(images, good_labels()); });
  EXPECT_NE(msg.find(images + ": truncated: the header"), std::string::npos) << msg;
}

TEST_F(IdxFiles, TruncatedGzipStream) {
  // A download cut short: the compressed stream itself ends early.
  Bytes big(4000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<unsigned char>(i * 7919 % 251);
  const Bytes gz = gzip_bytes(idx_images(40, 10, 10, big), dir_ / "scratch.gz");
  const std::string images = write_raw("img.gz", Bytes(gz.begin(), gz.begin() + gz.size() / 2));
  const std::string msg = error_of([&] { load_idx_pair(images, write_gz("lbl.gz", idx_labels(Bytes(40, 1)))); });
  EXPECT_NE(msg.find(images + ": truncated"), std::string::npos) << msg;
}

TEST_F(IdxFiles, BadMagic) {
  const std::string swapped = write_gz("img.gz", idx_images(3, 2, 3, pixels_, kIdxLabelsMagic));
  std::string msg = error_of([&] { load_idx_pair(swapped, good_labels()); });
  EXPECT_NE(msg.find(swapped + ": bad magic 0x00000801 (expected 0x00000803"), std::string::npos) << msg;

  const std::string labels = write_gz("lbl.gz", idx_labels({1, 2, 3}, 0x00000802));
  msg = error_of([&] { load_idx_pair(good_images(), labels); });
  EXPECT_NE(msg.find(labels + ": bad magic 0x00000802 (expected 0x00000801"), std::string::npos) << msg;
}

TEST_F(IdxFiles, CountMismatch) {
  const std::string images = good_images();
  const std::string labels = write_gz("lbl.gz", idx_labels({1, 2}));
  const std::string msg = error_of([&] { load_idx_pair(images, labels); });
  EXPECT_NE(msg.find("count mismatch: " + images + " holds 3 images but " + labels + " holds 2 labels"),
            std::string::npos)
      << msg;
}

TEST_F(IdxFiles, TrailingData) {
  Bytes extra = pixels_;
  extra.push_back(9);
  const std::string images = write_gz("img.gz", idx_images(3, 2, 3, extra));
  const std::string msg = error_of([&] { load_idx_pair(images, good_labels()); });
  EXPECT_NE(msg.find(images + ": trailing data after 3 images"), std::string::npos) << msg;
}

TEST_F(IdxFiles, ZeroSizedImages) {
  const std::string images = write_gz("img.gz", idx_images(3, 0, 3, {}));
  const std::string msg = error_of([&] { load_idx_pair(images, good_labels()); });
  EXPECT_NE(msg.find(images + ": bad dimensions 0x3"), std::string::npos) << msg;
}

TEST(FashionMnist, RealDatasetWhenInstalled) {
  if (!fs::exists(kFashionMnistDir)) {
    GTEST_SKIP() << kFashionMnistDir << " is missing (apt-get install dataset-fashion-mnist)";
  }
  for (auto [split, count] : {std::pair{Split::train, 60000}, std::pair{Split::test, 10000}}) {
    const Dataset d = load_fashion_mnist(kFashionMnistDir, split);
    EXPECT_EQ(d.count, count);
    EXPECT_EQ(d.rows, 28);
    EXPECT_EQ(d.cols, 28);
    ASSERT_EQ(std::ssize(d.pixels), std::int64_t{count} * 784);
    const ClassIndex index(d.labels);
    EXPECT_EQ(index.label_slots(), 10);
    for (std::int32_t c = 0; c < 10; ++c) EXPECT_EQ(std::ssize(index.members(c)), count / 10) << "class " << c;
    const auto [lo, hi] = std::ranges::minmax(d.pixels);
    EXPECT_EQ(lo, 0);
    EXPECT_EQ(hi, 255);
  }
}

// ---- sampling ----------------------------------------------------------------

namespace {

// Uneven classes: label 0 has one sample (no positive partner possible),
// label 3 none at all; pixel 0 of each image is its sample index.
Dataset toy_dataset() {
  Dataset d;
  d.rows = 2;
  d.cols = 2;
  const std::vector<std::pair<std::int32_t, int>> sizes = {{0, 1}, {1, 5}, {2, 20}, {4, 24}};
  for (auto [label, n] : sizes) {
    for (int k = 0; k < n; ++k) {
      const auto i = static_cast<std::uint8_t>(d.count++);  // identifies the sample
      d.pixels.insert(d.pixels.end(), {i, 128, 64, 255});
      d.labels.push_back(label);
    }
  }
  return d;
}

std::int32_t label(const Dataset& d, std::int64_t i) { return d.labels[static_cast<std::size_t>(i)]; }

void expect_rows_are(const Dataset& d, std::span<const float> rows, std::span<const std::int64_t> index) {
  ASSERT_EQ(rows.size(), index.size() * static_cast<std::size_t>(d.image_size()));
  for (std::size_t r = 0; r < index.size(); ++r) {
    for (std::int64_t k = 0; k < d.image_size(); ++k) {
      ASSERT_EQ(rows[r * static_cast<std::size_t>(d.image_size()) + static_cast<std::size_t>(k)],
                Dataset::intensity(d.image(index[r])[k]));
    }
  }
}

}  // namespace

TEST(Sampling, BoundedDrawIsPinnedAcrossPlatforms) {
  // mt19937_64 is fully specified by the standard (10000th output below), and
  // uniform_below is ours, so these values must never change on any machine.
  std::mt19937_64 standard;
  standard.discard(9999);
  EXPECT_EQ(standard(), 9981545732273789042ULL);

  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> got;
  for (int i = 0; i < 10; ++i) got.push_back(uniform_below(rng, 10));
  EXPECT_EQ(got, (std::vector<std::uint64_t>{6, 4, 0, 2, 1, 8, 6, 4, 0, 7}));
  // A bound just above 2^63 rejects almost half the raw draws.
  std::mt19937_64 rng2(7);
  got.clear();
  for (int i = 0; i < 4; ++i) got.push_back(uniform_below(rng2, (1ULL << 63) + 1));
  EXPECT_EQ(got, (std::vector<std::uint64_t>{4692580601820535206ULL, 8288144301770457441ULL,
                                             7229522069929557237ULL, 6133966320490684800ULL}));
}

TEST(Sampling, BoundedDrawIsUniform) {
  std::mt19937_64 rng(1);
  std::vector<int> hist(7);
  const int draws = 70000;
  for (int i = 0; i < draws; ++i) ++hist[uniform_below(rng, 7)];
  // Chi-square with 6 degrees of freedom: 22.5 is the 0.999 quantile.
  double chi2 = 0;
  for (int h : hist) chi2 += (h - draws / 7.0) * (h - draws / 7.0) / (draws / 7.0);
  EXPECT_LT(chi2, 22.5);
}

TEST(Sampling, SameSeedSameBatches) {
  const Dataset d = toy_dataset();
  Sampler a(d, 123), b(d, 123), c(d, 124);
  const PairBatch a1 = a.pairs(16), b1 = b.pairs(16), c1 = c.pairs(16);
  EXPECT_EQ(a1.left_index, b1.left_index);
  EXPECT_EQ(a1.right_index, b1.right_index);
  EXPECT_EQ(a1.similar, b1.similar);
  EXPECT_EQ(a1.left, b1.left);
  EXPECT_NE(a1.left_index, c1.left_index);
  // The sampler advances: the next batch is a different one.
  EXPECT_NE(a.pairs(16).left_index, a1.left_index);
  // The one-shot call is a fresh sampler.
  EXPECT_EQ(sample_pairs(d, 16, 123).left_index, a1.left_index);
  EXPECT_EQ(sample_triplets(d, 8, 5).negative_index, Sampler(d, 5).triplets(8).negative_index);
  // Pinned, like the bounded draw: a change here changes every experiment's batches.
  const PairBatch pinned = sample_pairs(d, 6, 2024);
  EXPECT_EQ(pinned.similar, (std::vector<float>{1, 1, 0, 1, 0, 0}));
  EXPECT_EQ(pinned.left_index, (std::vector<std::int64_t>{8, 27, 46, 13, 22, 3}));
  EXPECT_EQ(pinned.right_index, (std::vector<std::int64_t>{21, 31, 2, 6, 0, 44}));
}

TEST(Sampling, PairsRespectClasses) {
  const Dataset d = toy_dataset();
  Sampler s(d, 9);
  for (double fraction : {0.0, 0.3, 0.5, 1.0}) {
    const PairBatch b = s.pairs(101, fraction);
    EXPECT_EQ(b.batch, 101);
    EXPECT_EQ(b.dim, 4);
    expect_rows_are(d, b.left, b.left_index);
    expect_rows_are(d, b.right, b.right_index);
    EXPECT_EQ(std::ranges::count(b.similar, 1.0f), std::llround(fraction * 101));
    for (std::size_t i = 0; i < b.similar.size(); ++i) {
      const bool same = label(d, b.left_index[i]) == label(d, b.right_index[i]);
      EXPECT_EQ(b.similar[i], same ? 1.0f : 0.0f) << i;
      EXPECT_NE(b.left_index[i], b.right_index[i]);
      if (same) {
        EXPECT_NE(label(d, b.left_index[i]), 0) << "a singleton class cannot form a similar pair";
      }
    }
  }
}

TEST(Sampling, SimilarPositionsAreShuffled) {
  const PairBatch b = sample_pairs(toy_dataset(), 64, 3);
  const std::vector<float> sorted_desc = [&] {
    auto v = b.similar;
    std::ranges::sort(v, std::greater<>());
    return v;
  }();
  EXPECT_NE(b.similar, sorted_desc);
}

TEST(Sampling, TripletsRespectClasses) {
  const Dataset d = toy_dataset();
  const TripletBatch b = Sampler(d, 77).triplets(200);
  expect_rows_are(d, b.anchor, b.anchor_index);
  expect_rows_are(d, b.positive, b.positive_index);
  expect_rows_are(d, b.negative, b.negative_index);
  std::set<std::int32_t> negative_labels;
  for (std::int64_t i = 0; i < b.batch; ++i) {
    const auto a = b.anchor_index[static_cast<std::size_t>(i)];
    const auto p = b.positive_index[static_cast<std::size_t>(i)];
    const auto n = b.negative_index[static_cast<std::size_t>(i)];
    EXPECT_NE(a, p);
    EXPECT_EQ(label(d, a), label(d, p));
    EXPECT_NE(label(d, a), label(d, n));
    negative_labels.insert(label(d, n));
  }
  EXPECT_TRUE(negative_labels.contains(0)) << "the singleton class is still a valid negative";
}

// A training process keeps rows [first, first + count) of every global batch, written into its
// own storage: those rows are the whole batch's (the same indices, targets and samples, each row
// the sample its index names, read from the pixels here), and the sampler's state moves on as
// for the whole batch.
TEST(Sampling, KeptRowsAreTheWholeBatchsRowsInTheCallersStorage) {
  const Dataset d = toy_dataset();
  const std::int64_t batch = 13, dim = d.image_size();
  for (const RowRange keep : {RowRange{0, batch}, RowRange{4, 6}, RowRange{batch - 1, 1}}) {
    Sampler whole(d, 31), part(d, 31);
    const std::size_t at = std::size_t(keep.first), end = std::size_t(keep.first + keep.count);
    const std::size_t values = std::size_t(keep.count * dim);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> left(values, nan), right(values, nan);
    const PairBatch w = whole.pairs(batch);
    const PairDraw p = part.pairs(batch, keep, left, right);
    EXPECT_EQ(p.batch, keep.count);
    EXPECT_EQ(p.dim, dim);
    EXPECT_EQ(p.left_index, std::vector<std::int64_t>(w.left_index.begin() + at, w.left_index.begin() + end));
    EXPECT_EQ(p.right_index, std::vector<std::int64_t>(w.right_index.begin() + at, w.right_index.begin() + end));
    EXPECT_EQ(p.similar, std::vector<float>(w.similar.begin() + at, w.similar.begin() + end));
    expect_rows_are(d, left, p.left_index);
    expect_rows_are(d, right, p.right_index);

    std::vector<float> anchor(values, nan), positive(values, nan), negative(values, nan);
    const TripletBatch wt = whole.triplets(batch);
    const TripletDraw t = part.triplets(batch, keep, anchor, positive, negative);
    EXPECT_EQ(t.anchor_index, std::vector<std::int64_t>(wt.anchor_index.begin() + at, wt.anchor_index.begin() + end));
    EXPECT_EQ(t.positive_index, std::vector<std::int64_t>(wt.positive_index.begin() + at, wt.positive_index.begin() + end));
    EXPECT_EQ(t.negative_index, std::vector<std::int64_t>(wt.negative_index.begin() + at, wt.negative_index.begin() + end));
    expect_rows_are(d, anchor, t.anchor_index);
    expect_rows_are(d, positive, t.positive_index);
    expect_rows_are(d, negative, t.negative_index);

    EXPECT_EQ(part.pairs(batch).left_index, whole.pairs(batch).left_index) << "the state moved on as for the whole batch";
  }
  Sampler s(d, 1);
  std::vector<float> two(std::size_t(2 * dim)), three(std::size_t(3 * dim));
  EXPECT_THROW(s.pairs(batch, {batch - 1, 2}, two, two), std::invalid_argument);
  EXPECT_THROW(s.pairs(batch, {-1, 2}, two, two), std::invalid_argument);
  EXPECT_THROW(s.pairs(batch, {0, 2}, two, three), std::invalid_argument);
  EXPECT_THROW(s.triplets(batch, {0, 0}, {}, {}, {}), std::invalid_argument);
}

TEST(Sampling, ImpossibleRequestsAreRejected) {
  Dataset one_class = toy_dataset();
  std::ranges::fill(one_class.labels, 2);
  EXPECT_NO_THROW(sample_pairs(one_class, 4, 1, 1.0));
  EXPECT_THROW(sample_pairs(one_class, 4, 1, 0.5), std::invalid_argument);
  EXPECT_THROW(sample_triplets(one_class, 4, 1), std::invalid_argument);

  Dataset singletons = toy_dataset();
  for (std::size_t i = 0; i < singletons.labels.size(); ++i) singletons.labels[i] = static_cast<std::int32_t>(i);
  EXPECT_NO_THROW(sample_pairs(singletons, 4, 1, 0.0));
  EXPECT_THROW(sample_pairs(singletons, 4, 1, 0.5), std::invalid_argument);

  const Dataset d = toy_dataset();
  EXPECT_THROW(sample_pairs(d, 0, 1), std::invalid_argument);
  EXPECT_THROW(sample_pairs(d, 4, 1, 1.5), std::invalid_argument);
  Dataset broken = toy_dataset();
  broken.labels.pop_back();
  EXPECT_THROW(Sampler(broken, 1), std::invalid_argument);
}

// ---- metrics -----------------------------------------------------------------

namespace {

double brute_auc(const std::vector<float>& s, const std::vector<float>& y) {
  double wins = 0, pairs = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    for (std::size_t j = 0; j < s.size(); ++j) {
      if (y[i] != 1.0f || y[j] != 0.0f) continue;
      pairs += 1;
      wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
    }
  }
  return wins / pairs;
}

// Random scores on a coarse grid (many ties) and random 0/1 labels.
void random_case(std::uint64_t seed, int n, std::vector<float>& s, std::vector<float>& y) {
  std::mt19937_64 rng(seed);
  s.resize(static_cast<std::size_t>(n));
  y.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    s[static_cast<std::size_t>(i)] = static_cast<float>(uniform_below(rng, 15)) * 0.25f - 1.0f;
    y[static_cast<std::size_t>(i)] = static_cast<float>(uniform_below(rng, 2));
  }
  y[0] = 1.0f;
  y[1] = 0.0f;
}

}  // namespace

TEST(Metrics, AucKnownValues) {
  const std::vector<float> y = {0, 0, 1, 1, 0, 1};
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<float>{1, 2, 5, 6, 3, 4}, y), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<float>{6, 5, 1, 2, 4, 3}, y), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<float>(6, 0.7f), y), 0.5);
  // One positive tied with one of two negatives and above the other: (1 + 0.5) / 2.
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<float>{1, 2, 2}, std::vector<float>{0, 0, 1}), 0.75);
  // Distances: small = similar.
  EXPECT_DOUBLE_EQ(distance_auc(std::vector<float>{0.1f, 0.2f, 0.9f}, std::vector<float>{1, 1, 0}), 1.0);
}

TEST(Metrics, AucMatchesBruteForceWithTies) {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    std::vector<float> s, y;
    random_case(seed, 50 + static_cast<int>(seed) * 37, s, y);
    EXPECT_NEAR(roc_auc(s, y), brute_auc(s, y), 1e-12) << "seed " << seed;
    std::vector<float> negated(s.size());
    std::ranges::transform(s, negated.begin(), [](float v) { return -v; });
    EXPECT_NEAR(distance_auc(s, y), brute_auc(negated, y), 1e-12) << "seed " << seed;
  }
}

TEST(Metrics, AucRejectsBadInput) {
  EXPECT_THROW(roc_auc(std::vector<float>{1, 2}, std::vector<float>{1, 1}), std::invalid_argument);
  EXPECT_THROW(roc_auc(std::vector<float>{1, 2}, std::vector<float>{1}), std::invalid_argument);
  EXPECT_THROW(roc_auc(std::vector<float>{1, 2}, std::vector<float>{1, 0.5f}), std::invalid_argument);
  EXPECT_THROW(roc_auc(std::vector<float>{1, std::nanf("")}, std::vector<float>{1, 0}), std::invalid_argument);
}

TEST(Metrics, BestThresholdKnownValues) {
  // Separable: everything up to 0.4 is similar.
  Verification v =
      best_threshold_accuracy(std::vector<float>{0.9f, 0.1f, 0.4f, 0.7f}, std::vector<float>{0, 1, 1, 0});
  EXPECT_DOUBLE_EQ(v.accuracy, 1.0);
  EXPECT_FLOAT_EQ(static_cast<float>(v.threshold), 0.4f);
  // Similar pairs are the far ones: best is calling nothing similar (3 of 4 right).
  v = best_threshold_accuracy(std::vector<float>{0.1f, 0.2f, 0.3f, 0.9f}, std::vector<float>{0, 0, 0, 1});
  EXPECT_DOUBLE_EQ(v.accuracy, 0.75);
  EXPECT_EQ(v.threshold, -std::numeric_limits<double>::infinity());
  // Ties move together: cutting inside the tied group is impossible.
  v = best_threshold_accuracy(std::vector<float>{0.5f, 0.5f, 0.5f, 0.8f}, std::vector<float>{1, 1, 0, 0});
  EXPECT_DOUBLE_EQ(v.accuracy, 0.75);
  EXPECT_FLOAT_EQ(static_cast<float>(v.threshold), 0.5f);
}

TEST(Metrics, BestThresholdMatchesBruteForce) {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    std::vector<float> d, y;
    random_case(seed + 100, 40 + static_cast<int>(seed) * 11, d, y);
    // Every candidate cut: -infinity and each distance; keep the smallest best.
    std::vector<double> cuts = {-std::numeric_limits<double>::infinity()};
    cuts.insert(cuts.end(), d.begin(), d.end());
    std::ranges::sort(cuts);
    double best_acc = -1, best_cut = 0;
    for (double t : cuts) {
      int correct = 0;
      for (std::size_t i = 0; i < d.size(); ++i) correct += (d[i] <= t) == (y[i] == 1.0f);
      const double acc = correct / static_cast<double>(d.size());
      if (acc > best_acc) best_acc = acc, best_cut = t;
    }
    const Verification v = best_threshold_accuracy(d, y);
    EXPECT_DOUBLE_EQ(v.accuracy, best_acc) << "seed " << seed;
    EXPECT_EQ(v.threshold, best_cut) << "seed " << seed;
  }
}
