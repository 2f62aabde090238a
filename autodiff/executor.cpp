#include "autodiff/executor.hpp"

#include <chrono>

#include "scheduler/simulator.hpp"

namespace rematch::autodiff {
namespace {

// The items of one branch, as docs/model.md names them: x_i, xbar_i, y_i for i = 0..n.
struct BranchItems {
  std::vector<Stored> x, y;
  std::vector<Saved> xbar;
  explicit BranchItems(int stages) : x(stages + 1), y(stages + 1), xbar(stages + 1) {}
  const Stored& input(int i) const { return x[i].held() ? x[i] : xbar[i].output; }
};

}  // namespace

double executed_flops(const JoinModel& model, const Schedule& schedule) {
  double total = 0;
  for (const Op& op : schedule) {
    const Encoder& encoder = model.encoder_of(op.branch);
    switch (op.kind) {
      case OpKind::F_all:
      case OpKind::F_ck:
      case OpKind::F_none: total += encoder.forward_flops(op.stage); break;
      case OpKind::B: total += encoder.backward_flops(op.stage); break;
      case OpKind::loss:
      case OpKind::drop: break;
    }
  }
  return total;
}

Executor::Executor(JoinModel& model, Graph graph, Arena& arena, std::size_t reserved)
    : model_(model), graph_(std::move(graph)), arena_(arena), reserved_(reserved) {
  check_matches_model();
}

void Executor::set_graph(Graph graph) {
  graph_ = std::move(graph);
  check_matches_model();
}

void Executor::check_matches_model() const {
  validate(graph_);
  if (graph_.num_branches() != model_.branches()) {
    throw std::invalid_argument("graph has " + std::to_string(graph_.num_branches()) +
                                " branches, model " + model_.name() + " has " +
                                std::to_string(model_.branches()));
  }
  for (int j = 0; j < model_.branches(); ++j) {
    if (graph_.branches[j].stages() != model_.encoder_of(j).stages()) {
      throw std::invalid_argument("graph branch " + std::to_string(j) + " has " +
                                  std::to_string(graph_.branches[j].stages()) +
                                  " stages, the model's encoder " +
                                  std::to_string(model_.encoder_of(j).stages()));
    }
  }
}

void Executor::check(const Schedule& schedule) const {
  const SimulationResult r = simulate(graph_, schedule, double(schedule_budget()));
  if (!r.valid) {
    throw InvalidSchedule(r.bad_op < schedule.size()
                              ? "op " + std::to_string(r.bad_op) + " (" +
                                    to_string(schedule[r.bad_op]) + "): " + r.reason
                              : "schedule: " + r.reason,
                          r.bad_op);
  }
}

StepResult Executor::run(const Schedule& schedule, std::vector<Tensor> inputs,
                         std::vector<Gradients>& grads,
                         const std::function<void(std::size_t)>& after_backward) {
  check(schedule);
  const int k = model_.branches();
  if (static_cast<int>(inputs.size()) != k || static_cast<int>(grads.size()) != k) {
    throw std::invalid_argument("executor: one input and one gradient set per branch");
  }
  // From here: storing the inputs (fp32 and bf16 copy side by side) is part of the step.
  arena_.reset_high_water();
  std::vector<BranchItems> items;
  for (int j = 0; j < k; ++j) {
    items.emplace_back(model_.encoder_of(j).stages());
    if (!(inputs[j].shape == model_.encoder_of(j).input_shape(0))) {
      throw std::invalid_argument("executor: input of branch " + std::to_string(j) +
                                  " has the wrong shape");
    }
    items[j].x[0] = model_.encoder_of(j).store(std::move(inputs[j]), arena_);
  }
  model_.set_scratch_allocator(&arena_.transient());
  StepResult result;
  const auto start = std::chrono::steady_clock::now();
  result.op_seconds.reserve(schedule.size());
  for (std::size_t index = 0; index < schedule.size(); ++index) {
    const Op& op = schedule[index];
    const auto op_start = std::chrono::steady_clock::now();
    BranchItems& b = items[op.branch];
    model_.select_branch(op.branch);
    Encoder& encoder = model_.encoder_of(op.branch);
    const int i = op.stage;
    switch (op.kind) {
      case OpKind::F_all:
        b.xbar[i + 1] = encoder.forward_taped(i, b.input(i), arena_);
        break;
      case OpKind::F_ck:
        b.x[i + 1] = encoder.forward(i, b.input(i), arena_);
        break;
      case OpKind::F_none:
        b.x[i + 1] = encoder.forward(i, b.input(i), arena_);
        if (b.x[i].held()) b.x[i] = {};
        else b.xbar[i] = {};
        break;
      case OpKind::loss: {
        std::vector<const Stored*> outputs;
        for (int j = 0; j < k; ++j) outputs.push_back(&items[j].input(model_.encoder_of(j).stages()));
        std::vector<Stored> dy;
        result.loss = model_.run_loss(outputs, dy, arena_);
        for (int j = 0; j < k; ++j) {
          const int n = model_.encoder_of(j).stages();
          items[j].y[n] = std::move(dy[j]);
          items[j].x[n] = {};
        }
        break;
      }
      case OpKind::B: {
        Stored dx = encoder.backward(i, b.input(i), std::move(b.xbar[i + 1]), std::move(b.y[i + 1]),
                                     i > 0, arena_, grads[op.branch]);
        if (i > 0) b.y[i] = std::move(dx);
        b.x[i] = {};
        break;
      }
      case OpKind::drop:
        if (op.item == Item::x) b.x[i] = {};
        else b.xbar[i] = {};
        break;
    }
    result.op_seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - op_start).count());
    if (op.kind == OpKind::B && after_backward) after_backward(index);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.arena_peak = arena_.high_water();
  model_.set_scratch_allocator(nullptr);
  return result;
}

}  // namespace rematch::autodiff
