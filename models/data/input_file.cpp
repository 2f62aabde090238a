#include "models/data/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "models/data/fashion_mnist.hpp"

namespace rematch::data {

InputFile::InputFile(std::string path, const std::string& kind) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st{};
  const bool stated = ::fstat(fd_, &st) == 0;
  const int error = errno;
  if (!stated || S_ISDIR(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    fail(stated ? "is a directory, not " + kind : std::string("cannot stat: ") + std::strerror(error));
  }
  size_ = std::uint64_t(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::fail(const std::string& problem) const { throw DataError(path_ + ": " + problem); }

void InputFile::read_at(std::uint64_t offset, void* out, std::size_t n) const {
  auto* p = static_cast<char*>(out);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(std::string("read failed: ") + std::strerror(errno));
    if (r == 0) fail("the file ended early (was it truncated while in use?)");
    done += static_cast<std::size_t>(r);
  }
}

}  // namespace rematch::data
