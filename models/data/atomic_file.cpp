#include "models/data/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "models/data/fashion_mnist.hpp"

namespace rematch::data {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  std::vector<char> name(path_.begin(), path_.end());
  for (const char c : std::string(".tmpXXXXXX")) name.push_back(c);
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  if (fd_ < 0) fail(std::string("cannot create a temporary file beside it: ") + std::strerror(errno));
  tmp_ = name.data();
  // mkstemp creates 0600; the output is an ordinary file for its owner's group and others too.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, 0666 & ~mask);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::fail(const std::string& what) const { throw DataError(path_ + ": " + what); }

void AtomicFile::write(const void* bytes, std::size_t n) {
  if (fd_ < 0) fail("write after commit");
  const auto* p = static_cast<const char*>(bytes);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(fd_, p + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(std::string("write failed: ") + (w < 0 ? std::strerror(errno) : "no progress"));
    done += static_cast<std::size_t>(w);
  }
  written_ += n;
}

void AtomicFile::commit() {
  if (fd_ < 0) fail("committed twice");
  if (::fsync(fd_) != 0) fail(std::string("write failed: ") + std::strerror(errno));
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0 || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp_.c_str());
    fail("write failed: " + reason);
  }
}

}  // namespace rematch::data
