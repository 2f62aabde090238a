#include "kernels/op_timing.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <ctime>

namespace rematch::kernels {
namespace {

std::atomic<bool> g_enabled{false};
bool g_cpu_time = false;
std::array<double, kOpKinds> g_seconds{};
thread_local int t_depth = 0;

double now() {
  if (!g_cpu_time) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

}  // namespace

const char* op_kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::gemm: return "gemm";
    case OpKind::eltwise: return "eltwise";
    case OpKind::layout: return "layout";
    case OpKind::zero_fill: return "zero_fill";
    case OpKind::loss: return "loss";
    case OpKind::optimizer: return "optimizer";
  }
  return "?";
}

void enable_op_timing(bool on, bool cpu_time) {
  g_cpu_time = cpu_time;
  g_enabled.store(on, std::memory_order_relaxed);
}

void reset_op_times() { g_seconds.fill(0.0); }

double op_seconds(OpKind kind) { return g_seconds[static_cast<int>(kind)]; }

OpScope::OpScope(OpKind kind) : kind_(kind) {
  if (!g_enabled.load(std::memory_order_relaxed)) return;
  active_ = true;
  if (t_depth++ > 0) return;
  counting_ = true;
  start_ = now();
}

OpScope::~OpScope() {
  if (!active_) return;
  --t_depth;
  if (counting_) {
    g_seconds[static_cast<int>(kind_)] += now() - start_;
  }
}

}  // namespace rematch::kernels
