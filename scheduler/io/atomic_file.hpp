#pragma once
// Files that appear whole or not at all: the one writer behind every output of the project (the
// command's plots, reports and graphs, the .npy/.npz arrays, saved weights). Standard library and
// POSIX only, so the solver's tools and the model side link the same code without either pulling
// in the other.
//
// A new or regular target is written to a temporary beside it and renamed over it on commit():
//  - the temporary is uniquely named (TARGET.tmpXXXXXX, by mkstemp), so two writers of the same
//    target, or a run started while an interrupted one still holds its temporary, never write
//    into or delete each other's file;
//  - every write, the flush to disk and the close are checked before the rename, so a crash or a
//    full disk leaves the old file or the new one, never a part;
//  - the temporary is removed on any failure, when an uncommitted AtomicFile is destroyed, and by
//    a signal handler when the process is interrupted or terminated (SIGINT, SIGTERM, SIGHUP; only
//    where the program has not chosen its own handling of that signal). Only SIGKILL can leave one.
// An existing target that is not a regular file (a device such as /dev/full or /dev/stdout, a FIFO)
// is written in place with the same checks: a rename would replace the device node itself (root
// may create files in /dev) instead of writing to it. A directory as target is refused.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace rematch::io {

// Every failure: "cannot write 'TARGET': REASON" (the system's reason, e.g. "No space left on device").
class WriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // creates the temporary (or opens the device) now
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // without commit(): the temporary is removed, the target untouched

  void write(const void* bytes, std::size_t n);
  std::uint64_t size() const { return written_; }  // bytes written so far
  void commit();

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& reason);
  void discard();

  std::string path_, tmp_;  // tmp_ empty when writing a device in place
  int fd_ = -1;
  int signal_slot_ = -1;
  std::uint64_t written_ = 0;
};

// The whole of `text` to `path` through an AtomicFile.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace rematch::io
