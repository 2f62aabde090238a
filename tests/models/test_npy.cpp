// The .npy/.npz readers and writers and the data sources: round trips, each named error, and
// fuzz-style hostile files (every truncation, seeded byte flips, hostile headers and shapes),
// which must end in a DataError, never a crash or another exception.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "models/data/npy.hpp"
#include "models/data/npz.hpp"
#include "models/data/source.hpp"

namespace fs = std::filesystem;
using namespace rematch::data;

namespace {

std::string header_text(const std::string& dict, int major = 1) {
  std::string d = dict;
  const std::size_t pre = major == 1 ? 10 : 12;
  while ((pre + d.size() + 1) % 64 != 0) d += ' ';
  d += '\n';
  std::string out = "\x93NUMPY";
  out += char(major);
  out += char(0);
  out += char(d.size() & 0xff);
  out += char((d.size() >> 8) & 0xff);
  if (major > 1) out += std::string(2, '\0');
  return out + d;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string npy(const std::string& descr, const std::string& shape, const std::string& data, int major = 1,
                const std::string& order = "False") {
  return header_text("{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }", major) + data;
}

class Files : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rematch_test_npy_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& bytes) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return p.string();
  }
  std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The DataError message of `f`, or "" if it succeeded; any other exception fails the test.
  template <typename F>
  std::string error_of(F&& f) {
    try {
      f();
    } catch (const DataError& e) {
      return e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a DataError: " << e.what();
      return e.what();
    }
    return "";
  }
  std::string npy_error(const std::string& bytes) {
    const std::string path = write("x.npy", bytes);
    return error_of([&] {
      NpyFile f(path);
      require_samples(f, {});
      std::vector<float> row(std::size_t(f.row_elements()));
      for (std::int64_t i = 0; i < f.rows(); ++i) f.read_rows(i, 1, row.data());
    });
  }
  fs::path dir_;
};

std::vector<float> iota(std::size_t n, float scale = 0.5f) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = float(i) * scale - 3.0f;
  return v;
}

TEST_F(Files, NpyWriterRoundTripsRowsAndPadsLikeNumpy) {
  const std::vector<std::int64_t> shape = {5, 3, 2};
  const auto values = iota(30);
  const std::string path = (dir_ / "a.npy").string();
  write_npy(path, shape, values);
  EXPECT_EQ((read(path).find('\n') + 1) % 64, 0u);  // data on a 64-byte boundary, as numpy writes it
  NpyFile f(path);
  EXPECT_EQ(f.header().shape, shape);
  EXPECT_EQ(f.rows(), 5);
  EXPECT_EQ(f.row_elements(), 6);
  std::vector<float> rows(12);
  f.read_rows(2, 2, rows.data());
  EXPECT_EQ(rows, std::vector<float>(values.begin() + 12, values.begin() + 24));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "no temporary left";
}

TEST_F(Files, SampleDtypesConvertAsDocumented) {
  const std::vector<std::uint8_t> bytes = {0, 51, 255, 128};
  NpyFile u(write("u.npy", npy("|u1", "(2, 2)", raw(bytes))));
  std::vector<float> out(4);
  u.read_rows(0, 2, out.data());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[std::size_t(i)], float(bytes[std::size_t(i)]) / 255.0f);
  // float16: 1.0, -2.0, 0.5, the smallest subnormal 2^-24
  const std::vector<std::uint16_t> halves = {0x3c00, 0xc000, 0x3800, 0x0001};
  NpyFile h(write("h.npy", npy("<f2", "(4,)", raw(halves), 3)));
  h.read_rows(0, 4, out.data());
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.0f, 0.5f, std::ldexp(1.0f, -24)}));
}

