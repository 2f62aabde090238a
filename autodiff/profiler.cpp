#include "autodiff/profiler.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>

#include "autodiff/arena.hpp"

namespace rematch::autodiff {
namespace {

double median(std::vector<double> v) {
  const std::size_t m = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + m, v.end());
  if (v.size() % 2) return v[m];
  return 0.5 * (*std::max_element(v.begin(), v.begin() + m) + v[m]);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median_seconds(int repeats, const std::function<void()>& run) {
  run();  // warm-up: JIT, first-touch of cached blocks
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(seconds_since(start));
  }
  return median(times);
}

// Deterministic values in [-1, 1): activations whose ReLU masks are half on, like real ones.
Tensor filled(const BlockShape& shape, Arena& arena, std::uint32_t seed) {
  Tensor t(shape, false, arena);
  std::vector<float> plain(std::size_t(shape.rows * shape.cols));
  std::uint32_t s = seed * 2654435761u + 1;
  for (float& v : plain) {
    s = s * 1664525u + 1013904223u;
    v = float(s >> 8) * 0x1.0p-23f - 1.0f;
  }
  kernels::pack_into(plain, t);
  return t;
}

// The bytes the arena had to add above `base` while `run` ran.
std::size_t extra_bytes(Arena& arena, const std::function<void()>& run) {
  const std::size_t base = arena.in_use();
  arena.reset_high_water();
  run();
  return arena.high_water() - base;
}

// Stages with the same layers on the same shapes allocate the same: sized once (a deep MLP has
// three kinds of stage, whatever its depth).
std::string signature(const Encoder& encoder, int stage) {
  std::string key;
  for (const Layer* l : encoder.stage_layers(stage)) {
    const BlockShape& in = l->input_shape();
    const BlockShape& out = l->output_shape();
    for (auto v : {in.rows, in.cols, in.brow, in.bcol, out.rows, out.cols, out.brow, out.bcol}) {
      key += std::to_string(v) + ",";
    }
    key += l->name() + ";";
  }
  return key;
}

struct StageSizes {
  double cbw, ftmp, btmp;
};

// What a stage allocates beyond what it is given, read off the arena; one run of each op.
StageSizes measure_sizes(Encoder& encoder, int i, const Branch& b, Arena& arena) {
  const Stored x = encoder.store(filled(encoder.input_shape(i), arena, std::uint32_t(i)), arena);
  const std::size_t extra_ck = extra_bytes(arena, [&] { (void)encoder.forward(i, x, arena); });
  Saved saved;
  const std::size_t extra_all = extra_bytes(arena, [&] { saved = encoder.forward_taped(i, x, arena); });
  const double cbw = double(saved.bytes());
  Gradients grads = encoder.make_gradients(arena);
  Stored dy = encoder.store(filled(encoder.output_shape(i), arena, std::uint32_t(1000 + i)), arena);
  const std::size_t extra_b = extra_bytes(arena, [&] {
    (void)encoder.backward(i, x, std::move(saved), std::move(dy), i > 0, arena, grads);
  });
  return {cbw, std::max(double(extra_ck) - b.cw[i + 1], double(extra_all) - cbw),
          std::max(0.0, double(extra_b) - b.cw[i])};
}

// Stage times are taken in sweeps over the whole encoder, in the order a step runs them: a
// forward sweep, then a backward sweep from the top (each backward after an untimed taped
// forward of its stage, as in a schedule). Timing one stage over and over would keep its
// weights and activations hot in cache and time it below what a step sees. The first sweep
// warms up (JIT, first touch); fw and bw are medians over the others.
void measure_times(Encoder& encoder, Branch& b, Arena& arena, const ProfileOptions& options) {
  const int n = encoder.stages();
  std::vector<std::vector<double>> fw(n), bw(n);
  Gradients grads = encoder.make_gradients(arena);
  for (int sweep = 0; sweep <= options.repeats; ++sweep) {
    Stored x = encoder.store(filled(encoder.input_shape(0), arena, 0), arena);
    for (int i = 0; i < n; ++i) {
      const auto start = std::chrono::steady_clock::now();
      Stored next = encoder.forward(i, x, arena);
      if (sweep > 0) fw[i].push_back(seconds_since(start));
      x = std::move(next);
    }
    x = {};
    for (int i = n - 1; i >= 0; --i) {
      const Stored in = encoder.store(filled(encoder.input_shape(i), arena, std::uint32_t(i)), arena);
      Saved saved = encoder.forward_taped(i, in, arena);
      Stored dy = encoder.store(filled(encoder.output_shape(i), arena, std::uint32_t(1000 + i)), arena);
      const auto start = std::chrono::steady_clock::now();
      (void)encoder.backward(i, in, std::move(saved), std::move(dy), i > 0, arena, grads);
      if (sweep > 0) bw[i].push_back(seconds_since(start));
    }
  }
  for (int i = 0; i < n; ++i) {
    b.fw.push_back(median(fw[i]));
    b.bw.push_back(median(bw[i]));
  }
}

Branch profile_encoder(Encoder& encoder, Arena& arena, const ProfileOptions& options) {
  Branch b;
  const int n = encoder.stages();
  for (int i = 0; i <= n; ++i) {
    const double bytes = double(
        stored_bytes(i < n ? encoder.input_shape(i) : encoder.output_shape(n - 1), encoder.precision()));
    b.cw.push_back(bytes);
  }
  b.cbw.push_back(b.cw[0]);
  std::map<std::string, StageSizes> measured;
  for (int i = 0; i < n; ++i) {
    // Stage 0 makes no input gradient: its backward differs from an identical later stage's.
    const std::string key = signature(encoder, i) + (i == 0 ? "first" : "");
    auto it = measured.find(key);
    if (it == measured.end()) it = measured.emplace(key, measure_sizes(encoder, i, b, arena)).first;
    b.cbw.push_back(it->second.cbw);
    b.ftmp.push_back(it->second.ftmp);
    b.btmp.push_back(it->second.btmp);
  }
  measure_times(encoder, b, arena, options);
  return b;
}

}  // namespace

