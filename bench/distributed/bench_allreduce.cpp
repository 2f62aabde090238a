// The local MPI's collective costs, for the scaling model of docs/distributed.md: for message
// sizes from 4 B to 64 MiB per process, the time of MPI_Allreduce (sum of floats, the fastest
// order-free reduction) and of the rank-ordered gradient sum the trainer uses
// (OrderedGradientSum: bucketed Iallgather, then a sum in rank order), median over repeats.
//
//   mpirun -np 2 build/bench/distributed/bench_allreduce [out.json]
//
// Prints the CPU, ISA, threads and processes; rank 0 writes the JSON.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/host.hpp"
#include "distributed/communicator.hpp"
#include "distributed/ordered_sum.hpp"
#include "kernels/tensor.hpp"

namespace {

using rematch::distributed::Communicator;
using rematch::distributed::OrderedGradientSum;
using Clock = std::chrono::steady_clock;

template <class F>
double median_seconds(const Communicator& comm, int repeats, F&& body) {
  std::vector<double> t;
  for (int r = 0; r < repeats + 1; ++r) {
    MPI_Barrier(comm.comm());
    const auto start = Clock::now();
    body();
    double s = std::chrono::duration<double>(Clock::now() - start).count();
    // The collective ends when its slowest process does.
    MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_MAX, comm.comm());
    if (r > 0) t.push_back(s);  // the first run warms up connections and pages
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const Communicator comm;
  const std::string out_path = argc > 1 ? argv[1] : "";
  if (comm.root()) {
    std::printf("cpu %s, ISA %s, %d OpenMP threads per process, %d processes\n", rematch::bench::cpu_model().c_str(),
                rematch::bench::vector_isa().c_str(), omp_get_max_threads(), comm.size());
    std::printf("%12s %14s %14s %14s %14s\n", "bytes", "allreduce_s", "allreduce_GB/s",
                "ordered_sum_s", "ordered_GB/s");
  }
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t bytes = 4; bytes <= (std::size_t(64) << 20); bytes *= 4) {
    const std::size_t n = bytes / sizeof(float);
    const int repeats = bytes <= (std::size_t(1) << 20) ? 50 : 7;
    std::vector<float> data(n, 1.0f + float(comm.rank())), sum(n);
    const double allreduce = median_seconds(comm, repeats, [&] {
      MPI_Allreduce(data.data(), sum.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm.comm());
    });
    OrderedGradientSum exchange(comm, std::chrono::seconds(60));
    rematch::kernels::AlignedBuffer<float> buffer(exchange.buffer_floats(n));
    exchange.attach(buffer.span());
    const std::span<float> tensors[] = {std::span<float>(data)};
    const double ordered = median_seconds(comm, repeats, [&] {
      exchange.stage_final(tensors);
      exchange.finish();
    });
    rows.push_back({{"bytes", bytes}, {"allreduce_seconds", allreduce}, {"ordered_sum_seconds", ordered}});
    if (comm.root()) {
      std::printf("%12zu %14.3e %14.3f %14.3e %14.3f\n", bytes, allreduce, double(bytes) / allreduce * 1e-9,
                  ordered, double(bytes) / ordered * 1e-9);
    }
  }
  if (comm.root() && !out_path.empty()) {
    std::ofstream out(out_path);
    out << nlohmann::json{{"cpu", rematch::bench::cpu_model()},
                          {"isa", rematch::bench::vector_isa()},
                          {"threads_per_process", omp_get_max_threads()},
                          {"processes", comm.size()},
                          {"sizes", rows}}
               .dump(2)
        << "\n";
    if (!out) {
      std::cerr << "bench_allreduce: cannot write " << out_path << "\n";
      return 3;
    }
  }
  return 0;
}
