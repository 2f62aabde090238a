#pragma once
// NumPy .npz archives: a ZIP of .npy members, each stored uncompressed with its CRC-32.
//
// write_npz writes float32 members `NAME.npy` (what np.savez writes, so np.load(path)[NAME] and
// torch.from_numpy read them with one call), atomically. NpzReader reads archives written by
// it or by np.savez (ZIP64 records included): every member's CRC-32 is verified and every value
// checked finite before it is returned. Compressed members (np.savez_compressed), encrypted
// ones and members above 4 GiB when writing are refused. Errors throw DataError naming the
// file, the member and the problem.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "models/data/fashion_mnist.hpp"
#include "models/data/input_file.hpp"

namespace rematch::data {

struct NpzArray {
  std::string name;  // without ".npy"
  std::vector<std::int64_t> shape;
  std::vector<float> values;  // row-major, product(shape) of them
};

void write_npz(const std::string& path, std::span<const NpzArray> arrays);

class NpzReader {
 public:
  explicit NpzReader(std::string path);

  const std::string& path() const { return file_.path(); }
  std::vector<std::string> names() const;  // member names without ".npy", in archive order
  bool contains(const std::string& name) const;
  // The member as float32 (stored <f4 or <f2), CRC-32 and finiteness checked.
  NpzArray read(const std::string& name) const;

  [[noreturn]] void fail(const std::string& problem) const { file_.fail(problem); }

 private:
  struct Member {
    std::string name;
    std::uint32_t crc = 0;
    std::uint64_t size = 0, local_offset = 0;
  };
  void index();  // reads the central directory
  const Member& member(const std::string& name) const;

  InputFile file_;
  std::vector<Member> members_;
};

}  // namespace rematch::data