Graph profile(JoinModel& model, const ProfileOptions& options) {
  if (options.repeats < 1) throw std::invalid_argument("profile: repeats must be at least 1");
  Arena arena("profiler");
  model.set_scratch_allocator(&arena.transient());
  Graph graph;
  std::map<int, Branch> measured;  // by encoder index
  for (int j = 0; j < model.branches(); ++j) {
    const int e = model.encoder_index(j);
    if (!measured.count(e)) measured[e] = profile_encoder(model.encoder_of(j), arena, options);
    graph.branches.push_back(measured[e]);
  }

  std::vector<Stored> outputs;
  std::vector<const Stored*> views;
  for (int j = 0; j < model.branches(); ++j) {
    const Encoder& enc = model.encoder_of(j);
    outputs.push_back(enc.store(filled(enc.output_shape(enc.stages() - 1), arena, std::uint32_t(2000 + j)), arena));
  }
  for (const Stored& t : outputs) views.push_back(&t);
  const std::int64_t rows = outputs[0].shape().rows;
  std::vector<float> targets(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    targets[r] = model.loss().kind() == LossKind::cosine ? (r % 2 ? 1.f : -1.f) : float(r % 2);
  }
  model.loss().set_targets(targets);
  double grad_bytes = 0;
  for (const Stored& t : outputs) grad_bytes += double(t.bytes());  // the y^j_n the loss makes
  auto loss_once = [&] {
    std::vector<Stored> dy;
    (void)model.run_loss(views, dy, arena);
  };
  const std::size_t extra = extra_bytes(arena, loss_once);
  graph.loss.tmp = std::max(0.0, double(extra) - grad_bytes);
  graph.loss.time = median_seconds(options.repeats, loss_once);
  model.set_scratch_allocator(nullptr);
  validate(graph);
  return graph;
}

Graph calibrate(const Graph& profiled, const JoinModel& model, const Schedule& schedule,
                const std::vector<std::vector<double>>& steps_op_seconds) {
  if (steps_op_seconds.empty()) throw std::invalid_argument("calibrate: no executed step");
  for (const std::vector<double>& op_seconds : steps_op_seconds) {
    if (op_seconds.size() != schedule.size()) {
      throw std::invalid_argument("calibrate: one time per op of the schedule");
    }
  }
  // [encoder][stage] -> times of its forward ops and of its backwards, over every branch.
  std::map<int, std::vector<std::vector<double>>> forward, backward;
  for (int j = 0; j < model.branches(); ++j) {
    const int n = model.encoder_of(j).stages();
    forward[model.encoder_index(j)].resize(n);
    backward[model.encoder_index(j)].resize(n);
  }
  std::vector<double> loss;
  for (const std::vector<double>& op_seconds : steps_op_seconds) {
    for (std::size_t k = 0; k < schedule.size(); ++k) {
      const Op& op = schedule[k];
      const int e = model.encoder_index(op.branch);
      switch (op.kind) {
        case OpKind::F_all:
        case OpKind::F_ck:
        case OpKind::F_none: forward[e][op.stage].push_back(op_seconds[k]); break;
        case OpKind::B: backward[e][op.stage].push_back(op_seconds[k]); break;
        case OpKind::loss: loss.push_back(op_seconds[k]); break;
        case OpKind::drop: break;
      }
    }
  }
  Graph graph = profiled;
  for (int j = 0; j < model.branches(); ++j) {
    const int e = model.encoder_index(j);
    Branch& b = graph.branches[j];
    for (int i = 0; i < b.stages(); ++i) {
      if (!forward[e][i].empty()) b.fw[i] = median(forward[e][i]);
      if (!backward[e][i].empty()) b.bw[i] = median(backward[e][i]);
    }
  }
  if (!loss.empty()) graph.loss.time = median(loss);
  return graph;
}

}  // namespace rematch::autodiff
