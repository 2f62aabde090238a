#include "cli/output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "scheduler/graph.hpp"

namespace rematch::cli {

namespace {

// The temporary file being written, for the signal handler (which may only call unlink and
// re-raise). One output is written at a time.
std::atomic<const char*> pending_temp{nullptr};

void remove_temp_and_reraise(int sig) {
  if (const char* temp = pending_temp.load()) unlink(temp);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void install_cleanup_handlers() {
  static const bool installed = [] {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction action {};
      action.sa_handler = remove_temp_and_reraise;
      sigemptyset(&action.sa_mask);
      sigaction(sig, &action, nullptr);
    }
    return true;
  }();
  (void)installed;
}

[[noreturn]] void cannot_write(const std::string& path, const std::string& reason) {
  throw InputError("cannot write '" + path + "': " + reason);
}

void refuse_directory(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) cannot_write(path, "it is a directory");
}

// Writes all of `text` to `fd`, retrying short writes; false with errno set on failure.
bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Devices and pipes (/dev/stdout, a FIFO) are written in place: a rename would replace them.
void write_in_place(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) cannot_write(path, std::strerror(errno));
  const bool written = write_all(fd, text);
  const int error = errno;
  if (::close(fd) != 0 && written) cannot_write(path, std::strerror(errno));
  if (!written) cannot_write(path, std::strerror(error));
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& text) {
  refuse_directory(path);
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    return write_in_place(path, text);
  install_cleanup_handlers();
  const std::string temp = path + ".tmp";
  pending_temp.store(temp.c_str());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int error = errno;
    pending_temp.store(nullptr);
    cannot_write(path, std::strerror(error));
  }
  // Regular files are synced before the rename, so a crash leaves the old file or the new one.
  const bool written = write_all(fd, text) && (::fsync(fd) == 0 || errno == EINVAL || errno == EROFS);
  const int error = errno;
  const bool closed = ::close(fd) == 0;
  const int close_error = errno;
  if (!written || !closed) {
    unlink(temp.c_str());
    pending_temp.store(nullptr);
    cannot_write(path, std::strerror(written ? close_error : error));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int rename_error = errno;
    unlink(temp.c_str());
    pending_temp.store(nullptr);
    cannot_write(path, std::strerror(rename_error));
  }
  pending_temp.store(nullptr);
}

void check_writable(const std::string& path, const std::string& what) {
  try {
    refuse_directory(path);
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) cannot_write(path, "no directory '" + dir.string() + "'");
    if (::access(dir.c_str(), W_OK) != 0) cannot_write(path, std::strerror(errno));
  } catch (const InputError& e) {
    throw InputError(what + ": " + e.what());
  }
}

void require_stdout() {
  if (::fcntl(STDOUT_FILENO, F_GETFD) < 0) throw InputError("standard output is closed");
}

std::string close_stdout() {
  std::cout.flush();
  const bool stream_ok = !std::cout.fail();
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !stream_ok) {
    const int error = errno;
    std::fclose(stdout);
    return error != 0 ? std::strerror(error) : "write error";
  }
  if (std::fclose(stdout) != 0) return std::strerror(errno);
  return {};
}

}  // namespace rematch::cli
