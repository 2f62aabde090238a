#include "scheduler/table_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

namespace rematch {

namespace {

constexpr std::size_t line = 64;
// A header before each table keeps its size for the count at release.
constexpr std::size_t header = line;
// Tables from this size on are mapped apart, whatever the allocator's thresholds (rematch train
// keeps buffers up to 32 MiB in the heap): released, they give their address space back, so a
// plan leaves nothing behind for the run under a process memory limit.
constexpr std::size_t mapped_from = std::size_t{1} << 20;

std::size_t page_bytes() {
  static const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
  return page;
}

std::atomic<std::size_t> held{0};
std::atomic<std::size_t> peak{0};

void raise_peak(std::size_t now) {
  std::size_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

}  // namespace

std::size_t table_allocation_bytes(std::size_t count) {
  const std::size_t bytes = header + (std::max<std::size_t>(count, 1) * sizeof(float) + line - 1) / line * line;
  return bytes < mapped_from ? bytes : (bytes + page_bytes() - 1) / page_bytes() * page_bytes();
}

float* allocate_table(std::size_t count) {
  const std::size_t bytes = table_allocation_bytes(count);
  void* block = nullptr;
  if (bytes < mapped_from) {
    block = std::aligned_alloc(line, bytes);
  } else if (void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
             p != MAP_FAILED) {
    block = p;
  }
  if (!block) throw std::bad_alloc();
  *static_cast<std::size_t*>(block) = bytes;
  raise_peak(held.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  return reinterpret_cast<float*>(static_cast<char*>(block) + header);
}

void TableFree::operator()(float* table) const {
  if (!table) return;
  void* block = reinterpret_cast<char*>(table) - header;
  const std::size_t bytes = *static_cast<std::size_t*>(block);
  held.fetch_sub(bytes, std::memory_order_relaxed);
  if (bytes < mapped_from) std::free(block);
  else munmap(block, bytes);
}

std::size_t table_bytes_held() { return held.load(std::memory_order_relaxed); }

std::size_t table_bytes_peak() { return peak.load(std::memory_order_relaxed); }

void reset_table_peak() { peak.store(held.load(std::memory_order_relaxed), std::memory_order_relaxed); }

}  // namespace rematch
