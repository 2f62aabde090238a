#include "autodiff/arena.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

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

TEST(ArenaReuse, AFreedBlockIsReusedWithoutMappingMore) {
  Arena arena("a", 8192);
  void* a = arena.allocate(2048);
  arena.deallocate(a, 2048);
  const std::size_t chunks = arena.chunks_mapped();
  void* b = arena.allocate(2048);
  EXPECT_EQ(a, b);
  EXPECT_EQ(arena.chunks_mapped(), chunks);
  arena.deallocate(b, 2048);
}

// A training step's pattern: the same mix of sizes allocated and freed in the same order every
// step, peaking close to the budget. After the first step the arena must take nothing more from
// the system (no fresh pages to fault in), and never map more than the budget.
TEST(ArenaSteadyState, ARepeatedStepMapsNothingAfterItsFirst) {
  constexpr std::size_t kKiB = 1024;
  const std::vector<std::size_t> sizes = {1024 * kKiB, 2048 * kKiB, 512 * kKiB, 3072 * kKiB,
                                          640 * kKiB,  1536 * kKiB, 256 * kKiB, 2560 * kKiB};
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  Arena arena("activations", total + 64 * kKiB);  // the peak is 99% of the budget
  std::size_t after_first = 0;
  for (int step = 0; step < 20; ++step) {
    std::vector<void*> live;
    for (std::size_t s : sizes) {
      live.push_back(arena.allocate(s));
      std::memset(live.back(), step, s);
      EXPECT_LE(arena.mapped(), arena.budget() + 4096);
    }
    // Free in an order unlike the allocation order: odd ones first, then the rest backwards.
    for (std::size_t i = 1; i < sizes.size(); i += 2) arena.deallocate(live[i], sizes[i]);
    for (std::size_t i = sizes.size(); i-- > 0;)
      if (i % 2 == 0) arena.deallocate(live[i], sizes[i]);
    if (step == 0) after_first = arena.chunks_mapped();
    EXPECT_EQ(arena.chunks_mapped(), after_first) << "step " << step << " mapped more memory";
  }
}

// Blocks that live only inside one op, placed from the top, leave no holes among the long-lived
// ones: after eight long-lived blocks each made while the previous op's scratch was alive, the
// free space is still one range (a request of nearly all of it needs no second chunk).
TEST(ArenaTransient, ShortLivedBlocksLeaveNoHolesAmongLongLivedOnes) {
  constexpr std::size_t kKiB = 1024;
  Arena arena("a", 1024 * kKiB);
  std::vector<void*> kept;
  void* scratch = nullptr;
  for (int i = 0; i < 8; ++i) {
    kept.push_back(arena.allocate(64 * kKiB));
    if (scratch != nullptr) arena.transient().deallocate(scratch, 32 * kKiB);
    scratch = arena.transient().allocate(32 * kKiB);
  }
  arena.transient().deallocate(scratch, 32 * kKiB);
  const std::size_t chunks = arena.chunks_mapped();
  void* big = arena.allocate(448 * kKiB);
  EXPECT_EQ(arena.chunks_mapped(), chunks) << "the free space was fragmented";
  EXPECT_LE(arena.mapped(), 1024 * kKiB);
  arena.deallocate(big, 448 * kKiB);
  for (void* p : kept) arena.deallocate(p, 64 * kKiB);
  EXPECT_EQ(arena.in_use(), 0u);
}

TEST(ArenaBlocks, RandomRequestsWithinTheBudgetAllSucceedAlignedAndDisjoint) {
  std::mt19937 rng(7);
  const std::size_t budget = std::size_t{3} << 20;
  Arena arena("a", budget);
  struct Block {
    unsigned char* p;
    std::size_t bytes;
    unsigned char tag;
  };
  std::vector<Block> live;
  unsigned char tag = 0;
  auto check_and_free = [&](std::size_t i) {
    const Block b = live[i];
    for (std::size_t k = 0; k < b.bytes; k += 61) ASSERT_EQ(b.p[k], b.tag) << "block overwritten";
    arena.deallocate(b.p, b.bytes);
    live.erase(live.begin() + std::ptrdiff_t(i));
  };
  for (int round = 0; round < 4000; ++round) {
    const std::size_t bytes = 64 * (1 + rng() % (rng() % 4 == 0 ? 8192 : 64));
    if (arena.in_use() + bytes <= budget && rng() % 3 != 0) {
      auto* p = static_cast<unsigned char*>(rng() % 2 ? arena.allocate(bytes) : arena.transient().allocate(bytes));
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % kernels::kAlignment, 0u);
      std::memset(p, ++tag, bytes);
      live.push_back({p, bytes, tag});
    } else if (!live.empty()) {
      check_and_free(rng() % live.size());
    }
  }
  while (!live.empty()) check_and_free(live.size() - 1);
  EXPECT_EQ(arena.in_use(), 0u);
  EXPECT_LE(arena.mapped(), budget);
}

TEST(ArenaFragmentation, ARequestTheBudgetAllowsSucceedsAndItsExtraChunkGoesWhenEmpty) {
  Arena arena("a", 32768);
  std::vector<void*> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(arena.allocate(8000));
  ASSERT_EQ(arena.mapped(), 32768u);
  arena.deallocate(blocks[0], 8000);
  arena.deallocate(blocks[2], 8000);
  // 16000 bytes fit the budget, but no free range of the chunk holds them.
  auto* p = static_cast<unsigned char*>(arena.allocate(16000));
  std::memset(p, 1, 16000);
  EXPECT_GT(arena.mapped(), 32768u);
  arena.deallocate(p, 16000);
  EXPECT_EQ(arena.mapped(), 32768u) << "the chunk beyond the budget stayed mapped";
  arena.deallocate(blocks[1], 8000);
  arena.deallocate(blocks[3], 8000);
  EXPECT_EQ(arena.in_use(), 0u);
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