TEST_F(Files, LabelsReadAsIntegersInRange) {
  NpyFile y(write("y.npy", npy("<i8", "(3,)", raw(std::vector<std::int64_t>{2, 0, 9}), 2)));
  EXPECT_EQ(y.read_labels(10), (std::vector<std::int64_t>{2, 0, 9}));
  const std::string m = error_of([&] { y.read_labels(9); });
  EXPECT_NE(m.find("label 9 at index 2 is out of range [0, 9)"), std::string::npos) << m;
  NpyFile neg(write("n.npy", npy("<i4", "(2,)", raw(std::vector<std::int32_t>{1, -1}))));
  EXPECT_NE(error_of([&] { neg.read_labels(10); }).find("label -1 at index 1"), std::string::npos);
  NpyFile f(write("f.npy", npy("<f4", "(2,)", raw(std::vector<float>{1, 0}))));
  EXPECT_NE(error_of([&] { f.read_labels(10); }).find("labels must be integers"), std::string::npos);
}

TEST_F(Files, EachBadFileGetsOneLineNamingFileAndProblem) {
  const std::string ok = raw(std::vector<float>{1, 2, 3, 4});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"NUMPY" + npy("<f4", "(2, 2)", ok), "wrong magic"},
      {npy("<f8", "(2, 2)", ok), "unsupported dtype '<f8'"},
      {npy(">f4", "(2, 2)", ok), "big-endian"},
      {npy("<i4", "(2, 2)", ok), "not a sample type"},
      {npy("<f4", "(2, 2)", ok, 1, "True"), "Fortran order"},
      {npy("<f4", "(2, 2)", ok.substr(0, 15)), "truncated data: shape (2, 2) of <f4 needs 16 bytes, the file holds 15"},
      {npy("<f4", "(2, 2)", ok + "x"), "1 bytes after the data"},
      {npy("<f4", "(2, 2)", raw(std::vector<float>{1, NAN, 3, 4})), "row 0 holds a non-finite value"},
      {npy("<f4", "(2, 2)", raw(std::vector<float>{1, 2, 3, INFINITY})), "row 1 holds a non-finite value"},
      {header_text("{'descr': '<f4', 'shape': (2, 2), }") + ok, "no 'fortran_order'"},
      {header_text("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2), }") + ok, "shape must be a tuple"},
      {header_text("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}") + ok, "unexpected header key"},
      {header_text("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'descr': '<f4'}") + ok, "'descr' twice"},
      {header_text("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), } junk") + ok, "text after the dictionary"},
      {npy("<f4", "(2, 2)", ok).replace(0, 8, std::string("\x93NUMPY\x04\x00", 8)), "unsupported .npy format version 4.0"},
      {npy("<f4", "()", raw(std::vector<float>{1})), "0-d array"},
      {std::string("\x93NUMPY", 6), "shorter than the magic"},
  };
  for (const auto& [bytes, problem] : cases) {
    const std::string m = npy_error(bytes);
    EXPECT_NE(m.find((dir_ / "x.npy").string() + ": "), std::string::npos) << m;
    EXPECT_NE(m.find(problem), std::string::npos) << "expected '" << problem << "' in: " << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  EXPECT_NE(error_of([&] { NpyFile f(dir_.string()); }).find("is a directory"), std::string::npos);
  EXPECT_NE(error_of([&] { NpyFile f((dir_ / "missing.npy").string()); }).find("cannot open"), std::string::npos);
}

TEST_F(Files, HostileShapesAndHeaderLengthsAreRefusedBeforeAllocating) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {npy("<f4", "(9223372036854775807, 2)", ""), "too large"},
      {npy("<f4", "(4611686018427387904, 4611686018427387904)", ""), "too large"},
      {npy("<f4", "(99999999999999999999,)", ""), "dimension too large"},
      {npy("<f4", "(1000000000000, 1000000)", ""), "needs 4000000000000000000 bytes, the file holds 0"},
      {npy("<f4", "(1000000, 1000000)", ""), "truncated data"},
      {npy("<f4", "(" + std::string(40, '1').replace(1, 39, std::string(39, ',')) + ")", ""), "shape must be a tuple"},
      {npy("<f4", "(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)", ""),
       "more than 32 dimensions"},
      {std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff", 12), "exceeds the limit"},
      {std::string("\x93NUMPY\x01\x00\xff\xff", 10) + "{", "truncated header"},
  };
  for (const auto& [bytes, problem] : cases) {
    const std::string m = npy_error(bytes);
    EXPECT_NE(m.find(problem), std::string::npos) << "expected '" << problem << "' in: " << m;
  }
}

