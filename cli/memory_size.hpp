// Budgets as people write them: "7", "1.5e9", "512MiB", "2GiB", "3G".
#pragma once

#include <string>

namespace rematch::cli {

// Decimal (K, M, G, T: powers of 1000) and binary (KiB, MiB, GiB, TiB) suffixes, optional "B".
// Throws InputError naming `what` for anything else, negative or non-finite values.
double parse_memory_size(const std::string& text, const std::string& what);

}  // namespace rematch::cli
