#include "models/sequence_data.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace rematch::models {

SequenceData SequenceData::open(const SequenceDataFiles& files) {
  const std::size_t want = files.layout == data::Layout::labelled ? 1 : files.layout == data::Layout::pairs ? 2 : 3;
  if (files.values.size() != want || files.offsets.size() != want) {
    throw data::DataError(std::string(data::layout_name(files.layout)) + " sequences need " +
                          std::to_string(want) + " values and offsets files");
  }
  SequenceData d;
  d.layout = files.layout;
  for (std::size_t k = 0; k < want; ++k) {
    d.arrays.emplace_back(files.values[k], files.offsets[k]);
    const auto& a = d.arrays.back();
    if (a.sequences() != d.arrays.front().sequences() || a.channels() != d.arrays.front().channels()) {
      throw data::DataError(a.path() + ": " + std::to_string(a.sequences()) + " sequences of " +
                            std::to_string(a.channels()) + " channels, but " + d.arrays.front().path() +
                            " has " + std::to_string(d.arrays.front().sequences()) + " of " +
                            std::to_string(d.arrays.front().channels()));
    }
  }
  if (files.layout == data::Layout::triplets) {
    if (!files.labels.empty()) throw data::DataError(files.labels + ": triplets take no labels");
    return d;
  }
  if (files.labels.empty()) throw data::DataError(std::string(data::layout_name(files.layout)) + " sequences need labels");
  data::NpyFile labels(files.labels);
  d.labels = labels.read_labels(files.layout == data::Layout::pairs ? 2 : data::kMaxClasses);
  if (std::int64_t(d.labels.size()) != d.tuples()) {
    labels.fail(std::to_string(d.labels.size()) + " labels for " + std::to_string(d.tuples()) + " sequences");
  }
  return d;
}