TEST_F(Files, EveryTruncationOfAnNpyFileIsAnError) {
  const std::string good = npy("<f4", "(3, 2)", raw(iota(6)));
  EXPECT_EQ(npy_error(good), "");
  for (std::size_t n = 0; n < good.size(); ++n) EXPECT_NE(npy_error(good.substr(0, n)), "") << n << " bytes";
}

TEST_F(Files, RandomByteFlipsInAnNpyFileNeverCrash) {
  const std::string good = npy("<f2", "(3, 2)", raw(std::vector<std::uint16_t>{1, 2, 3, 4, 5, 6}));
  std::mt19937_64 rng(42);
  int refused = 0;
  for (int trial = 0; trial < 600; ++trial) {
    std::string bad = good;
    const int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] = char(rng());
    refused += !npy_error(bad).empty();
  }
  EXPECT_GT(refused, 0);
}

TEST_F(Files, NpyWriterRefusesToCommitAPartialArrayAndLeavesNoFile) {
  const std::string path = (dir_ / "e.npy").string();
  {
    NpyWriter w(path, {4, 2});
    w.append(iota(4));
    EXPECT_NE(error_of([&] { w.commit(); }).find("fewer rows written"), std::string::npos);
    EXPECT_NE(error_of([&] { w.append(iota(6)); }).find("more rows written"), std::string::npos);
  }
  EXPECT_TRUE(fs::is_empty(dir_));
  EXPECT_NE(error_of([&] { write_npy((dir_ / "no" / "x.npy").string(), std::vector<std::int64_t>{1}, iota(1)); })
                .find("cannot create a temporary file"),
            std::string::npos);
}

std::vector<NpzArray> two_arrays() {
  return {{"encoder0.layer0.weight", {3, 4}, iota(12)}, {"encoder0.layer0.bias", {4}, iota(4, 0.25f)}};
}

TEST_F(Files, NpzRoundTripsEveryMember) {
  const std::string path = (dir_ / "w.npz").string();
  const auto arrays = two_arrays();
  write_npz(path, arrays);
  NpzReader r(path);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"encoder0.layer0.weight", "encoder0.layer0.bias"}));
  for (const NpzArray& a : arrays) {
    const NpzArray b = r.read(a.name);
    EXPECT_EQ(b.shape, a.shape);
    EXPECT_EQ(b.values, a.values);
  }
  EXPECT_NE(error_of([&] { r.read("nope"); }).find("no member nope.npy"), std::string::npos);
}

TEST_F(Files, NpzWithAFlippedBitANanOrGarbageIsRefused) {
  const std::string path = (dir_ / "w.npz").string();
  write_npz(path, two_arrays());
  const std::string good = read(path);
  const std::size_t data = good.find("\x93NUMPY") + 128 + 8;  // inside the first member's values
  std::string flipped = good;
  flipped[data] ^= 0x10;
  std::string garbage = good;
  garbage.replace(data, 4, "\xde\xad\xbe\xef");
  for (const std::string& bad : {flipped, garbage}) {
    NpzReader r(write("bad.npz", bad));
    const std::string m = error_of([&] { r.read("encoder0.layer0.weight"); });
    EXPECT_NE(m.find("member encoder0.layer0.weight.npy: CRC-32 mismatch"), std::string::npos) << m;
  }
  auto arrays = two_arrays();
  arrays[1].values[2] = std::numeric_limits<float>::quiet_NaN();
  write_npz(path, arrays);
  NpzReader r(path);
  EXPECT_NE(error_of([&] { r.read("encoder0.layer0.bias"); }).find("non-finite value at flat index 2"), std::string::npos);
}

