#pragma once
// Wall time of kernel calls by kind, for benches that break a training step down
// (bench/runtime/bench_step). Off by default, when a scope costs one relaxed atomic load.
// Scopes are opened by the thread that calls the kernels (outside their parallel regions);
// a scope inside another one adds nothing, so each kernel call is counted once, under the
// kind of its outermost scope.

namespace rematch::kernels {

enum class OpKind {
  gemm,       // FC GEMM passes, with whatever is fused into them (epilogues, the narrow sweep)
  eltwise,    // element-wise and normalisation kernels, the bias gradient
  layout,     // pack / unpack, transposes, bf16 copies
  zero_fill,  // zero-initialisation of fresh buffers
  loss,
  optimizer,
};
inline constexpr int kOpKinds = 6;
const char* op_kind_name(OpKind kind);

// cpu_time: count the process's CPU time (all threads) instead of the wall clock.
void enable_op_timing(bool on, bool cpu_time = false);
void reset_op_times();
// Seconds counted under `kind` since the last reset.
double op_seconds(OpKind kind);

class OpScope {
 public:
  explicit OpScope(OpKind kind);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  OpKind kind_;
  bool active_ = false, counting_ = false;  // timing was on at entry; outermost scope
  double start_ = 0;
};

}  // namespace rematch::kernels
