// rematch: optimal recompute schedules for backpropagation under a memory budget (docs/model.md#files).
// Exit statuses: cli/exit_status.hpp (docs/cli.md).
#include <CLI/CLI.hpp>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>

#include "cli/curve.hpp"
#include "cli/exit_status.hpp"
#include "cli/memory_size.hpp"
#include "cli/output.hpp"
#include "cli/report.hpp"
#include "scheduler/io/graph_io.hpp"
#include "scheduler/io/schedule_io.hpp"
#include "scheduler/revolve.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#ifdef REMATCH_HAS_RUNTIME
#include "cli/apply.hpp"
#include "cli/train.hpp"
#endif

namespace {

using namespace rematch;
using nlohmann::json;
using cli::parse_memory_size;

using namespace cli;

// Actions revolve may print: its output grows with --steps (about 4 actions a step, 25-45 bytes
// each), so this bounds it to about 2 GB and a few seconds.
constexpr std::int64_t max_revolve_steps = 10'000'000;

struct Common {
  std::string format = "text";
  bool json() const { return format == "json"; }
};

// Errors are one line whatever the input put in them (file names, option values, op names).
std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

int fail(const Common& common, int status, const std::string& message, const json& extra = json::object()) {
  if (common.json()) {
    json out = extra;
    out["error"] = one_line(message);
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    std::cerr << "rematch: " << one_line(message) << "\n";
  }
  return status;
}

// --format is needed to report usage errors, which CLI11 raises before it sets the option.
std::string requested_format(int argc, char** argv) {
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--format=json" || (arg == "--format" && a + 1 < argc && std::string(argv[a + 1]) == "json"))
      return "json";
  }
  return "text";
}

int run_solve(const Common& common, const std::string& graph_path, const std::string& memory, const SolveOptions& options,
              const std::string& plot) {
  const Graph graph = read_graph_file(graph_path);
  const double budget = parse_memory_size(memory, "--memory");
  try {
    const Solution solution = solve(graph, budget, options);
    if (!plot.empty())
      write_file_atomically(plot, cli::svg_memory_plot(simulate(graph, solution.ops, budget), budget,
                                            solution.solver + " schedule, " + cli::describe_graph(graph)));
    if (common.json()) {
      std::cout << solve_result_json(graph, solution) << "\n";
    } else {
      std::cout << cli::solution_text(graph, solution);
    }
    return 0;
  } catch (const InfeasibleBudget& e) {
    return fail(common, exit_infeasible, e.what(), {{"min_memory", e.min_memory}, {"memory_limit", budget}});
  }
}

int run_simulate(const Common& common, const std::string& graph_path, const std::string& schedule_path,
                 const std::string& memory) {
  const Graph graph = read_graph_file(graph_path);
  const Schedule schedule = read_schedule_file(schedule_path);
  const double budget = memory.empty() ? std::numeric_limits<double>::infinity() : parse_memory_size(memory, "--memory");
  const SimulationResult sim = simulate(graph, schedule, budget);
  if (!sim.valid) {
    const std::string message = "invalid schedule: op " + std::to_string(sim.bad_op) +
                                (sim.bad_op < schedule.size() ? " (" + to_string(schedule[sim.bad_op]) + ")" : "") +
                                ": " + sim.reason;
    return fail(common, exit_invalid_schedule, message, {{"index", sim.bad_op}, {"reason", sim.reason}});
  }
  if (common.json()) {
    std::cout << json{{"makespan", sim.makespan}, {"peak_memory", sim.peak}}.dump() << "\n";
  } else {
    std::cout << "graph      " << cli::describe_graph(graph) << "\n"
              << "ops        " << schedule.size() << "\n"
              << "makespan   " << sim.makespan << "\n"
              << "peak       " << sim.peak << "\n\nmemory over time\n"
              << cli::ascii_memory_chart(sim, memory.empty() ? sim.peak : budget);
  }
  return 0;
}

std::string action_text(const RevolveStep& step) {
  std::string text = to_string(step.action);
  switch (step.action) {
    case RevolveAction::advance: return text + " to " + std::to_string(step.capo);
    case RevolveAction::takeshot:
    case RevolveAction::restore:
      return text + " state " + std::to_string(step.capo) + " slot " + std::to_string(step.check);
    case RevolveAction::firsturn:
    case RevolveAction::youturn: return text + " step " + std::to_string(step.capo);
    case RevolveAction::terminate: return text;
  }
  return text;
}

