// The gradient exchange of data-parallel training: every process ends the step with the mean of
// all processes' gradients, bitwise the same on every process and on every run with the same
// number of processes.
//
// MPI_Allreduce does not fix the order in which it adds the contributions, so this exchange
// gathers them instead: gradients are packed into buckets as their stages become final, each
// full bucket is gathered from every process with a non-blocking MPI_Iallgather, and the
// gathered copies are added in rank order, ((g_0 + g_1) + g_2) + ..., then divided by the number
// of processes. Buckets are filled in the order the trainer hands stages over, which is the
// same on every process.
//
// Memory: `slots` buckets may be in flight at once; each holds one bucket from every process, so
// the buffer (taken from the activation arena) is slots x processes x bucket floats. A bucket
// is as large as the gradients when they are small, else about 2 MiB in total over the
// processes. Traffic: each process receives (processes - 1) x the gradient bytes per step.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <vector>

#include "autodiff/gradient_exchange.hpp"
#include "distributed/communicator.hpp"

namespace rematch::distributed {

// No process answered within the timeout (a peer died or hangs).
class CommunicationTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class OrderedGradientSum final : public autodiff::GradientExchange {
 public:
  // timeout: how long a wait for the other processes may last before the run is given up.
  OrderedGradientSum(const Communicator& communicator, std::chrono::duration<double> timeout,
                     int slots = 2);

  int processes() const override { return communicator_.size(); }
  std::size_t buffer_floats(std::size_t gradient_floats) const override;
  void attach(std::span<float> buffer) override;
  void stage_final(std::span<const std::span<float>> tensors) override;
  void progress() override;
  double finish() override;
  float mean(float local) override;

  std::size_t bucket_floats() const { return bucket_; }

 private:
  struct Piece {
    float* target;
    std::size_t count;
  };
  struct Slot {
    std::vector<Piece> pieces;
    std::size_t used = 0;  // floats of this process's bucket
    MPI_Request request = MPI_REQUEST_NULL;
  };

  std::span<float> slot_memory(int slot);
  void launch();             // gathers the filling slot and moves on to the next one
  // Blocks until the request is done, counting the time; throws CommunicationTimeout.
  void wait(MPI_Request& request);
  void complete(Slot& slot);  // rank-order sum of a gathered slot into the targets
  bool in_flight(const Slot& slot) const { return slot.request != MPI_REQUEST_NULL; }

  const Communicator& communicator_;
  std::chrono::duration<double> timeout_;
  std::size_t bucket_ = 0;
  std::span<float> buffer_;
  std::vector<Slot> slots_;
  int filling_ = 0;
  double waited_ = 0;
};

}  // namespace rematch::distributed
