// rematch._core: the solver face of the Python module (graphs, solve, simulate, least budget,
// revolve). Inputs arrive as the JSON texts the command line reads, so that the C++ readers give
// Python the same key-and-index messages; results leave as the JSON the command line prints.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "scheduler/cancel.hpp"
#include "scheduler/io/graph_io.hpp"
#include "scheduler/io/schedule_io.hpp"
#include "scheduler/revolve.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"

namespace py = pybind11;
using namespace rematch;

namespace {

// The Python exception types, created once at import (module lifetime).
PyObject* infeasible_budget_type = nullptr;
PyObject* invalid_schedule_type = nullptr;

// Raises `type(message)` with the given attributes set on the instance.
void raise_with(PyObject* type, const std::string& message, const py::dict& attributes) {
  py::object instance = py::reinterpret_borrow<py::object>(type)(message);
  for (auto item : attributes) py::setattr(instance, item.first, item.second);
  PyErr_SetObject(type, instance.ptr());
}

// Runs `work(cancel flag)` on its own thread with the GIL released; Ctrl-C (any pending Python
// signal whose handler raises) sets the flag, waits for the solver to stop at its next table row,
// and raises the handler's exception (KeyboardInterrupt).
template <class Work>
auto interruptible(Work work) {
  std::atomic<bool> cancel{false};
  auto result = std::async(std::launch::async, [&work, &cancel] { return work(&cancel); });
  for (;;) {
    std::future_status status;
    {
      py::gil_scoped_release released;
      status = result.wait_for(std::chrono::milliseconds(50));
    }
    if (status == std::future_status::ready) return result.get();
    if (PyErr_CheckSignals() != 0) {
      cancel = true;
      {
        py::gil_scoped_release released;
        result.wait();
      }
      try {
        result.get();
      } catch (const Cancelled&) {
      } catch (...) {
      }
      throw py::error_already_set();
    }
  }
}

std::string solve_json(const Graph& graph, double budget, const std::string& solver, int slots,
                       std::size_t certify_states, double work_limit) {
  return interruptible([&](const std::atomic<bool>* cancel) {
    SolveOptions options;
    options.solver = solver;
    options.slots = slots;
    options.certify_states = certify_states;
    options.work_limit = work_limit;
    options.cancel = cancel;
    return solve_result_json(graph, solve(graph, budget, options));
  });
}

double least_budget(const Graph& graph) {
  return interruptible([&](const std::atomic<bool>* cancel) {
    SolveOptions options;
    options.cancel = cancel;
    return min_feasible_memory(graph, options);
  });
}

// (makespan, peak); an invalid schedule raises InvalidSchedule with the op's index and the reason.
std::tuple<double, double> simulate_json(const Graph& graph, const std::string& schedule_json, double budget) {
  const Schedule schedule = parse_schedule(schedule_json);
  const SimulationResult sim = simulate(graph, schedule, budget);
  if (!sim.valid) {
    const std::string message = "invalid schedule: op " + std::to_string(sim.bad_op) +
                                (sim.bad_op < schedule.size() ? " (" + to_string(schedule[sim.bad_op]) + ")" : "") +
                                ": " + sim.reason;
    py::dict attributes;
    attributes["index"] = sim.bad_op;
    attributes["reason"] = sim.reason;
    raise_with(invalid_schedule_type, message, attributes);
    throw py::error_already_set();
  }
  return {sim.makespan, sim.peak};
}

// (advances, [(action, capo, check), ...]): binomial checkpointing's action stream.
std::tuple<std::uint64_t, std::vector<std::tuple<std::string, std::uint64_t, std::uint64_t>>> revolve_stream(
    std::int64_t steps, std::int64_t snaps) {
  if (steps < 1) throw InputError("steps must be a positive number of steps (got " + std::to_string(steps) + ")");
  if (snaps < 0) throw InputError("snaps must be a non-negative number of snapshots (got " + std::to_string(snaps) + ")");
  const auto l = static_cast<std::uint64_t>(steps), c = static_cast<std::uint64_t>(snaps);
  const std::uint64_t advances = revolve_advances(l, c);
  std::vector<std::tuple<std::string, std::uint64_t, std::uint64_t>> actions;
  Revolve stream(l, c);
  while (auto step = stream.next()) actions.emplace_back(to_string(step->action), step->capo, step->check);
  return {advances, std::move(actions)};
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "rematch's solvers, simulator and graph files (see the package rematch)";

  infeasible_budget_type = PyErr_NewExceptionWithDoc(
      "rematch.InfeasibleBudget", "The budget is below the least feasible one, given as .min_memory.",
      PyExc_ValueError, nullptr);
  invalid_schedule_type = PyErr_NewExceptionWithDoc(
      "rematch.InvalidSchedule", "An op of the schedule cannot run (.index, .reason), or the schedule is incomplete.",
      PyExc_ValueError, nullptr);
  m.attr("InfeasibleBudget") = py::handle(infeasible_budget_type);
  m.attr("InvalidSchedule") = py::handle(invalid_schedule_type);
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const InfeasibleBudget& e) {
      py::dict attributes;
      attributes["min_memory"] = e.min_memory;
      raise_with(infeasible_budget_type, e.what(), attributes);
    } catch (const InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  py::class_<Graph>(m, "Graph", "A validated join graph (a chain has one branch).")
      .def_property_readonly("num_branches", &Graph::num_branches)
      .def_property_readonly("stages", [](const Graph& g) {
        std::vector<int> stages;
        for (const Branch& b : g.branches) stages.push_back(b.stages());
        return stages;
      })
      .def("store_all_makespan", &Graph::store_all_time)
      .def("to_json", [](const Graph& g) { return graph_to_json(g, false); });
  m.def("parse_graph", &parse_graph, py::arg("json_text"), "A graph from the text of a graph file.");
  m.def("read_graph_file", &read_graph_file, py::arg("path"), "A graph from a graph file.");
  m.def("solve", &solve_json, py::arg("graph"), py::arg("budget"), py::arg("solver"), py::arg("slots"),
        py::arg("certify_states"), py::arg("work_limit"), "What `rematch solve --format json` prints, as text.");
  m.def("least_budget", &least_budget, py::arg("graph"));
  m.def("simulate", &simulate_json, py::arg("graph"), py::arg("schedule_json"), py::arg("budget"));
  m.def("revolve", &revolve_stream, py::arg("steps"), py::arg("snaps"));
  m.def("solver_names", &solver_names);
}