// Streams the actions (JSON too), so memory stays O(snaps) whatever --steps; stops at the first
// failed write (a full disk, a closed pipe) rather than computing the rest.
int run_revolve(const Common& common, std::int64_t signed_steps, std::int64_t signed_snaps) {
  if (signed_steps < 1) throw InputError("--steps must be a positive number of steps (got " + std::to_string(signed_steps) + ")");
  if (signed_steps > max_revolve_steps)
    throw InputError("--steps " + std::to_string(signed_steps) + " is above the limit of " +
                     std::to_string(max_revolve_steps) + " (the output would take over 2 GB)");
  if (signed_snaps < 0) throw InputError("--snaps must be a non-negative number of snapshots (got " + std::to_string(signed_snaps) + ")");
  const auto steps = static_cast<std::uint64_t>(signed_steps), snaps = static_cast<std::uint64_t>(signed_snaps);
  const std::uint64_t advances = revolve_advances(steps, snaps);
  Revolve stream(steps, snaps);
  if (common.json())
    std::cout << "{\"steps\":" << steps << ",\"snaps\":" << snaps << ",\"advances\":" << advances << ",\"actions\":[";
  else
    std::cout << "binomial checkpointing: " << steps << " steps, " << snaps << " snapshots, " << advances
              << " forward advances\n";
  bool first = true;
  while (std::cout) {
    const auto step = stream.next();
    if (!step) break;
    if (common.json())
      std::cout << (first ? "{\"action\":\"" : ",{\"action\":\"") << to_string(step->action) << "\",\"capo\":" << step->capo
                << ",\"check\":" << step->check << "}";
    else
      std::cout << action_text(*step) << "\n";
    first = false;
  }
  if (common.json()) std::cout << "]}\n";
  return 0;
}

int run_info(const Common& common, const std::string& graph_path) {
  const Graph graph = read_graph_file(graph_path);
  const SimulationResult store_all = simulate(graph, solve(graph, std::numeric_limits<double>::max(),
                                                           {.solver = "store-all"}).ops);
  const double least = min_feasible_memory(graph);
  if (common.json()) {
    std::cout << json{{"branches", graph.num_branches()}, {"store_all_makespan", store_all.makespan},
                      {"store_all_peak", store_all.peak}, {"min_memory", least}}.dump() << "\n";
  } else {
    std::cout << "graph             " << cli::describe_graph(graph) << "\n"
              << "store-all         makespan " << store_all.makespan << ", peak " << store_all.peak << "\n"
              << "least budget      " << least << "\n";
  }
  return 0;
}


// The subcommand named on the command line when it is none of `app`'s (CLI11 would only say that
// one is required).
std::string unknown_subcommand(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return {};
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    if (sub->check_name(argv[1])) return {};
  return argv[1];
}

std::string subcommand_names(const CLI::App& app) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names += (names.empty() ? "" : ", ") + sub->get_name();
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  install_out_of_memory_terminate_handler();
  CLI::App app{"rematch: optimal recompute (checkpointing) schedules under a memory budget"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("rematch ") + REMATCH_VERSION);
  Common common;
  auto add_format = [&](CLI::App* sub) {
    sub->add_option("--format", common.format, "output format")->check(CLI::IsMember({"text", "json"}));
  };

  std::string graph_path, schedule_path, memory, plot;
  SolveOptions options;
  bool no_certify = false;
  auto* solve_cmd = app.add_subcommand("solve", "print the optimal (or a baseline) schedule for a budget");
  solve_cmd->add_option("graph", graph_path, "graph JSON file (docs/model.md#files)")->required();
  solve_cmd->add_option("--memory,-m", memory, "memory budget, in the graph's units (suffixes K, M, G, KiB, MiB, GiB)")
      ->required();
  solve_cmd->add_option("--solver", options.solver, cli::solver_choices());
  solve_cmd->footer(cli::solver_list());
  solve_cmd->add_option("--slots", options.slots, "memory slots of the dynamic program (default: automatic)")
      ->check(CLI::Range(1, 1 << 30));
  solve_cmd->add_flag("--no-certify", no_certify, "skip the exhaustive certification of small graphs");
  solve_cmd->add_option("--plot", plot, "write memory against time as an SVG file");
  add_format(solve_cmd);

  auto* simulate_cmd = app.add_subcommand("simulate", "replay a schedule: makespan and peak, or the first invalid op");
  simulate_cmd->add_option("graph", graph_path, "graph JSON file")->required();
  simulate_cmd->add_option("schedule", schedule_path, "schedule JSON file (the \"ops\" of solve --format json)")
      ->required();
  simulate_cmd->add_option("--memory,-m", memory, "also check the peak against this budget");
  add_format(simulate_cmd);

  std::int64_t steps = 0, snaps = 0;
  auto* revolve_cmd = app.add_subcommand("revolve", "binomial checkpointing action stream (Griewank & Walther)");
  revolve_cmd->add_option("--steps,-l", steps, "number of steps L")->required();
  revolve_cmd->add_option("--snaps,-c", snaps, "number of snapshots C")->required();
  add_format(revolve_cmd);

  auto* info_cmd = app.add_subcommand("info", "store-all makespan and peak, and the least feasible budget");
  info_cmd->add_option("graph", graph_path, "graph JSON file")->required();
  add_format(info_cmd);

  cli::CurveArgs curve_args;
  auto* curve_cmd = app.add_subcommand("curve", "the least makespan at every budget from the least feasible to store-all's peak");
  cli::add_curve_options(curve_cmd, curve_args);
  add_format(curve_cmd);

