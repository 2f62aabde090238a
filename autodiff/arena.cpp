#include "autodiff/arena.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <tuple>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define REMATCH_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define REMATCH_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define REMATCH_POISON(p, n) ((void)(p), (void)(n))
#define REMATCH_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace rematch::autodiff {
namespace {

#if defined(__SANITIZE_ADDRESS__)
// A poisoned cache line after every block, so AddressSanitizer still sees a kernel writing past
// its buffer although blocks share chunks.
constexpr std::size_t kRedzone = kernels::kAlignment;
#else
constexpr std::size_t kRedzone = 0;
#endif

// Without a budget, chunks below this would make many small buffers map over and over.
constexpr std::size_t kMinChunk = std::size_t{4} << 20;
// Chunks from this size on ask for transparent huge pages: fewer faults and TLB misses on the
// large activations of big batches.
constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::size_t page_bytes() {
  static const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
  return page;
}

std::size_t round_up(std::size_t n, std::size_t unit) {
  return n > ~std::size_t{0} - unit ? ~std::size_t{0} / unit * unit : (n + unit - 1) / unit * unit;
}

// The range a block of `bytes` occupies: whole cache lines (one at least, so every block has its
// own address) and the redzone.
std::size_t block_bytes(std::size_t bytes) {
  return round_up(std::max(bytes, kernels::kAlignment), kernels::kAlignment) + kRedzone;
}

}  // namespace

Arena::Arena(std::string name, std::size_t budget)
    : name_(std::move(name)), budget_(budget), map_limit_(round_up(budget, page_bytes())) {}

Arena::~Arena() {
  while (!chunks_.empty()) unmap_chunk(chunks_.begin());
}

void* Arena::allocate(std::size_t bytes) { return allocate(bytes, false); }

void Arena::require_room(std::size_t bytes) const {
  if (bytes > budget_ || in_use_ > budget_ - bytes) {
    throw ArenaExhausted(name_ + " arena: allocating " + format_bytes(double(bytes)) + " with " +
                             format_bytes(double(in_use_)) + " in use would exceed its budget of " +
                             format_bytes(double(budget_)),
                         bytes, in_use_, budget_);
  }
}

void Arena::count(std::size_t bytes) {
  in_use_ += bytes;
  if (in_use_ > high_water_) high_water_ = in_use_;
}

void Arena::adopt(void* p, std::size_t bytes, kernels::Allocator& origin) {
  require_room(bytes);
  adopted_.emplace(p, &origin);
  count(bytes);
}

void* Arena::allocate(std::size_t bytes, bool at_top) {
  require_room(bytes);
  const std::size_t block = block_bytes(bytes);
  char* p = take_free(block, at_top);
  if (p == nullptr) {
    const std::size_t need = round_up(block, page_bytes());
    if (need > room()) {
      for (auto c = chunks_.begin(); c != chunks_.end();) {
        const auto next = std::next(c);
        if (c->second.used == 0) unmap_chunk(c);
        c = next;
      }
    }
    bool mapped = false;
    if (need <= room()) {
      // A finite budget is mapped whole (its pages are faulted in only when touched), so blocks
      // are laid out in one range; without a budget the chunks grow geometrically.
      const std::size_t want = budget_ != kUnlimited ? room() : std::max({need, kMinChunk, mapped_});
      mapped = map_chunk(want) || (want > need && map_chunk(need));
    } else {
      // The budget allows the block but the free ranges are too fragmented to hold it: their
      // pages go back to the system first, so the chunk mapped beyond the budget keeps resident
      // memory within it.
      release_free_pages();
      mapped = map_chunk(need);
    }
    if (!mapped) {
      throw ArenaExhausted(name_ + " arena: the system refused " + format_bytes(double(bytes)) +
                               " within the budget (process memory limit?)",
                           bytes, in_use_, budget_);
    }
    p = take_free(block, at_top);
  }
  chunk_of(p)->second.used += block;
  REMATCH_UNPOISON(p, bytes);
  count(bytes);
  if (fresh_fill_) std::memset(p, *fresh_fill_, bytes);
  return p;
}

