#include "models/evaluation.hpp"

#include <algorithm>

#include "models/data/metrics.hpp"

namespace rematch::models {
namespace {

// Rows [begin, begin + batch) of array k, the last rows repeated past the end (their outputs
// are dropped), converted for branch j.
std::vector<float> rows(const data::Source& s, int k, std::int64_t begin, std::int64_t batch, const InputFeed& feed) {
  const data::Rows& a = s.array(k);
  std::vector<float> out(std::size_t(batch * a.sample_size()));
  for (std::int64_t r = 0; r < batch; ++r) {
    a.read(std::min(begin + r, s.samples() - 1), out.data() + r * a.sample_size());
  }
  to_branch_input(feed, out, batch);
  return out;
}

Evaluation scored(std::vector<float> distances, std::vector<float> similar) {
  Evaluation e;
  e.pairs = std::int64_t(distances.size());
  e.auc = data::distance_auc(distances, similar);
  const data::Verification v = data::best_threshold_accuracy(distances, similar);
  e.accuracy = v.accuracy;
  e.threshold = v.threshold;
  return e;
}

}  // namespace

void to_branch_input(const InputFeed& feed, std::span<float> samples, std::int64_t n) {
  if (feed) to_input(*feed, samples, n);
}

std::vector<std::int64_t> input_shape(const TensorDims& d) {
  if (d.is_sequence()) return {d.channels, d.length};
  return {d.features};
}

std::vector<InputFeed> input_feeds(const ModelDescription& m, const data::Source& source, bool fashion) {
  const data::Layout l = source.layout();
  const bool ok = m.task == Task::classifier ? l == data::Layout::labelled
                  : m.task == Task::triplets ? l != data::Layout::pairs
                                             : true;
  if (!ok) {
    throw data::DataError(std::string("a ") + (m.task == Task::classifier ? "classifier" : "triplet model") +
                          " cannot train or be scored on the " + data::layout_name(l) + " layout");
  }
  if (m.task == Task::pairs && l == data::Layout::triplets && m.encoders.size() > 1) {
    throw data::DataError("a pair model with two encoders reads explicit pairs, not triplets");
  }
  std::vector<InputFeed> out;
  for (int j = 0; j < int(m.branches.size()); ++j) {
    const TensorDims in = m.input(j);
    if (fashion) {
      if (in == TensorDims{.features = kImageSide * kImageSide}) {
        out.push_back(InputLayout::pixels);
      } else if (in == TensorDims{.channels = kImageSide, .length = kImageSide}) {
        out.push_back(InputLayout::rows_as_sequence);
      } else {
        throw ModelFileError(m.source + ": branches[" + std::to_string(j) + "].input: Fashion-MNIST " +
                             "supplies 784 features or 28 channels x 28, the model reads " + to_string(in));
      }
      continue;
    }
    // A triplets source feeds a pair model's right branch from the positive and negative arrays.
    const int k = l == data::Layout::labelled ? 0 : std::min(j, source.arrays() - 1);
    source.require_shape(k, input_shape(in));
    if (l == data::Layout::triplets && m.task == Task::pairs) source.require_shape(2, input_shape(in));
    out.push_back(std::nullopt);
  }
  return out;
}

double batch_loss(const autodiff::LossHead& loss, const std::vector<std::vector<float>>& outputs,
                  std::vector<float> targets, std::int64_t batch) {
  autodiff::LossHead head = loss;
  head.set_targets(std::move(targets));
  // Each output as one block: its plain rows are the blocked layout.
  std::vector<autodiff::Tensor> packed, grads;
  std::vector<const autodiff::Tensor*> inputs;
  for (const std::vector<float>& o : outputs) {
    const std::int64_t values = std::int64_t(o.size()) / batch;
    const kernels::BlockShape shape{.rows = batch, .cols = values, .brow = batch, .bcol = values};
    packed.push_back(kernels::pack(o, shape));
    grads.emplace_back(shape, false, kernels::heap_allocator(), kernels::Uninitialised{});
  }
  for (const autodiff::Tensor& t : packed) inputs.push_back(&t);
  return head.run(inputs, grads, kernels::heap_allocator());
}

Evaluation evaluate(const ModelDescription& d, const autodiff::JoinModel& model, const std::vector<InputFeed>& feeds,
                    const data::Source& test, std::int64_t batch, int batches, std::uint64_t seed,
                    const EmbedFn& embed) {
  const std::int64_t n = batches > 0 ? std::min(test.samples(), batches * batch) : test.samples();
  if (d.task == Task::classifier) {
    std::int64_t correct = 0;
    for (std::int64_t begin = 0; begin < n; begin += batch) {
      const auto logits = embed(0, rows(test, 0, begin, batch, feeds[0]));
      for (std::int64_t s = 0; s < std::min(batch, n - begin); ++s) {
        const float* row = logits.data() + s * d.classes;
        correct += std::max_element(row, row + d.classes) - row == test.labels()[std::size_t(begin + s)];
      }
    }
    return {.auc = 0, .accuracy = double(correct) / double(n), .threshold = 0, .pairs = n};
  }
  const std::int64_t dim = d.embedding().values();
  // A pair's right side goes through the second encoder (cross-modal) or the shared one.
  const int right_branch = d.task == Task::triplets ? 0 : 1;
  std::vector<float> distances, similar;
  auto add = [&](std::span<const float> left, std::span<const float> right, std::span<const float> same, std::int64_t keep) {
    const auto dist = model.loss().distances(left, right, dim);
    distances.insert(distances.end(), dist.begin(), dist.begin() + keep);
    similar.insert(similar.end(), same.begin(), same.begin() + keep);
  };
  if (test.layout() == data::Layout::labelled) {
    data::Batches sampler(test, seed);
    const std::int64_t count = batches > 0 ? batches : (test.samples() + batch - 1) / batch;
    for (std::int64_t b = 0; b < count; ++b) {
      data::PairBatch p = sampler.pairs(batch);
      to_branch_input(feeds[0], p.left, batch);
      to_branch_input(feeds[right_branch], p.right, batch);
      const auto left = embed(0, p.left);
      const auto right = embed(right_branch, p.right);
      add(left, right, p.similar, batch);
    }
    return scored(std::move(distances), std::move(similar));
  }
  for (std::int64_t begin = 0; begin < n; begin += batch) {
    const std::int64_t keep = std::min(batch, n - begin);
    const auto left = embed(0, rows(test, 0, begin, batch, feeds[0]));
    if (test.layout() == data::Layout::pairs) {
      std::vector<float> same(static_cast<std::size_t>(keep));
      for (std::int64_t s = 0; s < keep; ++s) same[std::size_t(s)] = float(test.labels()[std::size_t(begin + s)]);
      add(left, embed(right_branch, rows(test, 1, begin, batch, feeds[right_branch])), same, keep);
    } else {  // triplets: (anchor, positive) similar, (anchor, negative) not
      add(left, embed(right_branch, rows(test, 1, begin, batch, feeds[right_branch])), std::vector<float>(std::size_t(keep), 1.0f), keep);
      add(left, embed(right_branch, rows(test, 2, begin, batch, feeds[right_branch])), std::vector<float>(std::size_t(keep), 0.0f), keep);
    }
  }
  return scored(std::move(distances), std::move(similar));
}

}  // namespace rematch::models