TEST_F(Files, EveryTruncationAndRandomFlipsOfAnNpzAreErrorsNeverCrashes) {
  const std::string path = (dir_ / "w.npz").string();
  write_npz(path, two_arrays());
  const std::string good = read(path);
  auto load_all = [&](const std::string& bytes) {
    const std::string p = write("t.npz", bytes);
    return error_of([&] {
      NpzReader r(p);
      for (const std::string& n : r.names()) r.read(n);
      if (r.names().size() != 2) throw DataError("a member went missing");
    });
  };
  EXPECT_EQ(load_all(good), "");
  for (std::size_t n = 0; n < good.size(); ++n) EXPECT_NE(load_all(good.substr(0, n)), "") << n << " bytes";
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 600; ++trial) {
    std::string bad = good;
    // Flip bytes in the ZIP records as often as in the data: the records are the hostile part.
    const std::size_t region = trial % 2 ? bad.size() : 200;
    for (int k = 0; k < 3; ++k) bad[bad.size() - 1 - rng() % region] = char(rng());
    load_all(bad);
  }
}

TEST_F(Files, NpzHostileDirectoryCountsAndOffsetsAreRefused) {
  const std::string path = (dir_ / "w.npz").string();
  write_npz(path, two_arrays());
  const std::string good = read(path);
  const std::size_t end = good.size() - 22;
  auto patched = [&](std::size_t at, const std::string& bytes) {
    std::string b = good;
    b.replace(at, bytes.size(), bytes);
    return error_of([&] { NpzReader r(write("h.npz", b)); for (const auto& n : r.names()) r.read(n); });
  };
  EXPECT_NE(patched(end + 10, "\xfe\xff").find("too many"), std::string::npos);
  EXPECT_NE(patched(end + 16, "\xf0\xff\xff\x7f").find("out of bounds"), std::string::npos);
  EXPECT_NE(patched(end + 10, "\xff\xff").find("ZIP64 locator missing"), std::string::npos);
  const std::size_t central = good.find("PK\x01\x02");
  EXPECT_NE(patched(central + 10, "\x08\x00").find("is compressed"), std::string::npos);
  const std::string m = patched(central + 42, std::string("\x00\x00\x00\x7f", 4));
  EXPECT_NE(m.find("outside the archive"), std::string::npos) << m;
}

TEST_F(Files, LabelledSourceSamplesTheSameBatchesAsTheInMemorySet) {
  // An in-memory data set and the same samples exported as |u1 .npy give identical batches.
  auto data = std::make_shared<Dataset>();
  data->rows = 2;
  data->cols = 3;
  std::string pixels;
  for (int i = 0; i < 40; ++i) {
    data->labels.push_back(i % 4);
    for (int p = 0; p < 6; ++p) {
      data->pixels.push_back(std::uint8_t(i * 6 + p));
      pixels += char(i * 6 + p);
    }
  }
  data->count = 40;
  std::vector<std::int32_t> labels(data->labels);
  const Source file = Source::open({Layout::labelled, {write("x.npy", npy("|u1", "(40, 6)", pixels))},
                                    write("y.npy", npy("<i4", "(40,)", raw(labels)))});
  const Source memory = Source::labelled(data);
  file.require_shape(0, std::vector<std::int64_t>{6});
  EXPECT_NE(error_of([&] { file.require_shape(0, std::vector<std::int64_t>{2, 3}); })
                .find("x.npy: samples of shape (6,), the model's input is (2, 3)"),
            std::string::npos);
  Batches a(file, 5), b(memory, 5);
  Sampler reference(*data, 5);
  for (int k = 0; k < 3; ++k) {
    const PairBatch p = a.pairs(8), q = b.pairs(8), r = reference.pairs(8);
    EXPECT_EQ(p.left, r.left);
    EXPECT_EQ(p.right, q.right);
    EXPECT_EQ(p.similar, r.similar);
    EXPECT_EQ(a.triplets(4).negative, reference.triplets(4).negative);
    b.triplets(4);
  }
  const ClassBatch c = a.classes(40);
  std::vector<int> seen(40);
  for (std::int64_t k = 0; k < 40; ++k) {
    const int sample = int(std::lround(c.samples[std::size_t(k * 6)] * 255.0f)) / 6;
    ++seen[std::size_t(sample)];
    EXPECT_EQ(c.labels[std::size_t(k)], sample % 4);
  }
  EXPECT_EQ(seen, std::vector<int>(40, 1)) << "an epoch visits every sample once";
}

