// `rematch train` and `rematch profile`: the runtime's faces on the command line.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "cli/data_options.hpp"
#include "cli/train_sequences.hpp"
#include "models/training.hpp"

namespace rematch::cli {

struct TrainArgs {
  models::TrainConfig config;
  std::string memory;  // budget as written ("2GiB", "60%", "auto")
  std::string max_overhead;  // "10%": the least budget on the curve within this overhead
  bool plan_only = false;    // profile and plan, print the plan (or the curve), do not train
  bool show_curve = false;
  std::string optimizer = "adam";
  std::string activations = "fp32";  // fp32 | bf16: what steps keep between ops
  float lr = 0;  // 0: the optimizer's default (Adam 1e-3, SGD 0.05)
  int steps = 10;
  std::string checkpoint;  // weights written here (atomically) at the end and every checkpoint_every steps
  int checkpoint_every = 0;
  std::string report;      // JSON summary
  bool no_eval = false;
  int eval_every = 0;  // > 0: the held-out loss before training and every N steps (eval_losses)
  DataArgs data, test;  // .npy files (cli/data_options.hpp)
  double comm_timeout = 300;  // seconds a process waits for the others' gradients (under mpirun)
  SequenceArgs sequences;  // ragged sequences (cli/train_sequences.hpp)
};

// Registers the model options (--model --depth --width --batch ...) on `cmd`.
void add_model_options(CLI::App* cmd, models::ModelConfig& model);
void add_train_options(CLI::App* cmd, TrainArgs& args);

// Exit status as for solve: 0, 2 (budget below the least feasible one), 3 (bad input),
// 4 (the process ran out of memory: a limit set from outside is below what the plan needs).
// Under mpirun, data-parallel over the processes (docs/distributed.md): an error any process
// finds while setting up ends every process with the same status, printed once by rank 0; a
// failure later (a process dying, running out of memory) aborts the whole job.
int run_train(TrainArgs args);
// Profiles a zoo model on the host it runs on and writes its graph JSON (bytes, seconds).
int run_profile(const models::ModelConfig& model, const std::string& activations,
                const std::string& out_path);

}  // namespace rematch::cli
