// `rematch embed` and `rematch evaluate`: a trained model (a model file or zoo name and its .npz
// weights) applied to .npy data within an activation budget. docs/data.md.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "cli/data_options.hpp"
#include "models/evaluation.hpp"
#include "models/zoo.hpp"

namespace rematch::cli {

struct ApplyArgs {
  models::ModelConfig model;  // model.model: a model file or zoo name; model.batch bounds the batch
  std::string weights;
  std::string memory = "256MiB";  // activation budget of the forward passes
  DataArgs data;
  std::string output;  // embed: E.npy
  int branch = 0;      // embed: whose encoder
};

void add_embed_options(CLI::App* cmd, ApplyArgs& args);
void add_evaluate_options(CLI::App* cmd, ApplyArgs& args);
// Exit status: 0, 2 (budget below one sample's forward pass, named), 3 (bad input), 4 (out of memory).
int run_embed(const ApplyArgs& args);
int run_evaluate(const ApplyArgs& args);

// "N pairs: ROC AUC a, verification accuracy b at distance t" or "N samples: top-1 accuracy a".
std::string evaluation_line(const models::ModelDescription& model, const models::Evaluation& e);

}  // namespace rematch::cli
