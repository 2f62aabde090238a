#include "cli/memory_size.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "scheduler/graph.hpp"

namespace rematch::cli {

double parse_memory_size(const std::string& text, const std::string& what) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double value = std::strtod(begin, &end);
  if (end == begin) throw InputError(what + " '" + text + "' is not a number");
  std::string suffix(end);
  while (!suffix.empty() && std::isspace(static_cast<unsigned char>(suffix.back()))) suffix.pop_back();
  double scale = 1;
  if (!suffix.empty()) {
    static const std::pair<const char*, double> units[] = {
        {"K", 1e3},  {"M", 1e3 * 1e3}, {"G", 1e9},  {"T", 1e12},  {"KB", 1e3}, {"MB", 1e6},
        {"GB", 1e9}, {"TB", 1e12},     {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0},
        {"TiB", 1099511627776.0}, {"B", 1}};
    bool known = false;
    for (const auto& [name, factor] : units)
      if (suffix == name) {
        scale = factor;
        known = true;
      }
    if (!known) throw InputError(what + " '" + text + "': unknown unit '" + suffix + "'");
  }
  const double bytes = value * scale;
  if (!std::isfinite(bytes)) throw InputError(what + " '" + text + "' is not finite");
  if (bytes < 0) throw InputError(what + " '" + text + "' is negative");
  return bytes;
}

}  // namespace rematch::cli
