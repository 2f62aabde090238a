#include "distributed/communicator.hpp"

#include <cstdlib>
#include <vector>

namespace rematch::distributed {

bool launched_by_mpirun() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

Communicator::Communicator() {
  if (!launched_by_mpirun()) return;
  int provided = 0;
  // Only the main thread calls MPI; OpenMP threads run the kernels.
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  joined_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

Communicator::~Communicator() {
  if (joined_) MPI_Finalize();
}

Outcome Communicator::agree(const Outcome& local) const {
  if (!joined_) return local;
  std::vector<int> status(std::size_t(size_), 0);
  MPI_Allgather(&local.status, 1, MPI_INT, status.data(), 1, MPI_INT, MPI_COMM_WORLD);
  int first = -1;
  for (int r = 0; r < size_ && first < 0; ++r) {
    if (status[std::size_t(r)] != 0) first = r;
  }
  if (first < 0) return {};
  int length = rank_ == first ? static_cast<int>(local.message.size()) : 0;
  MPI_Bcast(&length, 1, MPI_INT, first, MPI_COMM_WORLD);
  std::string message = rank_ == first ? local.message : std::string(std::size_t(length), '\0');
  MPI_Bcast(message.data(), length, MPI_CHAR, first, MPI_COMM_WORLD);
  if (size_ > 1) message = "rank " + std::to_string(first) + ": " + message;
  return {status[std::size_t(first)], message};
}

void Communicator::abort(int status) const {
  if (joined_) MPI_Abort(MPI_COMM_WORLD, status);
  std::exit(status);
}

}  // namespace rematch::distributed