void Arena::deallocate(void* ptr, std::size_t bytes) noexcept {
  in_use_ -= bytes;
  if (const auto adopted = adopted_.find(ptr); adopted != adopted_.end()) {
    adopted->second->deallocate(ptr, bytes);
    adopted_.erase(adopted);
    return;
  }
  char* p = static_cast<char*>(ptr);
  const std::size_t block = block_bytes(bytes);
  const auto chunk = chunk_of(p);
  chunk->second.used -= block;
  try {
    add_free(p, block);
  } catch (...) {
    // No memory to record the range: it stays unused until its chunk empties.
  }
  if (chunk->second.used == 0 && mapped_ > map_limit_) unmap_chunk(chunk);
}

char* Arena::take_free(std::size_t bytes, bool at_top) {
  char* p = nullptr;
  std::size_t size = 0;
  if (at_top) {
    for (auto r = free_.rbegin(); r != free_.rend() && p == nullptr; ++r) {
      if (r->second >= bytes) std::tie(p, size) = *r;
    }
  } else if (const auto fit = fits_.lower_bound({bytes, nullptr}); fit != fits_.end()) {
    std::tie(size, p) = *fit;
  }
  if (p == nullptr) return nullptr;
  erase_free(free_.find(p));
  // The rest keeps its neighbours: the range was maximal, so no merge is due.
  char* const block = at_top ? p + (size - bytes) : p;
  char* const rest = at_top ? p : p + bytes;
  if (size > bytes) {
    free_.emplace(rest, size - bytes);
    fits_.emplace(size - bytes, rest);
  }
  return block;
}

bool Arena::map_chunk(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return false;
  if (bytes >= kHugePage) (void)madvise(p, bytes, MADV_HUGEPAGE);
  char* base = static_cast<char*>(p);
  chunks_.emplace(base, Chunk{bytes});
  mapped_ += bytes;
  ++chunks_mapped_;
  try {
    add_free(base, bytes);
  } catch (...) {
    unmap_chunk(chunks_.find(base));
    return false;
  }
  return true;
}

void Arena::unmap_chunk(Chunks::iterator chunk) {
  char* base = chunk->first;
  const std::size_t bytes = chunk->second.bytes;
  for (auto r = free_.lower_bound(base); r != free_.end() && r->first < base + bytes;) {
    const auto next = std::next(r);
    erase_free(r);
    r = next;
  }
  REMATCH_UNPOISON(base, bytes);
  munmap(base, bytes);
  mapped_ -= bytes;
  chunks_.erase(chunk);
}

void Arena::add_free(char* p, std::size_t bytes) {
  REMATCH_POISON(p, bytes);
  const auto chunk = chunk_of(p);
  char* const begin = chunk->first;
  char* const end = begin + chunk->second.bytes;
  // Merge with the free neighbours inside the same chunk (chunks may be adjacent in memory).
  if (p + bytes < end) {
    const auto next = free_.find(p + bytes);
    if (next != free_.end()) {
      bytes += next->second;
      erase_free(next);
    }
  }
  if (p > begin) {
    const auto prev = free_.lower_bound(p);
    if (prev != free_.begin()) {
      const auto before = std::prev(prev);
      if (before->first + before->second == p) {
        p = before->first;
        bytes += before->second;
        erase_free(before);
      }
    }
  }
  fits_.emplace(bytes, p);
  try {
    free_.emplace(p, bytes);
  } catch (...) {
    fits_.erase({bytes, p});
    throw;
  }
}

void Arena::erase_free(std::map<char*, std::size_t>::iterator range) {
  fits_.erase({range->second, range->first});
  free_.erase(range);
}

void Arena::release_free_pages() {
  const std::size_t page = page_bytes();
  for (const auto& [p, bytes] : free_) {
    const auto lo = round_up(reinterpret_cast<std::uintptr_t>(p), page);
    const auto hi = (reinterpret_cast<std::uintptr_t>(p) + bytes) / page * page;
    if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  }
}

Arena::Chunks::iterator Arena::chunk_of(const char* p) {
  return std::prev(chunks_.upper_bound(const_cast<char*>(p)));
}

std::string format_bytes(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

}  // namespace rematch::autodiff
