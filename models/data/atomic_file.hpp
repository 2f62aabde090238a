#pragma once
// A file that appears whole or not at all.
//
// Writes go to a uniquely named temporary file beside the target; commit() flushes it to disk
// and renames it over the target. Every write is checked; a failure throws DataError naming
// the target and the reason. Destroying an uncommitted AtomicFile removes the temporary, so a
// failed run leaves no partial file (only a kill -9 between open and commit can leave one,
// named TARGET.tmpXXXXXX).
#include <cstddef>
#include <cstdint>
#include <string>

namespace rematch::data {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  void write(const void* bytes, std::size_t n);
  std::uint64_t size() const { return written_; }  // bytes written so far
  void commit();

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_, tmp_;
  int fd_ = -1;
  std::uint64_t written_ = 0;
};

}  // namespace rematch::data
