#include "scheduler/table_memory.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

namespace rematch {

namespace {

constexpr std::size_t line = 64;
// A header before each table keeps its size for the count at release.
constexpr std::size_t header = line;

std::atomic<std::size_t> held{0};
std::atomic<std::size_t> peak{0};

void raise_peak(std::size_t now) {
  std::size_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

}  // namespace

std::size_t table_allocation_bytes(std::size_t count) {
  return header + (std::max<std::size_t>(count, 1) * sizeof(float) + line - 1) / line * line;
}

float* allocate_table(std::size_t count) {
  const std::size_t bytes = table_allocation_bytes(count);
  void* block = std::aligned_alloc(line, bytes);
  if (!block) throw std::bad_alloc();
  *static_cast<std::size_t*>(block) = bytes;
  raise_peak(held.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  return reinterpret_cast<float*>(static_cast<char*>(block) + header);
}

void TableFree::operator()(float* table) const {
  if (!table) return;
  void* block = reinterpret_cast<char*>(table) - header;
  held.fetch_sub(*static_cast<std::size_t*>(block), std::memory_order_relaxed);
  std::free(block);
}

std::size_t table_bytes_held() { return held.load(std::memory_order_relaxed); }

std::size_t table_bytes_peak() { return peak.load(std::memory_order_relaxed); }

void reset_table_peak() { peak.store(held.load(std::memory_order_relaxed), std::memory_order_relaxed); }

}  // namespace rematch
