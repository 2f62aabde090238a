// Interoperability with numpy itself: np.load reads what write_npy / write_npz write, and the
// readers read what np.save (format versions 1, 2, 3) and np.savez write, value for value.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "models/data/npy.hpp"
#include "models/data/npz.hpp"

namespace fs = std::filesystem;
using namespace rematch::data;

namespace {

class Numpy : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rematch_test_numpy_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // Runs a Python script with numpy imported as np and D the scratch directory; true on exit 0.
  bool python(const std::string& body) {
    const fs::path script = dir_ / "check.py";
    std::ofstream(script) << "import numpy as np, sys\nD = '" << dir_.string() << "/'\n" << body << "\n";
    return std::system((std::string(REMATCH_PYTHON) + " " + script.string()).c_str()) == 0;
  }
  fs::path dir_;
};

std::vector<float> values(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = float(i) / 7.0f - 1.5f;
  return v;
}

TEST_F(Numpy, NumpyLoadsWhatWeWrite) {
  write_npy((dir_ / "a.npy").string(), std::vector<std::int64_t>{4, 3, 2}, values(24));
  write_npz((dir_ / "w.npz").string(),
            std::vector<NpzArray>{{"enc.0.weight", {6, 4}, values(24)}, {"enc.0.bias", {4}, values(4)}, {"s", {}, {2.5f}}});
  EXPECT_TRUE(python(R"(
ref = (np.arange(24, dtype=np.float32) / np.float32(7) - np.float32(1.5))
a = np.load(D + 'a.npy')
assert a.dtype == np.float32 and a.shape == (4, 3, 2) and a.flags.c_contiguous, a
assert np.array_equal(a.ravel(), ref)
with np.load(D + 'w.npz') as z:
    assert z.files == ['enc.0.weight', 'enc.0.bias', 's'], z.files
    assert np.array_equal(z['enc.0.weight'], ref.reshape(6, 4))
    assert np.array_equal(z['enc.0.bias'], ref[:4])
    assert z['s'].shape == () and z['s'] == 2.5
import zipfile
with zipfile.ZipFile(D + 'w.npz') as f:
    assert f.testzip() is None  # every CRC-32 checks
)"));
}

TEST_F(Numpy, WeReadWhatNumpyWrites) {
  ASSERT_TRUE(python(R"(
from numpy.lib import format as fmt
x = (np.arange(60, dtype=np.float32) / np.float32(7) - np.float32(1.5)).reshape(5, 3, 4)
for v in [(1, 0), (2, 0), (3, 0)]:
    with open(D + 'v%d.npy' % v[0], 'wb') as f:
        fmt.write_array(f, x, version=v)
np.save(D + 'h.npy', x.astype(np.float16))
np.save(D + 'u.npy', (np.arange(60) % 256).astype(np.uint8).reshape(5, 12))
np.save(D + 'y.npy', np.array([3, 1, 4, 1, 5], dtype=np.int64))
np.save(D + 'f.npy', np.asfortranarray(x))
np.savez(D + 'w.npz', weight=x, bias=x[0, 0])
np.savez_compressed(D + 'c.npz', weight=x)
)"));
  const auto ref = values(60);
  std::vector<float> out(60);
  for (const char* name : {"v1.npy", "v2.npy", "v3.npy"}) {
    NpyFile f((dir_ / name).string());
    EXPECT_EQ(f.header().shape, (std::vector<std::int64_t>{5, 3, 4})) << name;
    f.read_rows(0, 5, out.data());
    EXPECT_EQ(out, ref) << name;
  }
  NpyFile h((dir_ / "h.npy").string());
  h.read_rows(0, 5, out.data());
  for (std::size_t i = 0; i < 60; ++i) EXPECT_NEAR(out[i], ref[i], 2e-3) << i;
  NpyFile u((dir_ / "u.npy").string());
  u.read_rows(1, 1, out.data());
  EXPECT_EQ(out[0], 12.0f / 255.0f);
  EXPECT_EQ(NpyFile((dir_ / "y.npy").string()).read_labels(6), (std::vector<std::int64_t>{3, 1, 4, 1, 5}));
  try {
    NpyFile f((dir_ / "f.npy").string());
    ADD_FAILURE() << "Fortran order accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("Fortran order"), std::string::npos) << e.what();
  }
  NpzReader z((dir_ / "w.npz").string());
  EXPECT_EQ(z.names(), (std::vector<std::string>{"weight", "bias"}));
  const NpzArray w = z.read("weight"), b = z.read("bias");
  EXPECT_EQ(w.shape, (std::vector<std::int64_t>{5, 3, 4}));
  EXPECT_EQ(w.values, ref);
  EXPECT_EQ(b.values, std::vector<float>(ref.begin(), ref.begin() + 4));
  try {
    NpzReader c((dir_ / "c.npz").string());
    ADD_FAILURE() << "a compressed archive accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("np.savez, not np.savez_compressed"), std::string::npos) << e.what();
  }
}

}  // namespace
