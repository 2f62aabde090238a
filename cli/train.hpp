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
  std::string memory;  // budget as written ("2GiB")
  std::string optimizer = "adam";
  float lr = 0;  // 0: the optimizer's default (Adam 1e-3, SGD 0.05)
  int steps = 10;
  std::string checkpoint;  // weights written here (atomically) at the end and every checkpoint_every steps
  int checkpoint_every = 0;
  std::string report;      // JSON summary
  bool no_eval = false;
  DataArgs data, test;  // .npy files (cli/data_options.hpp)
  SequenceArgs sequences;  // ragged sequences (cli/train_sequences.hpp)
};

// Registers the model options (--model --depth --width --batch ...) on `cmd`.
void add_model_options(CLI::App* cmd, models::ModelConfig& model);
void add_train_options(CLI::App* cmd, TrainArgs& args);

// Exit status as for solve: 0, 2 (budget below the least feasible one), 3 (bad input),
// 4 (the process ran out of memory: a limit set from outside is below what the plan needs).
int run_train(TrainArgs args);
// Profiles a zoo model on this machine and writes its graph JSON (bytes, seconds).
int run_profile(const models::ModelConfig& model, const std::string& out_path);

}  // namespace rematch::cli
