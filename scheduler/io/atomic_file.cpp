#include "scheduler/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <vector>

namespace rematch::io {

namespace {

// The temporaries being written, for the signal handler (which may only read these, unlink and
// re-raise). A fixed table: registering must not allocate, and a writer that finds no free slot
// still removes its temporary itself on every path except a signal.
std::array<std::atomic<const char*>, 16> pending_temps{};

void remove_temps_and_reraise(int sig) {
  for (auto& temp : pending_temps)
    if (const char* name = temp.load()) ::unlink(name);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// Only signals left at their default (terminate) get the handler: a program that ignores SIGHUP
// (nohup) or handles SIGINT itself (an embedding interpreter) keeps its own behaviour.
void install_cleanup_handlers() {
  static const bool installed = [] {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      if (sigaction(sig, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) continue;
      struct sigaction action {};
      action.sa_handler = remove_temps_and_reraise;
      sigemptyset(&action.sa_mask);
      sigaction(sig, &action, nullptr);
    }
    return true;
  }();
  (void)installed;
}

int register_temp(const char* name) {
  install_cleanup_handlers();
  for (std::size_t i = 0; i < pending_temps.size(); ++i) {
    const char* expected = nullptr;
    if (pending_temps[i].compare_exchange_strong(expected, name)) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  struct stat existing {};
  if (::stat(path_.c_str(), &existing) == 0) {
    if (S_ISDIR(existing.st_mode)) fail("it is a directory");
    if (!S_ISREG(existing.st_mode)) {
      fd_ = ::open(path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (fd_ < 0) fail(std::strerror(errno));
      return;
    }
  }
  std::vector<char> name(path_.begin(), path_.end());
  for (const char c : std::string(".tmpXXXXXX")) name.push_back(c);
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  if (fd_ < 0) fail(std::string("cannot create a temporary file beside it: ") + std::strerror(errno));
  tmp_ = name.data();
  signal_slot_ = register_temp(tmp_.c_str());
  // mkstemp creates 0600; the output is an ordinary file for its owner's group and others too.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, 0666 & ~mask);
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  if (signal_slot_ >= 0) pending_temps[static_cast<std::size_t>(signal_slot_)].store(nullptr);
  signal_slot_ = -1;
  tmp_.clear();
}

void AtomicFile::fail(const std::string& reason) {
  discard();
  throw WriteError("cannot write '" + path_ + "': " + reason);
}

void AtomicFile::write(const void* bytes, std::size_t n) {
  if (fd_ < 0) fail("write after commit");
  const auto* p = static_cast<const char*>(bytes);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(fd_, p + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(w < 0 ? std::strerror(errno) : "no progress");
    done += static_cast<std::size_t>(w);
  }
  written_ += n;
}

void AtomicFile::commit() {
  if (fd_ < 0) fail("committed twice");
  // Devices and pipes cannot be synced (EINVAL); a read-only file system holds nothing to sync.
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) fail(std::strerror(errno));
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0) fail(std::strerror(errno));
  if (tmp_.empty()) return;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail(std::strerror(errno));
  if (signal_slot_ >= 0) pending_temps[static_cast<std::size_t>(signal_slot_)].store(nullptr);
  signal_slot_ = -1;
  tmp_.clear();
}

void write_file_atomically(const std::string& path, const std::string& text) {
  AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

}  // namespace rematch::io
