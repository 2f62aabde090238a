#include "autodiff/arena.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace rematch::autodiff {

Arena::Arena(std::string name, std::size_t budget) : name_(std::move(name)), budget_(budget) {}

Arena::~Arena() { release_cache(); }

void* Arena::allocate(std::size_t bytes) {
  if (bytes > budget_ || in_use_ > budget_ - bytes) {
    throw ArenaExhausted(name_ + " arena: allocating " + format_bytes(double(bytes)) + " with " +
                             format_bytes(double(in_use_)) + " in use would exceed its budget of " +
                             format_bytes(double(budget_)),
                         bytes, in_use_, budget_);
  }
  void* p = take_cached(bytes);
  if (p == nullptr) {
    evict_until_fits(bytes);
    p = std::aligned_alloc(kernels::kAlignment, bytes);
    if (p == nullptr) {
      throw ArenaExhausted(name_ + " arena: the system refused " + format_bytes(double(bytes)) +
                               " within the budget (process memory limit?)",
                           bytes, in_use_, budget_);
    }
  }
  in_use_ += bytes;
  if (in_use_ > high_water_) high_water_ = in_use_;
  if (fresh_fill_) std::memset(p, *fresh_fill_, bytes);
  return p;
}

void Arena::deallocate(void* p, std::size_t bytes) noexcept {
  in_use_ -= bytes;
  try {
    cache_[bytes].push_back(p);
    cached_ += bytes;
  } catch (...) {  // no room to remember the block: give it back instead
    std::free(p);
  }
}

void* Arena::take_cached(std::size_t bytes) {
  auto it = cache_.find(bytes);
  if (it == cache_.end() || it->second.empty()) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  cached_ -= bytes;
  return p;
}

void Arena::evict_until_fits(std::size_t bytes) {
  // Largest blocks first: fewest frees to get under the budget.
  while (cached_ > 0 && in_use_ + cached_ + bytes > budget_) {
    auto it = std::prev(cache_.end());
    if (it->second.empty()) {
      cache_.erase(it);
      continue;
    }
    std::free(it->second.back());
    it->second.pop_back();
    cached_ -= it->first;
  }
}

void Arena::release_cache() {
  for (auto& [bytes, blocks] : cache_) {
    for (void* p : blocks) std::free(p);
  }
  cache_.clear();
  cached_ = 0;
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
