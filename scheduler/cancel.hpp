// Cooperative cancellation of a running solve (SolveOptions::cancel): another thread (a Ctrl-C
// handler, a GUI) sets the flag, and the solver stops at its next table row with `Cancelled`.
#pragma once

#include <atomic>
#include <stdexcept>

namespace rematch {

// The solve was stopped by its caller; no result exists.
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("solve cancelled") {}
};

// The flag of the solve running on this thread. The table fills take it once, before their
// parallel regions (OpenMP worker threads do not see the caller's thread-local scope), and poll it
// once per row; exceptions cannot leave a parallel region, so the region skips its remaining rows
// and the caller throws after it.
class CancelPoint {
 public:
  static CancelPoint current();
  bool requested() const { return flag_ != nullptr && flag_->load(std::memory_order_relaxed); }
  void check() const {
    if (requested()) throw Cancelled();
  }

  // Installs `flag` as this thread's solve flag while alive (null keeps the current one).
  class Scope {
   public:
    explicit Scope(const std::atomic<bool>* flag);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    const std::atomic<bool>* previous_;
  };

 private:
  const std::atomic<bool>* flag_ = nullptr;
};

}  // namespace rematch
