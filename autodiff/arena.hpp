// The memory arena of a training step: every activation, saved tensor, gradient and kernel
// scratch buffer of the schedule is allocated here, counted to the byte, and refused when it
// would take the bytes in use over the budget. Nothing falls back to the C heap.
//
// Accounting is per allocation, in whole cache lines (kernels::aligned_bytes), which is exactly
// how the profiler measures the sizes it writes into the graph: the arena's high-water mark and
// the simulator's peak are in the same unit.
//
// Memory comes from the system in chunks that stay mapped (a finite budget in one chunk, mapped
// whole at the first allocation; its pages are faulted in only when touched); blocks are carved
// from their free ranges (best fit) and merged with free neighbours when freed. A training step allocates the
// same sizes in the same order step after step, so after its first step it settles into one
// layout and takes nothing more from the system: no fresh pages to fault in, whatever the mix of
// sizes and however close the peak comes to the budget.
//
// Resident memory stays within the budget: chunks are mapped only while they total at most the
// budget. When the free ranges are too fragmented for a request the budget allows, their pages
// are given back to the system before a chunk is mapped beyond it (resident memory is then the
// blocks in use, up to the partial pages at the free ranges' edges), and that chunk is unmapped
// as soon as it is empty.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels/tensor.hpp"

namespace rematch::autodiff {

// An allocation the budget does not allow; the message names the arena, the request, the bytes
// in use and the budget.
class ArenaExhausted : public std::runtime_error {
 public:
  ArenaExhausted(const std::string& message, std::size_t requested, std::size_t in_use,
                 std::size_t budget)
      : std::runtime_error(message), requested(requested), in_use(in_use), budget(budget) {}
  std::size_t requested, in_use, budget;
};

class Arena final : public kernels::Allocator {
 public:
  static constexpr std::size_t kUnlimited = ~std::size_t{0};

  explicit Arena(std::string name, std::size_t budget = kUnlimited);
  ~Arena() override;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(std::size_t bytes) override;  // throws ArenaExhausted
  void deallocate(void* p, std::size_t bytes) noexcept override;
  // Counts storage another allocator made (a batch's input rows taken as a step's input tensor
  // without a copy) exactly as an allocation of `bytes`: against the budget (throws
  // ArenaExhausted as allocate does), in the bytes in use and the high-water mark. It stays where
  // it is, outside the arena's chunks, and deallocate gives it back to `origin`.
  void adopt(void* p, std::size_t bytes, kernels::Allocator& origin) override;
  // The same arena and budget for blocks that live only inside one op (kernel scratch, widened
  // copies, a stage's inner outputs): they are placed at the top of the highest free range that
  // holds them, the others best fit from the bottom, so short-lived blocks leave no holes among
  // the long-lived ones.
  kernels::Allocator& transient() { return transient_; }

  const std::string& name() const { return name_; }
  std::size_t budget() const { return budget_; }
  std::size_t in_use() const { return in_use_; }
  std::size_t high_water() const { return high_water_; }
  // Starts a new high-water measurement from the bytes in use now.
  void reset_high_water() { high_water_ = in_use_; }
  // For tests: every block handed out is first filled with `byte` (none: left as it is). 0xff
  // bytes are NaN in fp32 and bf16, so a buffer that skips its zero-fill but is read before it
  // is written shows in the results; 0x00 gives the run where every buffer is zero-filled.
  void set_fresh_fill(std::optional<std::uint8_t> byte) { fresh_fill_ = byte; }

  // Bytes mapped from the system now, and how many chunks were mapped so far.
  std::size_t mapped() const { return mapped_; }
  std::size_t chunks_mapped() const { return chunks_mapped_; }

 private:
  struct Chunk {
    std::size_t bytes;
    std::size_t used = 0;  // bytes of blocks carved from it
  };
  using Chunks = std::map<char*, Chunk>;
  class Transient final : public kernels::Allocator {
   public:
    explicit Transient(Arena& arena) : arena_(arena) {}
    void* allocate(std::size_t bytes) override { return arena_.allocate(bytes, true); }
    void deallocate(void* p, std::size_t bytes) noexcept override { arena_.deallocate(p, bytes); }

   private:
    Arena& arena_;
  };

  void* allocate(std::size_t bytes, bool at_top);
  void require_room(std::size_t bytes) const;  // throws ArenaExhausted unless the budget allows
  void count(std::size_t bytes);               // bytes now in use, and the high-water mark
  // Bytes that may still be mapped before the chunks total the budget.
  std::size_t room() const { return map_limit_ - std::min(map_limit_, mapped_); }
  char* take_free(std::size_t bytes, bool at_top);
  bool map_chunk(std::size_t bytes);
  void unmap_chunk(Chunks::iterator chunk);
  void add_free(char* p, std::size_t bytes);
  void erase_free(std::map<char*, std::size_t>::iterator range);
  void release_free_pages();
  Chunks::iterator chunk_of(const char* p);

  std::string name_;
  std::size_t budget_;
  std::size_t map_limit_;  // the budget in whole pages: what the chunks may total
  std::size_t in_use_ = 0;
  std::size_t high_water_ = 0;
  std::size_t mapped_ = 0;
  std::size_t chunks_mapped_ = 0;
  std::optional<std::uint8_t> fresh_fill_;
  std::map<void*, kernels::Allocator*> adopted_;  // adopted storage and where it goes back to
  Transient transient_{*this};
  Chunks chunks_;                                  // by base address
  std::map<char*, std::size_t> free_;              // free ranges by address
  std::set<std::pair<std::size_t, char*>> fits_;   // the same ranges by size, for best fit
};

// "1.5 GiB" style rendering for messages and reports.
std::string format_bytes(double bytes);

}  // namespace rematch::autodiff