#ifdef REMATCH_HAS_RUNTIME
  cli::TrainArgs train_args;
  auto* train_cmd = app.add_subcommand("train", "train a zoo model on Fashion-MNIST within a memory budget");
  cli::add_train_options(train_cmd, train_args);
  models::ModelConfig profile_model;
  std::string profile_out, profile_activations = "fp32";
  auto* profile_cmd = app.add_subcommand("profile", "measure a zoo model on this host and write its graph JSON");
  cli::add_model_options(profile_cmd, profile_model);
  profile_cmd->add_option("--output,-o", profile_out, "graph JSON file to write")->required();
  profile_cmd->add_option("--activations", profile_activations,
                          "fp32 | bf16: precision of the activations kept between ops (sets the sizes)")
      ->capture_default_str();
  cli::ApplyArgs embed_args, evaluate_args;
  cli::add_embed_options(app.add_subcommand("embed", "a trained encoder applied to an .npy file, embeddings written as .npy"),
                         embed_args);
  cli::add_evaluate_options(
      app.add_subcommand("evaluate", "a trained model scored on held-out .npy data (ROC AUC and accuracy, or top-1)"),
      evaluate_args);
  cli::SynthArgs synth_args;
  cli::add_synth_options(
      app.add_subcommand("synth-sequences", "synthetic labelled sequences of varying length as ragged .npy files"),
      synth_args);
#endif

  if (const std::string name = unknown_subcommand(app, argc, argv); !name.empty())
    return fail(common, exit_bad_input, "unknown subcommand '" + name + "' (known: " + subcommand_names(app) + "; see rematch --help)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    common.format = requested_format(argc, argv);
    return fail(common, exit_bad_input, std::string(e.what()) + " (see rematch --help)");
  }
  if (no_certify) options.certify_states = 0;
  int status = exit_ok;
  try {
    require_stdout();
#ifdef REMATCH_HAS_RUNTIME
    if (*train_cmd) status = cli::run_train(train_args);
    else if (*profile_cmd) status = cli::run_profile(profile_model, profile_activations, profile_out);
    else if (app.got_subcommand("embed")) status = cli::run_embed(embed_args);
    else if (app.got_subcommand("evaluate")) status = cli::run_evaluate(evaluate_args);
    else if (app.got_subcommand("synth-sequences")) status = cli::run_synth_sequences(synth_args);
    else
#endif
    if (*solve_cmd) status = run_solve(common, graph_path, memory, options, plot);
    else if (*simulate_cmd) status = run_simulate(common, graph_path, schedule_path, memory);
    else if (*revolve_cmd) status = run_revolve(common, steps, snaps);
    else if (*curve_cmd) status = cli::run_curve(curve_args, common.json());
    else status = run_info(common, graph_path);
  } catch (const InfeasibleBudget& e) {
    status = fail(common, exit_infeasible, e.what(), {{"min_memory", e.min_memory}});
  } catch (const InputError& e) {
    status = fail(common, exit_bad_input, e.what());
  } catch (const std::bad_alloc&) {
    // Only a slot count the user forced can be blamed; the automatic one fits the table budget.
    status = fail(common, exit_out_of_memory,
                  std::string(out_of_memory_message) + (*solve_cmd && options.slots > 0 ? "; or use fewer --slots" : ""));
  } catch (const std::length_error&) {  // a size beyond what any allocation could hold
    status = fail(common, exit_out_of_memory, out_of_memory_message);
  } catch (const std::exception& e) {
    status = fail(common, exit_bad_input, std::string("internal error: ") + e.what());
  }
  // Everything printed is only delivered once standard output is flushed and closed. A text error
  // is already on stderr (one line); a JSON one went to the standard output that failed.
  if (const std::string problem = close_stdout(); !problem.empty() && (status == exit_ok || common.json())) {
    std::cerr << "rematch: cannot write standard output: " << problem << "\n";
    if (status == exit_ok) status = exit_bad_input;
  }
  return status;
}
