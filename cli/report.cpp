#include "cli/report.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace rematch::cli {

namespace {

std::string fmt(double value) {
  std::ostringstream text;
  text.precision(10);
  text << value;
  return text.str();
}

}  // namespace

std::string describe_graph(const Graph& graph) {
  std::ostringstream text;
  if (graph.is_chain()) {
    text << "chain of " << graph.branches[0].stages() << " stages";
  } else {
    text << "join of " << graph.num_branches() << " branches (";
    for (int j = 0; j < graph.num_branches(); ++j) text << (j ? ", " : "") << graph.branches[j].stages();
    text << " stages)";
  }
  return text.str();
}

std::string solution_text(const Graph& graph, const Solution& solution) {
  const SimulationResult replay = simulate(graph, solution.ops, solution.memory_limit);
  const double base = graph.store_all_time();
  const double overhead = base > 0 ? 100.0 * (solution.makespan - base) / base : 0.0;
  std::ostringstream text;
  text.precision(4);
  text << "graph      " << describe_graph(graph) << "\n"
       << "solver     " << solution.solver << (solution.exact ? " (exact)" : " (not proven optimal)") << ": "
       << solution.method << "\n"
       << "budget     " << fmt(solution.memory_limit) << "\n"
       << "makespan   " << fmt(solution.makespan) << "  (store-all " << fmt(base) << ", recompute overhead "
       << std::fixed << overhead << "%)\n"
       << std::defaultfloat << "peak       " << fmt(solution.peak) << "\n"
       << "ops (" << solution.ops.size() << ")   " << to_compact_string(solution.ops, !graph.is_chain()) << "\n"
       << "           Fa/Fc/Fn = F_all/F_ck/F_none, L = loss, B = backward, dx/dxb = drop x/xbar"
       << (graph.is_chain() ? "" : "; branch.stage") << "\n\n"
       << "memory over time\n"
       << ascii_memory_chart(replay, solution.memory_limit);
  return text.str();
}

std::string ascii_memory_chart(const SimulationResult& replay, double budget, int width, int height) {
  const double total = std::max(replay.makespan, 1e-300);
  const double top = std::max({budget, replay.peak, 1e-300});
  std::vector<double> column(width, 0.0);
  for (const TraceStep& s : replay.trace) {
    const int first = std::min(width - 1, static_cast<int>(s.start / total * width));
    const int last = std::min(width - 1, std::max(first, static_cast<int>(std::ceil(s.end / total * width)) - 1));
    for (int c = first; c <= last; ++c) column[c] = std::max(column[c], s.peak);
  }
  std::ostringstream text;
  const int budget_row = static_cast<int>(std::lround(budget / top * height));
  for (int row = height; row >= 1; --row) {
    const double level = top * row / height;
    text.width(10);
    text << (row == height || row == budget_row ? fmt(level) : std::string()) << " |";
    for (int c = 0; c < width; ++c) {
      const bool filled = column[c] >= level - top / (2.0 * height);
      text << (filled ? '#' : (row == budget_row ? '-' : ' '));
    }
    text << (row == budget_row ? "  budget" : "") << "\n";
  }
  text << std::string(11, ' ') << '+' << std::string(width, '-') << "\n"
       << std::string(12, ' ') << "0" << std::string(std::max(1, width - 1 - int(fmt(total).size())), ' ')
       << fmt(total) << "  time\n";
  return text.str();
}

std::string svg_memory_plot(const SimulationResult& replay, double budget, const std::string& title) {
  const double w = 800, h = 400, left = 70, right = 20, top_margin = 40, bottom = 50;
  const double total = std::max(replay.makespan, 1e-300);
  const double top = std::max({budget, replay.peak, 1e-300}) * 1.05;
  auto px = [&](double t) { return left + (w - left - right) * t / total; };
  auto py = [&](double m) { return h - bottom - (h - top_margin - bottom) * m / top; };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << w / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" << title << "</text>\n";
  // Peak while each op runs, as bars; zero-time ops (drops) have no width.
  for (const TraceStep& s : replay.trace) {
    if (s.end <= s.start) continue;
    svg << "<rect x=\"" << px(s.start) << "\" y=\"" << py(s.peak) << "\" width=\"" << px(s.end) - px(s.start)
        << "\" height=\"" << py(0) - py(s.peak) << "\" fill=\"#9ecae1\" stroke=\"#3182bd\" stroke-width=\"0.3\"/>\n";
  }
  svg << "<polyline fill=\"none\" stroke=\"#08519c\" stroke-width=\"1.5\" points=\"";
  for (const TraceStep& s : replay.trace) svg << px(s.end) << "," << py(s.after) << " ";
  svg << "\"/>\n"
      << "<line x1=\"" << left << "\" x2=\"" << w - right << "\" y1=\"" << py(budget) << "\" y2=\"" << py(budget)
      << "\" stroke=\"#d62728\" stroke-dasharray=\"6,4\"/>\n"
      << "<text x=\"" << w - right << "\" y=\"" << py(budget) - 4 << "\" text-anchor=\"end\" fill=\"#d62728\">budget "
      << fmt(budget) << "</text>\n"
      << "<line x1=\"" << left << "\" x2=\"" << w - right << "\" y1=\"" << py(0) << "\" y2=\"" << py(0)
      << "\" stroke=\"black\"/>\n"
      << "<line x1=\"" << left << "\" x2=\"" << left << "\" y1=\"" << py(0) << "\" y2=\"" << top_margin
      << "\" stroke=\"black\"/>\n"
      << "<text x=\"" << (left + w - right) / 2 << "\" y=\"" << h - 15 << "\" text-anchor=\"middle\">time (makespan "
      << fmt(replay.makespan) << ")</text>\n"
      << "<text x=\"15\" y=\"" << (h - bottom + top_margin) / 2 << "\" transform=\"rotate(-90 15 "
      << (h - bottom + top_margin) / 2 << ")\" text-anchor=\"middle\">memory (peak " << fmt(replay.peak)
      << ")</text>\n"
      << "<text x=\"" << left - 5 << "\" y=\"" << py(0) + 4 << "\" text-anchor=\"end\">0</text>\n"
      << "<text x=\"" << left - 5 << "\" y=\"" << py(top / 1.05) + 4 << "\" text-anchor=\"end\">" << fmt(top / 1.05)
      << "</text>\n"
      << "</svg>\n";
  return svg.str();
}

std::string solver_choices() {
  std::string text;
  for (const SolverEntry& entry : solvers()) text += (text.empty() ? "" : " | ") + std::string(entry.name);
  return text;
}

std::string solver_list() {
  std::string text = "Solvers:\n";
  for (const SolverEntry& entry : solvers()) {
    std::string name(entry.name);
    name.resize(std::max<std::size_t>(name.size() + 2, 20), ' ');
    text += "  " + name + std::string(entry.description) + "\n";
  }
  return text;
}

}  // namespace rematch::cli
