#include "distributed/ordered_sum.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

namespace rematch::distributed {
namespace {

constexpr std::size_t kSlotFloats = std::size_t(1) << 19;  // 2 MiB over all processes
constexpr std::size_t kMinBucketFloats = 4096;

}  // namespace

OrderedGradientSum::OrderedGradientSum(const Communicator& communicator,
                                       std::chrono::duration<double> timeout, int slots)
    : communicator_(communicator), timeout_(timeout), slots_(std::size_t(std::max(slots, 1))) {}

std::size_t OrderedGradientSum::buffer_floats(std::size_t gradient_floats) const {
  const std::size_t n = std::size_t(processes());
  const std::size_t bucket =
      std::min(gradient_floats, std::max(kMinBucketFloats, kSlotFloats / n));
  return slots_.size() * n * std::max<std::size_t>(bucket, 1);
}

void OrderedGradientSum::attach(std::span<float> buffer) {
  buffer_ = buffer;
  bucket_ = buffer.size() / (slots_.size() * std::size_t(processes()));
}

std::span<float> OrderedGradientSum::slot_memory(int slot) {
  const std::size_t per_slot = bucket_ * std::size_t(processes());
  return buffer_.subspan(std::size_t(slot) * per_slot, per_slot);
}

void OrderedGradientSum::stage_final(std::span<const std::span<float>> tensors) {
  for (const std::span<float> tensor : tensors) {
    std::size_t done = 0;
    while (done < tensor.size()) {
      Slot& slot = slots_[std::size_t(filling_)];
      if (in_flight(slot)) {
        wait(slot.request);
        complete(slot);
      }
      const std::size_t take = std::min(tensor.size() - done, bucket_ - slot.used);
      slot.pieces.push_back({tensor.data() + done, take});
      slot.used += take;
      done += take;
      if (slot.used == bucket_) launch();
    }
  }
}

void OrderedGradientSum::launch() {
  Slot& slot = slots_[std::size_t(filling_)];
  // The gathered layout is process after process, `used` floats each: this process's floats go
  // to its own place, and MPI_IN_PLACE gathers the rest around them.
  float* mine = slot_memory(filling_).data() + std::size_t(communicator_.rank()) * slot.used;
  for (const Piece& p : slot.pieces) {
    std::memcpy(mine, p.target, p.count * sizeof(float));
    mine += p.count;
  }
  MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, slot_memory(filling_).data(),
                 static_cast<int>(slot.used), MPI_FLOAT, communicator_.comm(), &slot.request);
  filling_ = (filling_ + 1) % static_cast<int>(slots_.size());
}

void OrderedGradientSum::progress() {
  for (Slot& slot : slots_) {
    if (!in_flight(slot)) continue;
    int done = 0;
    MPI_Test(&slot.request, &done, MPI_STATUS_IGNORE);
    if (done) complete(slot);
  }
}

void OrderedGradientSum::wait(MPI_Request& request) {
  const auto start = std::chrono::steady_clock::now();
  int done = 0;
  while (true) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) break;
    if (std::chrono::steady_clock::now() - start > timeout_) {
      throw CommunicationTimeout("no gradients from the other processes within " +
                                 std::to_string(int(timeout_.count())) +
                                 " s (a process died or hangs)");
    }
    // With more processes than cores, a spinning wait would take the core from the process
    // it waits for.
    std::this_thread::yield();
  }
  waited_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void OrderedGradientSum::complete(Slot& slot) {
  const int slot_index = static_cast<int>(&slot - slots_.data());
  const float* gathered = slot_memory(slot_index).data();
  const std::size_t n = std::size_t(processes());
  const float divisor = float(n);
  std::size_t offset = 0;
  for (const Piece& p : slot.pieces) {
    for (std::size_t i = 0; i < p.count; ++i) {
      float sum = gathered[offset + i];
      for (std::size_t r = 1; r < n; ++r) sum += gathered[r * slot.used + offset + i];
      p.target[i] = sum / divisor;
    }
    offset += p.count;
  }
  slot.pieces.clear();
  slot.used = 0;
  slot.request = MPI_REQUEST_NULL;
}

double OrderedGradientSum::finish() {
  if (slots_[std::size_t(filling_)].used > 0) launch();
  for (Slot& slot : slots_) {
    if (!in_flight(slot)) continue;
    wait(slot.request);
    complete(slot);
  }
  filling_ = 0;
  return std::exchange(waited_, 0.0);
}

float OrderedGradientSum::mean(float local) {
  // Every stage of the step has been handed over: the last bucket goes out before this wait.
  if (slots_[std::size_t(filling_)].used > 0) launch();
  std::vector<float> all(static_cast<std::size_t>(processes()));
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_Iallgather(&local, 1, MPI_FLOAT, all.data(), 1, MPI_FLOAT, communicator_.comm(), &request);
  wait(request);
  float sum = all[0];
  for (std::size_t r = 1; r < all.size(); ++r) sum += all[r];
  return sum / float(all.size());
}

}  // namespace rematch::distributed
