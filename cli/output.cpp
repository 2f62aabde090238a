#include "cli/output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "scheduler/graph.hpp"
#include "scheduler/io/atomic_file.hpp"

namespace rematch::cli {

namespace {

[[noreturn]] void cannot_write(const std::string& path, const std::string& reason) {
  throw InputError("cannot write '" + path + "': " + reason);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& text) {
  try {
    io::write_file_atomically(path, text);
  } catch (const io::WriteError& e) {
    throw InputError(e.what());
  }
}

void check_writable(const std::string& path, const std::string& what) {
  try {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) cannot_write(path, "it is a directory");
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
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
