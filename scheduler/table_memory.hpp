// The memory of the dynamic programs' tables: one allocator for them all, which counts the bytes
// held and the most held at once, so the table budget (SolveOptions::table_budget_bytes) can be
// checked against what a solve really allocates.
#pragma once

#include <cstddef>
#include <memory>

namespace rematch {

// `count` floats, cache-line aligned and left uninitialised (large tables are mapped apart and
// unmapped when released); throws std::bad_alloc.
float* allocate_table(std::size_t count);

struct TableFree {
  void operator()(float* table) const;
};
using Table = std::unique_ptr<float[], TableFree>;

// The bytes allocate_table reserves for `count` floats (what an address-space limit counts).
std::size_t table_allocation_bytes(std::size_t count);

// Bytes of tables held now, by every thread of the process.
std::size_t table_bytes_held();
// The most held at once since the last reset_table_peak (or the start of the process).
std::size_t table_bytes_peak();
// Restarts the peak from what is held now.
void reset_table_peak();

}  // namespace rematch
