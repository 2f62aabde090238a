#pragma once
// What the tests of the rematch command share: a fresh temporary directory for each test, and the
// real binary (REMATCH_CLI) run through the shell inside it, with its exit status, standard output,
// standard error and wall time.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef REMATCH_CLI
#error "REMATCH_CLI must name the rematch binary"
#endif

namespace rematch::test {

namespace fs = std::filesystem;

struct CliRun {
  int status = -1;  // the exit status, or 128 + the signal that ended the command
  std::string out, err;
  double seconds = 0;
};

// `arg` as one shell word.
inline std::string quote(const std::string& arg) {
  std::string q = "'";
  for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The whole file; empty when it cannot be read.
inline std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::size_t count_lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "rematch_cli_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return path(name);
  }

  // Runs `rematch args` in the temporary directory with standard input from /dev/null. `prefix`
  // (such as "ulimit -v N &&" or a timeout command) goes before the binary; `redirect` replaces the
  // capture of standard output, which then reads as empty.
  CliRun run(const std::vector<std::string>& args, const std::string& prefix = "",
             const std::string& redirect = "") const {
    const std::string out = path("stdout.txt"), err = path("stderr.txt");
    std::string shell = "cd " + quote(dir_.string()) + " && ";
    shell += prefix;
    shell += ' ';
    shell += quote(REMATCH_CLI);
    for (const std::string& a : args) (shell += ' ') += quote(a);
    shell += redirect.empty() ? " > " + quote(out) : ' ' + redirect;
    (shell += " 2> ") += quote(err);
    shell += " < /dev/null";
    const auto start = std::chrono::steady_clock::now();
    const int raw = std::system(("sh -c " + quote(shell)).c_str());
    CliRun r;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + (WIFSIGNALED(raw) ? WTERMSIG(raw) : 0);
    r.out = redirect.empty() ? slurp(out) : "";
    r.err = slurp(err);
    return r;
  }

  fs::path dir_;
};

}  // namespace rematch::test