std::vector<std::int64_t> SequenceData::lengths() const {
  std::vector<std::int64_t> out;
  for (const auto& a : arrays) {
    const auto l = a.lengths();
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

SequenceEpochs::SequenceEpochs(const SequenceData& data, const ModelDescription& model,
                               std::vector<std::int64_t> edges, std::int64_t batch, std::uint64_t seed)
    : data_(data),
      task_(model.task),
      cosine_(model.loss == autodiff::LossKind::cosine),
      branches_(int(model.branches.size())),
      edges_(std::move(edges)),
      batch_(batch),
      rng_(seed) {
  const bool fits = data.layout == data::Layout::labelled ||
                    (data.layout == data::Layout::pairs && task_ == Task::pairs) ||
                    (data.layout == data::Layout::triplets && task_ == Task::triplets);
  if (!fits) {
    throw std::invalid_argument(std::string(data::layout_name(data.layout)) + " sequences cannot train " +
                                model.name + " (" + std::to_string(branches_) + " branches)");
  }
  for (int j = 0; j < branches_; ++j) {
    if (model.input(j).channels != data.arrays.front().channels()) {
      throw std::invalid_argument(data.arrays.front().path() + ": sequences of " +
                                  std::to_string(data.arrays.front().channels()) + " channels, but " +
                                  model.source + " reads " + std::to_string(model.input(j).channels));
    }
  }
  for (std::int64_t l : data.lengths()) {
    if (bucket_of(edges_, l) < 0) {
      throw std::invalid_argument("a sequence of length " + std::to_string(l) +
                                  " exceeds the last bucket edge " + std::to_string(edges_.back()));
    }
  }
  if (data.layout == data::Layout::labelled && task_ != Task::classifier) {
    for (std::size_t i = 0; i < data.labels.size(); ++i) {
      const auto c = std::size_t(data.labels[i]);
      if (c >= by_class_.size()) by_class_.resize(c + 1);
      by_class_[c].push_back(std::int64_t(i));
    }
    int classes = 0;
    for (const auto& members : by_class_) classes += members.empty() ? 0 : 1;
    if (classes < 2) throw std::invalid_argument(data.arrays.front().path() + ": pairs and triplets need two classes or more");
  }
  if (task_ == Task::classifier) {
    for (std::int64_t c : data.labels) {
      if (c >= model.classes) {
        throw std::invalid_argument("label " + std::to_string(c) + " but the model has " +
                                    std::to_string(model.classes) + " classes");
      }
    }
  }
}

std::int64_t SequenceEpochs::draw(std::int64_t n) { return std::int64_t(rng_() % std::uint64_t(n)); }

std::vector<std::int64_t> SequenceEpochs::tuple(std::int64_t i, std::vector<float>& target) {
  if (data_.layout != data::Layout::labelled) {
    if (task_ == Task::pairs) {
      const float s = float(data_.labels[std::size_t(i)]);
      target.push_back(cosine_ ? (s > 0 ? 1.0f : -1.0f) : s);
    }
    return std::vector<std::int64_t>(std::size_t(branches_), i);
  }
  const std::int64_t c = data_.labels[std::size_t(i)];
  if (task_ == Task::classifier) {
    target.push_back(float(c));
    return {i};
  }
  auto same = [&] {
    const auto& m = by_class_[std::size_t(c)];
    return m[std::size_t(draw(std::int64_t(m.size())))];
  };
  auto other = [&] {
    for (;;) {
      const std::int64_t k = draw(data_.tuples());
      if (data_.labels[std::size_t(k)] != c) return k;
    }
  };
  if (task_ == Task::triplets) return {i, same(), other()};
  const bool similar = (rng_() & 1) != 0;
  target.push_back(similar ? 1.0f : (cosine_ ? -1.0f : 0.0f));
  return {i, similar ? same() : other()};
}

std::vector<PlannedBatch> SequenceEpochs::next_epoch() {
  struct Tuple {
    std::vector<std::int64_t> rows;
    std::vector<float> target;
  };
  std::vector<std::vector<Tuple>> buckets(edges_.size());
  for (std::int64_t i = 0; i < data_.tuples(); ++i) {
    Tuple t;
    t.rows = tuple(i, t.target);
    std::int64_t longest = 0;
    for (int j = 0; j < branches_; ++j) {
      longest = std::max(longest, data_.arrays[std::size_t(data_.layout == data::Layout::labelled ? 0 : j)].length(t.rows[std::size_t(j)]));
    }
    buckets[std::size_t(bucket_of(edges_, longest))].push_back(std::move(t));
  }
  std::vector<PlannedBatch> epoch;
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    auto& tuples = buckets[b];
    if (tuples.empty()) continue;
    for (std::size_t k = tuples.size(); k > 1; --k) std::swap(tuples[k - 1], tuples[std::size_t(draw(std::int64_t(k)))]);
    const std::size_t real = tuples.size();
    while (tuples.size() % std::size_t(batch_) != 0) tuples.push_back(tuples[std::size_t(draw(std::int64_t(real)))]);
    for (std::size_t start = 0; start < tuples.size(); start += std::size_t(batch_)) {
      PlannedBatch p;
      p.bucket = int(b);
      p.rows.assign(std::size_t(branches_), {});
      for (std::size_t r = start; r < start + std::size_t(batch_); ++r) {
        for (int j = 0; j < branches_; ++j) p.rows[std::size_t(j)].push_back(tuples[r].rows[std::size_t(j)]);
        p.targets.insert(p.targets.end(), tuples[r].target.begin(), tuples[r].target.end());
      }
      epoch.push_back(std::move(p));
    }
  }
  for (std::size_t k = epoch.size(); k > 1; --k) std::swap(epoch[k - 1], epoch[std::size_t(draw(std::int64_t(k)))]);
  return epoch;
}

SequenceBatch SequenceEpochs::load(const PlannedBatch& p) const {
  const std::int64_t length = edges_[std::size_t(p.bucket)];
  SequenceBatch batch;
  batch.targets = p.targets;
  for (int j = 0; j < branches_; ++j) {
    const data::RaggedArray& a = data_.arrays[std::size_t(data_.layout == data::Layout::labelled ? 0 : j)];
    std::vector<float> values(std::size_t(batch_ * a.channels() * length));
    std::vector<std::int64_t> lengths;
    for (std::int64_t r = 0; r < batch_; ++r) {
      const std::int64_t s = p.rows[std::size_t(j)][std::size_t(r)];
      a.read(s, length, values.data() + r * a.channels() * length);
      lengths.push_back(a.length(s));
    }
    batch.inputs.push_back(std::move(values));
    batch.lengths.push_back(std::move(lengths));
  }
  return batch;
}

std::vector<std::int64_t> batches_per_bucket(const std::vector<PlannedBatch>& epoch, int buckets) {
  std::vector<std::int64_t> counts(std::size_t(buckets), 0);
  for (const PlannedBatch& p : epoch) ++counts[std::size_t(p.bucket)];
  return counts;
}

EpochPrediction predict_epoch(SequenceTrainer& trainer, const SequenceEpochs& epochs,
                              const std::vector<PlannedBatch>& epoch, int most, int rounds) {
  EpochPrediction p;
  const auto counts = batches_per_bucket(epoch, trainer.buckets());
  p.representatives = representatives(counts, epochs.edges(), most);
  for (std::size_t b = 0; b < counts.size(); ++b) {
    if (counts[b] > 0) p.peak = std::max(p.peak, trainer.bucket(int(b)).plan.peak);
  }
  std::vector<std::vector<double>> times(p.representatives.size());
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t k = 0; k < p.representatives.size(); ++k) {
      const int b = p.representatives[k].bucket;
      const auto planned = std::find_if(epoch.begin(), epoch.end(), [&](const PlannedBatch& x) { return x.bucket == b; });
      const auto start = std::chrono::steady_clock::now();
      trainer.compute(b, epochs.load(*planned));
      times[k].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  for (std::size_t k = 0; k < times.size(); ++k) {
    std::sort(times[k].begin(), times[k].end());
    p.step_seconds.push_back(times[k][times[k].size() / 2]);
    p.seconds += p.representatives[k].weight * p.step_seconds.back();
  }
  return p;
}

}  // namespace rematch::models
