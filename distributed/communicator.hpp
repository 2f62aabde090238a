// The processes of a data-parallel run. A process started by mpirun (recognised from the
// variables the launcher sets) joins the MPI job; any other process is a run of one that never
// calls MPI, so a plain `rematch train` needs no MPI at run time.
#pragma once

#include <mpi.h>

#include <string>

namespace rematch::distributed {

// An error found by one process, as all of them report it: the documented exit status and the
// one-line message (empty when status is 0).
struct Outcome {
  int status = 0;
  std::string message;
};

class Communicator {
 public:
  Communicator();
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }
  // Whether MPI is in use (started by mpirun, even with one process).
  bool joined() const { return joined_; }
  MPI_Comm comm() const { return MPI_COMM_WORLD; }

  // Collective: every process passes its own outcome; all return the same one, that of the
  // lowest rank that failed ("rank R: " prefixed when there are several processes), or status 0.
  Outcome agree(const Outcome& local) const;
  // Ends every process of the job with `status` (after this one printed why).
  [[noreturn]] void abort(int status) const;

 private:
  bool joined_ = false;
  int rank_ = 0, size_ = 1;
};

// True when the environment says mpirun (Open MPI, or a PMI/PMIx launcher) started us.
bool launched_by_mpirun();

}  // namespace rematch::distributed
