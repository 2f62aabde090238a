// `rematch curve GRAPH.json`: the time-memory curve (scheduler/curve.hpp) as a table, JSON, and an
// SVG plot with the fixed strategies (segments:N, sqrt, revolve on homogeneous chains) on the
// same axes.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "scheduler/curve.hpp"

namespace rematch::cli {

struct CurveArgs {
  std::string graph_path;
  std::string plot;  // SVG file, written atomically
  bool no_certify = false;
  CurveOptions options;
};

// Registers the graph argument and --solver, --samples, --no-certify, --plot on `cmd`.
void add_curve_options(CLI::App* cmd, CurveArgs& args);

// Prints the curve (JSON when `json`); throws InputError for bad input (exit status 3).
int run_curve(const CurveArgs& args, bool json);

// The curve as a text table (budget, makespan, overhead %, certified) under a header.
std::string curve_text(const Curve& curve);

}  // namespace rematch::cli
