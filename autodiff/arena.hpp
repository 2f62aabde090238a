// The memory arena of a training step: every activation, saved tensor, gradient and kernel
// scratch buffer of the schedule is allocated here, counted to the byte, and refused when it
// would take the bytes in use over the budget. Nothing falls back to the C heap.
//
// Accounting is per allocation, in whole cache lines (kernels::aligned_bytes), which is exactly
// how the profiler measures the sizes it writes into the graph: the arena's high-water mark and
// the simulator's peak are in the same unit.
//
// Freed blocks are kept for reuse by a later allocation of the same size (a training step
// allocates the same sizes over and over), so steady-state steps neither fault in fresh pages
// nor return them. Cached blocks are released before the process would hold more than the
// budget: resident arena memory stays <= budget.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

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

  const std::string& name() const { return name_; }
  std::size_t budget() const { return budget_; }
  std::size_t in_use() const { return in_use_; }
  std::size_t high_water() const { return high_water_; }
  std::size_t reserved() const { return in_use_ + cached_; }  // in use plus cached for reuse
  // Starts a new high-water measurement from the bytes in use now.
  void reset_high_water() { high_water_ = in_use_; }
  // Gives every cached block back to the system.
  void release_cache();
  // For tests: every block handed out is first filled with `byte` (none: left as it is). 0xff
  // bytes are NaN in fp32 and bf16, so a buffer that skips its zero-fill but is read before it
  // is written shows in the results; 0x00 gives the run where every buffer is zero-filled.
  void set_fresh_fill(std::optional<std::uint8_t> byte) { fresh_fill_ = byte; }

 private:
  void* take_cached(std::size_t bytes);
  void evict_until_fits(std::size_t bytes);

  std::string name_;
  std::size_t budget_;
  std::size_t in_use_ = 0;
  std::size_t high_water_ = 0;
  std::size_t cached_ = 0;
  std::optional<std::uint8_t> fresh_fill_;
  std::map<std::size_t, std::vector<void*>> cache_;  // size -> free blocks of that size
};

// "1.5 GiB" style rendering for messages and reports.
std::string format_bytes(double bytes);

}  // namespace rematch::autodiff
