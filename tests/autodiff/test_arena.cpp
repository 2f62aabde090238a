#include "autodiff/arena.hpp"

#include <gtest/gtest.h>

#include <string>

namespace rematch::autodiff {
namespace {

TEST(ArenaBudget, RefusesAnAllocationBeyondTheBudgetNamingTheNumbers) {
  Arena arena("activations", 1024);
  void* a = arena.allocate(640);
  try {
    (void)arena.allocate(448);
    FAIL() << "allocation over budget was accepted";
  } catch (const ArenaExhausted& e) {
    EXPECT_EQ(e.requested, 448u);
    EXPECT_EQ(e.in_use, 640u);
    EXPECT_EQ(e.budget, 1024u);
    EXPECT_NE(std::string(e.what()).find("activations arena"), std::string::npos) << e.what();
  }
  EXPECT_EQ(arena.in_use(), 640u);
  arena.deallocate(a, 640);
  EXPECT_EQ(arena.in_use(), 0u);
}

TEST(ArenaBudget, AnAllocationExactlyFillingTheBudgetSucceeds) {
  Arena arena("a", 1024);
  void* a = arena.allocate(1024);
  EXPECT_EQ(arena.high_water(), 1024u);
  arena.deallocate(a, 1024);
}

TEST(ArenaHighWater, TracksTheLargestInUseSinceTheLastReset) {
  Arena arena("a", 4096);
  void* a = arena.allocate(1024);
  void* b = arena.allocate(2048);
  arena.deallocate(b, 2048);
  EXPECT_EQ(arena.high_water(), 3072u);
  arena.reset_high_water();
  EXPECT_EQ(arena.high_water(), 1024u);
  void* c = arena.allocate(64);
  EXPECT_EQ(arena.high_water(), 1088u);
  arena.deallocate(c, 64);
  arena.deallocate(a, 1024);
}

TEST(ArenaCache, ReusesAFreedBlockOfTheSameSize) {
  Arena arena("a", 8192);
  void* a = arena.allocate(2048);
  arena.deallocate(a, 2048);
  EXPECT_EQ(arena.reserved(), 2048u);
  void* b = arena.allocate(2048);
  EXPECT_EQ(a, b);
  arena.deallocate(b, 2048);
}

TEST(ArenaCache, ReservedMemoryNeverExceedsTheBudget) {
  Arena arena("a", 4096);
  void* a = arena.allocate(3072);
  arena.deallocate(a, 3072);
  void* b = arena.allocate(2048);  // the cached 3072 must go first
  EXPECT_LE(arena.reserved(), 4096u);
  void* c = arena.allocate(2048);
  EXPECT_LE(arena.reserved(), 4096u);
  arena.deallocate(b, 2048);
  arena.deallocate(c, 2048);
}

TEST(ArenaKernelsHook, BuffersAreCountedWhileAliveAndReturnedWhenDestroyed) {
  Arena arena("a", 1 << 20);
  {
    kernels::AlignedBuffer<float> buffer(100, arena);  // 400 bytes: 7 cache lines
    EXPECT_EQ(arena.in_use(), 448u);
    EXPECT_EQ(buffer.bytes(), 448u);
  }
  EXPECT_EQ(arena.in_use(), 0u);
}

TEST(FormatBytes, UsesBinaryUnits) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(3.0 * (1u << 30)), "3.00 GiB");
}

}  // namespace
}  // namespace rematch::autodiff
