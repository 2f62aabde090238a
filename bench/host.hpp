#pragma once
// The host a bench ran on, printed and written with every figure: the hosts differ between runs
// (CPU model, AVX2 or AVX-512), so a figure means nothing without them.
#include <fstream>
#include <string>

namespace rematch::bench {

// /proc/cpuinfo's first "model name", or "unknown".
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// The widest x86 vector ISA the CPU flags list: "AVX-512" (with " + bf16" when avx512_bf16 is
// there too), "AVX2", or "SSE".
inline std::string isa() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    line += ' ';
    if (line.find(" avx512f ") != std::string::npos)
      return line.find(" avx512_bf16 ") != std::string::npos ? "AVX-512 + bf16" : "AVX-512";
    if (line.find(" avx2 ") != std::string::npos) return "AVX2";
    return "SSE";
  }
  return "unknown";
}

}  // namespace rematch::bench
