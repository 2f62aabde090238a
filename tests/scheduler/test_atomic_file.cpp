// io::AtomicFile, the writer behind every output file: whole or nothing, devices written in place,
// temporaries unique per writer and removed on failure, destruction and termination signals.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "scheduler/io/atomic_file.hpp"

namespace {

namespace fs = std::filesystem;
using rematch::io::AtomicFile;
using rematch::io::WriteError;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "rematch_atomic_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::size_t entries() const { return std::size_t(std::distance(fs::directory_iterator(dir_), fs::directory_iterator())); }
  std::string slurp(const fs::path& path) const {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  fs::path dir_;
};

TEST_F(AtomicFileTest, TargetAppearsOnlyOnCommitAndAnUncommittedWriterLeavesNothing) {
  const std::string target = (dir_ / "out.txt").string();
  rematch::io::write_file_atomically(target, "old");
  {
    AtomicFile file(target);
    file.write("new", 3);
    EXPECT_EQ(slurp(target), "old");
    EXPECT_EQ(entries(), 2u) << "the target and one temporary beside it";
  }
  EXPECT_EQ(slurp(target), "old");
  EXPECT_EQ(entries(), 1u) << "no temporary left";
  AtomicFile file(target);
  file.write("new", 3);
  file.commit();
  EXPECT_EQ(slurp(target), "new");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFileTest, TwoWritersOfOneTargetUseTheirOwnTemporaries) {
  const std::string target = (dir_ / "out.txt").string();
  AtomicFile first(target), second(target);
  EXPECT_EQ(entries(), 2u);
  first.write("first", 5);
  second.write("second", 6);
  second.commit();
  first.commit();
  EXPECT_EQ(slurp(target), "first");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFileTest, DevicesAreWrittenInPlaceNeverRenamedOver) {
  rematch::io::write_file_atomically("/dev/null", "discarded");
  EXPECT_EQ(fs::status("/dev/null").type(), fs::file_type::character);
  try {
    rematch::io::write_file_atomically("/dev/full", std::string(1 << 16, 'x'));
    ADD_FAILURE() << "a write to /dev/full succeeded";
  } catch (const WriteError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write '/dev/full'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::status("/dev/full").type(), fs::file_type::character);
}

TEST_F(AtomicFileTest, ADirectoryOrAMissingDirectoryIsAnErrorNamingThePath) {
  EXPECT_THROW(AtomicFile{dir_.string()}, WriteError);
  try {
    AtomicFile file((dir_ / "no" / "x.txt").string());
    ADD_FAILURE() << "created a file in a missing directory";
  } catch (const WriteError& e) {
    EXPECT_NE(std::string(e.what()).find("x.txt"), std::string::npos) << e.what();
  }
  EXPECT_EQ(entries(), 0u);
}

TEST_F(AtomicFileTest, ATerminationSignalRemovesTheTemporary) {
  for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      AtomicFile file((dir_ / "out.txt").string());
      file.write("partial", 7);
      std::raise(sig);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "status " << status;
    EXPECT_EQ(entries(), 0u) << "signal " << sig;
  }
}

}  // namespace