TEST_F(Files, SplitHoldsOutDisjointRowsAndExplicitPairsKeepTheirLabels) {
  std::vector<float> x1, x2;
  std::vector<std::uint8_t> same;
  for (int i = 0; i < 10; ++i) {
    x1.push_back(float(i));
    x2.push_back(float(100 + i));
    same.push_back(std::uint8_t(i % 2));
  }
  const Source s = Source::open({Layout::pairs, {write("a.npy", npy("<f4", "(10, 1)", raw(x1))),
                                                 write("b.npy", npy("<f4", "(10, 1)", raw(x2)))},
                                 write("s.npy", npy("|u1", "(10,)", raw(same)))});
  const auto [kept, held] = s.split(0.3, 1);
  EXPECT_EQ(kept.samples(), 7);
  EXPECT_EQ(held.samples(), 3);
  std::vector<float> all;
  for (const Source* part : {&kept, &held}) {
    Batches b(*part, 3);
    const PairBatch p = b.pairs(part->samples());
    for (std::int64_t k = 0; k < p.batch; ++k) {
      EXPECT_EQ(p.right[std::size_t(k)], p.left[std::size_t(k)] + 100);
      EXPECT_EQ(p.similar[std::size_t(k)], float(int(p.left[std::size_t(k)]) % 2));
      all.push_back(p.left[std::size_t(k)]);
    }
  }
  std::ranges::sort(all);
  EXPECT_EQ(all, (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_NE(error_of([&] { s.split(0.01, 1); }).find("leaves one part empty"), std::string::npos);
  Batches b(s, 1);
  EXPECT_NE(error_of([&] { b.triplets(2); }).find("cannot be drawn from the pairs layout"), std::string::npos);
}

// Explicit pairs and triplets and classified samples: the rows a process keeps of each global
// batch, written into its own storage, are the whole batch's rows, each the file row its index
// names (a sample's values encode its array and row), and the epoch order moves on as for the
// whole batch.
TEST_F(Files, KeptRowsOfExplicitPairsTripletsAndClassesAreTheWholeBatchsRows) {
  const int n = 11, dim = 3;
  std::vector<std::string> arrays;
  for (int a = 0; a < 3; ++a) {
    std::vector<float> x;
    for (int i = 0; i < n; ++i) {
      for (int v = 0; v < dim; ++v) x.push_back(float(1000 * a + 10 * i + v));
    }
    arrays.push_back(write("x" + std::to_string(a) + ".npy", npy("<f4", "(11, 3)", raw(x))));
  }
  std::vector<std::int32_t> labels;
  for (int i = 0; i < n; ++i) labels.push_back(i % 2);
  const std::string y = write("y.npy", npy("<i4", "(11,)", raw(labels)));
  const Source pairs = Source::open({Layout::pairs, {arrays[0], arrays[1]}, y});
  const Source triplets = Source::open({Layout::triplets, arrays, ""});
  const Source labelled = Source::open({Layout::labelled, {arrays[0]}, y});
  // Row r of `rows` is row index[r] of array `array[r]`.
  auto expect_rows = [&](std::span<const float> rows, const std::vector<std::int64_t>& index, auto array) {
    ASSERT_EQ(rows.size(), index.size() * dim);
    for (std::size_t r = 0; r < index.size(); ++r) {
      for (int v = 0; v < dim; ++v) EXPECT_EQ(rows[r * dim + v], float(1000 * array(r) + 10 * index[r] + v)) << r;
    }
  };
  const std::int64_t batch = 7;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const RowRange keep : {RowRange{0, batch}, RowRange{3, 3}, RowRange{batch - 1, 1}}) {
    const std::size_t at = std::size_t(keep.first), end = std::size_t(keep.first + keep.count);
    auto slice = [&](const auto& v) { return std::vector(v.begin() + at, v.begin() + end); };
    std::vector<float> a(std::size_t(keep.count * dim), nan), b(a), c(a);
    for (const Source* s : {&pairs, &triplets}) {
      Batches whole(*s, 4), part(*s, 4);
      for (int k = 0; k < 3; ++k) {  // past an epoch's end
        const PairBatch w = whole.pairs(batch);
        const PairDraw p = part.pairs(batch, keep, a, b);
        EXPECT_EQ(p.left_index, slice(w.left_index));
        EXPECT_EQ(p.similar, slice(w.similar));
        expect_rows(a, p.left_index, [](std::size_t) { return 0; });
        // From triplets, a row's similar pair reads the positive, its dissimilar one the negative.
        expect_rows(b, p.right_index, [&](std::size_t r) { return s == &pairs ? 1 : p.similar[r] > 0 ? 1 : 2; });
      }
    }
    Batches whole(triplets, 5), part(triplets, 5);
    for (int k = 0; k < 3; ++k) {
      const TripletBatch w = whole.triplets(batch);
      const TripletDraw t = part.triplets(batch, keep, a, b, c);
      EXPECT_EQ(t.anchor_index, slice(w.anchor_index));
      expect_rows(a, t.anchor_index, [](std::size_t) { return 0; });
      expect_rows(b, t.positive_index, [](std::size_t) { return 1; });
      expect_rows(c, t.negative_index, [](std::size_t) { return 2; });
    }
    Batches whole_classes(labelled, 6), part_classes(labelled, 6);
    for (int k = 0; k < 3; ++k) {
      const ClassBatch w = whole_classes.classes(batch);
      const ClassDraw d = part_classes.classes(batch, keep, a);
      EXPECT_EQ(d.labels, slice(w.labels));
      EXPECT_TRUE(std::ranges::equal(a, std::span(w.samples).subspan(at * dim, end * dim - at * dim)));
      for (std::size_t r = 0; r < d.labels.size(); ++r) EXPECT_EQ(d.labels[r], int(a[r * dim] / 10) % 2) << r;
    }
  }
}

TEST_F(Files, SourcesRefuseFilesThatDisagree) {
  const std::string x = write("x.npy", npy("<f4", "(2, 2)", raw(iota(4))));
  const std::string x3 = write("x3.npy", npy("<f4", "(3, 2)", raw(iota(6))));
  const std::string x4 = write("x4.npy", npy("<f4", "(2, 1)", raw(iota(2))));
  const std::string y3 = write("y3.npy", npy("<i4", "(3,)", raw(std::vector<std::int32_t>{0, 1, 1})));
  const std::string two = write("two.npy", npy("<i4", "(2,)", raw(std::vector<std::int32_t>{0, 2})));
  EXPECT_NE(error_of([&] { Source::open({Layout::labelled, {x}, y3}); }).find("3 labels for the 2 samples"), std::string::npos);
  EXPECT_NE(error_of([&] { Source::open({Layout::pairs, {x, x3}, y3}); }).find("3 samples, " + x + " has 2"), std::string::npos);
  EXPECT_NE(error_of([&] { Source::open({Layout::pairs, {x, x4}, two}); }).find("samples of shape (1,)"), std::string::npos);
  EXPECT_NE(error_of([&] { Source::open({Layout::pairs, {x, x}, two}); }).find("label 2 at index 1 is out of range [0, 2)"), std::string::npos);
  EXPECT_NE(error_of([&] { Source::open({Layout::labelled, {x}, two}, 2); }).find("out of range [0, 2)"), std::string::npos);
  EXPECT_NE(error_of([&] { Source::open({Layout::triplets, {x, x}, ""}); }).find("takes 3 sample files, 2 given"), std::string::npos);
  EXPECT_NE(error_of([&] { Source::open({Layout::labelled, {x}, ""}); }).find("needs a labels file"), std::string::npos);
}

}  // namespace
