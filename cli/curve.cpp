#include "cli/curve.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/output.hpp"
#include "cli/report.hpp"
#include "scheduler/baselines.hpp"
#include "scheduler/io/graph_io.hpp"
#include "scheduler/revolve.hpp"
#include "scheduler/simulator.hpp"

namespace rematch::cli {
namespace {

using nlohmann::json;

std::string fmt(double value, int precision = 10) {
  std::ostringstream text;
  text.precision(precision);
  text << value;
  return text.str();
}

// A fixed strategy as one point of the plane (its peak and makespan).
struct Baseline {
  std::string name;
  double peak = 0, makespan = 0;
};

// Every stage alike (sizes from x_1 on: x_0 is the data): revolve's snapshots are then optimal.
bool homogeneous_chain(const Graph& graph) {
  if (!graph.is_chain()) return false;
  const Branch& b = graph.branches[0];
  auto same = [](const std::vector<double>& v, std::size_t from) {
    return std::all_of(v.begin() + std::ptrdiff_t(from), v.end(), [&](double x) { return x == v[from]; });
  };
  return same(b.fw, 0) && same(b.bw, 0) && same(b.ftmp, 0) && same(b.btmp, 0) && same(b.cw, 1) && same(b.cbw, 1);
}

std::vector<Baseline> baselines(const Graph& graph) {
  std::vector<Baseline> out;
  auto add = [&](const std::string& name, const Schedule& ops) {
    const SimulationResult sim = simulate(graph, ops);
    out.push_back({name, sim.peak, sim.makespan});
  };
  int longest = 0;
  for (const Branch& b : graph.branches) longest = std::max(longest, b.stages());
  for (int n = 1; n <= longest; ++n) add("segments:" + std::to_string(n), segments_schedule(graph, n));
  add("sqrt", sqrt_schedule(graph));
  if (homogeneous_chain(graph))
    for (int snaps = 1; snaps <= std::max(1, longest - 1); ++snaps)
      add("revolve:" + std::to_string(snaps), revolve_schedule_for_snaps(graph, std::uint64_t(snaps)));
  return out;
}

double overhead_pct(const Curve& curve, double makespan) {
  return curve.store_all_makespan > 0 ? 100.0 * (makespan / curve.store_all_makespan - 1) : 0.0;
}

std::string svg_curve_plot(const Curve& curve, const std::vector<Baseline>& fixed, const std::string& title) {
  const double w = 800, h = 450, left = 80, right = 150, top_margin = 40, bottom = 50;
  double x_max = curve.store_all_peak, y_max = curve.store_all_makespan;
  for (const CurvePoint& p : curve.points) y_max = std::max(y_max, p.makespan);
  for (const Baseline& b : fixed) x_max = std::max(x_max, b.peak), y_max = std::max(y_max, b.makespan);
  x_max = std::max(x_max * 1.05, 1e-300);
  y_max = std::max(y_max * 1.05, 1e-300);
  auto px = [&](double m) { return left + (w - left - right) * m / x_max; };
  auto py = [&](double t) { return h - bottom - (h - top_margin - bottom) * t / y_max; };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << w / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" << title << "</text>\n"
      << "<line x1=\"" << left << "\" x2=\"" << w - right << "\" y1=\"" << py(0) << "\" y2=\"" << py(0)
      << "\" stroke=\"black\"/>\n<line x1=\"" << left << "\" x2=\"" << left << "\" y1=\"" << py(0) << "\" y2=\""
      << top_margin << "\" stroke=\"black\"/>\n";
  // Store-all makespan: the floor every schedule stays on or above.
  svg << "<line x1=\"" << left << "\" x2=\"" << w - right << "\" y1=\"" << py(curve.store_all_makespan) << "\" y2=\""
      << py(curve.store_all_makespan) << "\" stroke=\"#999\" stroke-dasharray=\"4,4\"/>\n";
  // A complete curve is a staircase (each makespan holds up to the next point); samples are joined.
  svg << "<polyline fill=\"none\" stroke=\"#08519c\" stroke-width=\"2\" points=\"";
  for (std::size_t i = 0; i < curve.points.size(); ++i) {
    const CurvePoint& p = curve.points[i];
    if (curve.complete && i > 0) svg << px(p.budget) << "," << py(curve.points[i - 1].makespan) << " ";
    svg << px(p.budget) << "," << py(p.makespan) << " ";
  }
  svg << "\"/>\n";
  for (const CurvePoint& p : curve.points)
    svg << "<circle cx=\"" << px(p.budget) << "\" cy=\"" << py(p.makespan) << "\" r=\"2.5\" fill=\""
        << (p.certified ? "#2ca02c" : "#08519c") << "\"/>\n";
  for (const Baseline& b : fixed) {
    const bool revolve = b.name.rfind("revolve", 0) == 0;
    svg << "<rect x=\"" << px(b.peak) - 3 << "\" y=\"" << py(b.makespan) - 3 << "\" width=\"6\" height=\"6\" fill=\""
        << (revolve ? "#9467bd" : b.name == "sqrt" ? "#d62728" : "#ff7f0e") << "\"><title>" << b.name << ": peak "
        << fmt(b.peak) << ", makespan " << fmt(b.makespan) << "</title></rect>\n";
  }
  const double lx = w - right + 15;
  const struct {
    const char* color;
    const char* label;
  } legend[] = {{"#08519c", curve.solver.c_str()}, {"#2ca02c", "certified"}, {"#ff7f0e", "segments:N"},
                {"#d62728", "sqrt"}, {"#9467bd", "revolve (snapshots)"}, {"#999", "store-all makespan"}};
  for (int i = 0; i < 6; ++i)
    svg << "<rect x=\"" << lx << "\" y=\"" << top_margin + 18 * i << "\" width=\"10\" height=\"10\" fill=\""
        << legend[i].color << "\"/><text x=\"" << lx + 15 << "\" y=\"" << top_margin + 18 * i + 10 << "\">"
        << legend[i].label << "</text>\n";
  svg << "<text x=\"" << (left + w - right) / 2 << "\" y=\"" << h - 15
      << "\" text-anchor=\"middle\">memory budget (least " << fmt(curve.least) << ", store-all peak "
      << fmt(curve.store_all_peak) << ")</text>\n"
      << "<text x=\"15\" y=\"" << (h - bottom + top_margin) / 2 << "\" transform=\"rotate(-90 15 "
      << (h - bottom + top_margin) / 2 << ")\" text-anchor=\"middle\">makespan (store-all "
      << fmt(curve.store_all_makespan) << ")</text>\n"
      << "<text x=\"" << left - 5 << "\" y=\"" << py(0) + 4 << "\" text-anchor=\"end\">0</text>\n"
      << "<text x=\"" << left - 5 << "\" y=\"" << py(y_max / 1.05) + 4 << "\" text-anchor=\"end\">"
      << fmt(y_max / 1.05, 4) << "</text>\n"
      << "<text x=\"" << left << "\" y=\"" << py(0) + 16 << "\" text-anchor=\"middle\">0</text>\n"
      << "<text x=\"" << px(x_max / 1.05) << "\" y=\"" << py(0) + 16 << "\" text-anchor=\"middle\">"
      << fmt(x_max / 1.05, 4) << "</text>\n"
      << "</svg>\n";
  return svg.str();
}

}  // namespace

void add_curve_options(CLI::App* cmd, CurveArgs& args) {
  cmd->add_option("graph", args.graph_path, "graph JSON file")->required();
  cmd->add_option("--solver", args.options.solve.solver, "optimal | branch-sequential | persistent | even-split | revolve")
      ->capture_default_str();
  cmd->add_option("--samples", args.options.samples,
                  "budgets solved when the curve cannot be read off one table fill")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  cmd->add_flag("--no-certify", args.no_certify, "skip the exhaustive certification of small graphs");
  cmd->add_option("--plot", args.plot, "write the curve and the fixed strategies as an SVG file");
}

std::string curve_text(const Curve& curve) {
  std::ostringstream text;
  text << "solver     " << curve.solver << "\n"
       << "budgets    least " << fmt(curve.least) << ", store-all peak " << fmt(curve.store_all_peak)
       << " (store-all makespan " << fmt(curve.store_all_makespan) << ")\n"
       << "method     " << curve.method << "\n"
       << (curve.complete ? "points     every budget at which the makespan drops (it holds up to the next)\n"
                          : "points     sampled budgets only\n")
       << "\n";
  char line[160];
  std::snprintf(line, sizeof line, "%16s %16s %11s  %s\n", "budget", "makespan", "overhead %", "certified");
  text << line;
  for (const CurvePoint& p : curve.points) {
    std::snprintf(line, sizeof line, "%16.10g %16.10g %11.3f  %s\n", p.budget, p.makespan, p.overhead_pct,
                  p.certified ? "yes" : "no");
    text << line;
  }
  return text.str();
}

int run_curve(const CurveArgs& args, bool as_json) {
  const Graph graph = read_graph_file(args.graph_path);
  CurveOptions options = args.options;
  if (args.no_certify) options.solve.certify_states = 0;
  const Curve curve = time_memory_curve(graph, options);
  const std::vector<Baseline> fixed = baselines(graph);
  if (!args.plot.empty())
    write_file_atomically(args.plot, svg_curve_plot(curve, fixed, "time-memory curve, " + describe_graph(graph)));
  if (as_json) {
    json points = json::array(), base = json::array();
    for (const CurvePoint& p : curve.points)
      points.push_back({{"budget", p.budget}, {"makespan", p.makespan}, {"overhead_pct", p.overhead_pct},
                        {"certified", p.certified}});
    for (const Baseline& b : fixed)
      base.push_back({{"name", b.name}, {"peak", b.peak}, {"makespan", b.makespan},
                      {"overhead_pct", overhead_pct(curve, b.makespan)}});
    std::cout << json{{"solver", curve.solver},
                      {"least_budget", curve.least},
                      {"store_all_peak", curve.store_all_peak},
                      {"store_all_makespan", curve.store_all_makespan},
                      {"complete", curve.complete},
                      {"table_fills", curve.table_fills},
                      {"solves", curve.solves},
                      {"method", curve.method},
                      {"points", points},
                      {"baselines", base}}
                     .dump()
              << "\n";
  } else {
    std::cout << "graph      " << describe_graph(graph) << "\n" << curve_text(curve);
  }
  return 0;
}

}  // namespace rematch::cli
