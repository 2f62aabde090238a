// `rematch train` on ragged sequence data (--offsets): length buckets, a schedule per bucket
// under one budget, each epoch's time and peak predicted from representative buckets before it
// runs and measured after it (docs/sequences.md).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "models/data/synthetic_sequences.hpp"
#include "models/training.hpp"

namespace rematch::cli {

struct TrainArgs;

struct SequenceArgs {
  std::vector<std::string> offsets;  // one per values file of --data / --pairs / --triplets
  int buckets = 8;                   // quantile buckets of the sequence lengths
  std::string bucket_edges;          // or explicit upper edges "64,256,1024"
  int epochs = 1;
};

void add_sequence_options(CLI::App* cmd, SequenceArgs& args);
// Trains as `args` say (`config`: its model, optimizer and profile settings resolved); throws
// what run_train maps to exit statuses.
int train_sequences(const TrainArgs& args, const models::TrainConfig& config);

// `rematch synth-sequences`: the synthetic generator's data as ragged .npy files
// (DIR/values.npy, DIR/offsets.npy, DIR/labels.npy). Exit 0, or 3 for bad options or an
// unwritable directory.
struct SynthArgs {
  data::SyntheticSequenceOptions options;
  std::string dir;
};
void add_synth_options(CLI::App* cmd, SynthArgs& args);
int run_synth_sequences(const SynthArgs& args);

}  // namespace rematch::cli
