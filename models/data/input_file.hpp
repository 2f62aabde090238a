#pragma once
// A data file read at offsets, the one reader beneath the .npy and .npz formats: opened (and a
// directory refused) on construction, every read checked, each failure a DataError
// "PATH: problem". Reads by offset (pread) so a const reader can serve several threads.
#include <cstddef>
#include <cstdint>
#include <string>

namespace rematch::data {

class InputFile {
 public:
  // `kind` names the expected format in the refusal of a directory ("a .npy file").
  InputFile(std::string path, const std::string& kind);
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }  // bytes, as opened

  // Exactly `n` bytes from `offset`; a file shorter than that is an error, not a short read.
  void read_at(std::uint64_t offset, void* out, std::size_t n) const;

  [[noreturn]] void fail(const std::string& problem) const;

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace rematch::data
