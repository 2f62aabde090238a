#include "scheduler/cancel.hpp"

namespace rematch {

namespace {
thread_local const std::atomic<bool>* current_flag = nullptr;
}

CancelPoint CancelPoint::current() {
  CancelPoint point;
  point.flag_ = current_flag;
  return point;
}

// A nested solve without a flag of its own (a solver calling solve() on a part of the graph) keeps
// its caller's.
CancelPoint::Scope::Scope(const std::atomic<bool>* flag) : previous_(current_flag) {
  if (flag != nullptr) current_flag = flag;
}

CancelPoint::Scope::~Scope() { current_flag = previous_; }

}  // namespace rematch
