// The model zoo builds trainable join models, weight files round-trip and refuse what does not
// fit, and a short training session on Fashion-MNIST lowers its loss within its budget.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <tuple>

#include "autodiff/arena.hpp"
#include "models/checkpoint.hpp"
#include "models/data/npz.hpp"
#include "models/training.hpp"
#include "models/zoo.hpp"
#include "scheduler/solver.hpp"

namespace rematch::models {
namespace {

namespace fs = std::filesystem;

ModelConfig small(const std::string& name) {
  ModelConfig c;
  c.model = name;
  c.depth = 3;
  c.width = 24;
  c.batch = 16;
  c.embedding = 8;
  return c;
}

class Zoo : public ::testing::TestWithParam<std::string> {};

TEST_P(Zoo, BuildsAJoinModelWithTheLossAndSharingItsNameImplies) {
  autodiff::Arena params("parameters");
  const ModelConfig c = small(GetParam());
  auto model = build_model(c, params);
  const int expected_branches = GetParam() == "triplet-mlp" ? 3 : 2;
  EXPECT_EQ(model->branches(), expected_branches);
  EXPECT_EQ(model->encoders(), GetParam() == "cross-modal" ? 2 : 1);
  EXPECT_GT(params.in_use(), 0u) << "weights live in the parameter arena";
  for (int j = 0; j < model->branches(); ++j) {
    const auto& e = model->encoder_of(j);
    EXPECT_EQ(e.stages(), c.depth);
    EXPECT_EQ(e.input_shape(0).rows * e.input_shape(0).cols, c.batch * kImageSide * kImageSide);
    EXPECT_EQ(e.output_shape(e.stages() - 1).cols, c.embedding);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Zoo, ::testing::ValuesIn(model_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) ch = ch == '-' ? '_' : ch;
                           return n;
                         });

TEST(ZooConfig, RejectsBadFieldsByName) {
  autodiff::Arena params("parameters");
  ModelConfig c = small("siamese-mlp");
  c.model = "resnet";
  EXPECT_THROW(
      {
        try {
          build_model(c, params);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("unknown model 'resnet'"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
  c = small("siamese-mlp");
  c.width = 0;
  EXPECT_THROW(build_model(c, params), std::invalid_argument);
  c = small("siamese-mlp");
  c.depth = 1;
  EXPECT_THROW(build_model(c, params), std::invalid_argument);
}

TEST(ZooConfig, LayersPerStageGroupsLayersIntoFewerStages) {
  autodiff::Arena params("parameters");
  ModelConfig c = small("siamese-mlp");
  c.depth = 7;
  c.layers_per_stage = 3;
  auto model = build_model(c, params);
  EXPECT_EQ(model->encoder_of(0).stages(), 3);  // 3 + 3 + 1 layers
}

TEST(InputLayout, RowsAsSequenceIsTheTransposeOfEachImage) {
  std::vector<float> images(2 * 784);
  for (std::size_t i = 0; i < images.size(); ++i) images[i] = float(i);
  std::vector<float> seq = images;
  to_input(InputLayout::rows_as_sequence, seq, 2);
  // sample s, row r, column c -> channel c, position r
  for (std::size_t s = 0; s < 2; ++s) {
    for (std::size_t r = 0; r < 28; ++r) {
      for (std::size_t c = 0; c < 28; ++c) ASSERT_EQ(seq[s * 784 + c * 28 + r], images[s * 784 + r * 28 + c]);
    }
  }
  std::vector<float> pixels = images;
  to_input(InputLayout::pixels, pixels, 2);
  EXPECT_EQ(pixels, images);
  EXPECT_THROW(to_input(InputLayout::pixels, images, 3), std::invalid_argument);
}

class WeightFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rematch_weights_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::vector<float> flat_weights(autodiff::JoinModel& m) {
  std::vector<float> out;
  for (int e = 0; e < m.encoders(); ++e) {
    for (auto* p : m.encoder(e).parameters()) {
      std::vector<float> plain(std::size_t(p->shape.rows * p->shape.cols));
      kernels::unpack(*p, plain);
      out.insert(out.end(), plain.begin(), plain.end());
    }
  }
  return out;
}

std::vector<std::string> names_of(const ModelConfig& c) { return parameter_names(load_model(c.model, c)); }

TEST_F(WeightFile, RoundTripsEveryParameterAndLeavesNoTemporaryFile) {
  autodiff::Arena params("parameters");
  ModelConfig c = small("cross-modal");
  auto saved = build_model(c, params);
  save_weights(path("w.npz"), names_of(c), *saved);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "no temporary left";
  ModelConfig other_seed = c;
  other_seed.seed = 99;
  auto loaded = build_model(other_seed, params);
  ASSERT_NE(flat_weights(*loaded), flat_weights(*saved));
  load_weights(path("w.npz"), names_of(c), *loaded);
  EXPECT_EQ(flat_weights(*loaded), flat_weights(*saved));
}

TEST_F(WeightFile, RefusesAnotherModelACorruptFileAndForeignBytesNamingTheProblem) {
  autodiff::Arena params("parameters");
  ModelConfig c = small("siamese-mlp");
  auto model = build_model(c, params);
  save_weights(path("w.npz"), names_of(c), *model);
  auto message = [&](const std::string& file, const ModelConfig& config) -> std::string {
    auto m = build_model(config, params);
    const auto before = flat_weights(*m);
    try {
      load_weights(file, names_of(config), *m);
    } catch (const CheckpointError& e) {
      EXPECT_EQ(flat_weights(*m), before) << "a refused file leaves the weights as they were";
      return e.what();
    }
    return "accepted";
  };
  ModelConfig wider = c;
  wider.width = 32;
  EXPECT_NE(message(path("w.npz"), wider).find("tensor encoders.mlp.layers.0.weight is 784 x 24, the model's is 784 x 32"),
            std::string::npos)
      << message(path("w.npz"), wider);
  ModelConfig deeper = c;
  deeper.depth = c.depth + 1;
  EXPECT_NE(message(path("w.npz"), deeper).find("weights " + path("w.npz") + ": "), std::string::npos);
  ModelConfig shallower = c;
  shallower.depth = c.depth - 1;
  EXPECT_NE(message(path("w.npz"), shallower).find("weights " + path("w.npz") + ": "), std::string::npos);

  const auto size = fs::file_size(path("w.npz"));
  fs::copy_file(path("w.npz"), path("cut.npz"));
  fs::resize_file(path("cut.npz"), size - 10);
  EXPECT_NE(message(path("cut.npz"), c).find("cut.npz"), std::string::npos);
  std::string bytes;
  {
    std::ifstream in(path("w.npz"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.find("\x93NUMPY") + 200] ^= 1;  // one bit of the first tensor's values
  std::ofstream(path("flip.npz"), std::ios::binary) << bytes;
  EXPECT_NE(message(path("flip.npz"), c).find("CRC-32 mismatch"), std::string::npos);
  std::ofstream(path("junk.npz")) << "not weights at all";
  EXPECT_NE(message(path("junk.npz"), c).find("not a .npz (ZIP) file"), std::string::npos);
  EXPECT_NE(message(path("missing.npz"), c).find("cannot open"), std::string::npos);
}

TEST_F(WeightFile, RequiresExactlyTheModelsTensorsByName) {
  autodiff::Arena params("parameters");
  ModelConfig c = small("siamese-mlp");
  auto model = build_model(c, params);
  const auto names = names_of(c);
  save_weights(path("w.npz"), names, *model);
  data::NpzReader saved(path("w.npz"));
  std::vector<data::NpzArray> arrays;
  for (const std::string& n : saved.names()) arrays.push_back(saved.read(n));
  auto refused = [&](const std::vector<data::NpzArray>& members) -> std::string {
    data::write_npz(path("edited.npz"), members);
    try {
      load_weights(path("edited.npz"), names, *model);
    } catch (const CheckpointError& e) {
      return e.what();
    }
    return "accepted";
  };
  auto missing = arrays;
  missing.erase(missing.begin() + 1);
  EXPECT_NE(refused(missing).find("no tensor " + names[1]), std::string::npos) << refused(missing);
  auto extra = arrays;
  extra.push_back({"optimizer.step", {1}, {3.0f}});
  EXPECT_NE(refused(extra).find("tensor optimizer.step is not a parameter of this model"), std::string::npos);
  EXPECT_EQ(refused(arrays), "accepted");
}

bool have_dataset() { return fs::exists(std::string(data::kFashionMnistDir) + "/train-images-idx3-ubyte.gz"); }

TEST(Training, ShortSiameseRunLowersTheLossWithinTheLeastFeasibleBudget) {
  if (!have_dataset()) GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";
  TrainConfig config;
  config.model = small("siamese-mlp");
  config.model.depth = 4;
  config.model.width = 64;
  config.model.batch = 64;
  config.optimizer.kind = autodiff::OptimizerConfig::Kind::adam;
  config.optimizer.lr = 3e-3f;
  config.memory = std::size_t(1) << 40;
  config.eval_batches = 2;
  // The least budget the plan accepts for this model, found by asking for too little.
  {
    TrainConfig probe = config;
    probe.memory = 1;
    try {
      TrainingSession session(probe);
      FAIL() << "a 1-byte budget was accepted";
    } catch (const InfeasibleBudget& e) {
      config.memory = std::size_t(e.min_memory);
    }
  }
  TrainingSession session(config);
  std::vector<double> losses;
  for (int s = 0; s < 40; ++s) {
    const auto r = session.step();
    EXPECT_LE(r.arena_peak, config.memory);
    losses.push_back(r.loss);
  }
  auto mean = [](auto begin, auto end) { return std::accumulate(begin, end, 0.0) / double(end - begin); };
  EXPECT_LT(mean(losses.end() - 5, losses.end()), mean(losses.begin(), losses.begin() + 5))
      << "mean loss of the last 5 steps vs the first 5";
  const Evaluation e = session.evaluate();
  EXPECT_EQ(e.pairs, 128);
  EXPECT_GT(e.auc, 0.6) << "embeddings separate classes better than chance";
}

// A session's batch is the seeded draw's rows gathered here by hand (pixels / 255, a sequence
// branch's image transposed) and, with several processes, this process's slice of them: its
// first step's loss is bitwise that of a store-all trainer of the same weights on that batch.
class SessionBatch : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(SessionBatch, IsTheSeededDrawsRowsGatheredByHand) {
  if (!have_dataset()) GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";
  const auto& [name, shards] = GetParam();
  TrainConfig config;
  config.model = small(name);
  // Above store-all, and small enough that an AddressSanitizer build can poison the arena's range.
  config.memory = std::size_t(1) << 30;
  config.shards = shards;
  config.shard = shards - 1;
  config.eval_batches = 1;
  TrainingSession session(config);

  const data::Dataset images = data::load_fashion_mnist(config.data_dir, data::Split::train);
  data::Sampler sampler(images, config.data_seed);
  const std::int64_t n = config.model.batch / shards, first = n * config.shard;
  std::vector<std::vector<std::int64_t>> index;
  autodiff::Batch batch;
  if (session.description().task == Task::triplets) {
    const data::TripletBatch t = sampler.triplets(config.model.batch);
    index = {t.anchor_index, t.positive_index, t.negative_index};
  } else {
    const data::PairBatch p = sampler.pairs(config.model.batch);
    index = {p.left_index, p.right_index};
    const bool cosine = session.model().loss().kind() == autodiff::LossKind::cosine;
    for (std::int64_t r = first; r < first + n; ++r) {
      const float similar = p.similar[std::size_t(r)];
      batch.targets.push_back(cosine ? (similar > 0 ? 1.0f : -1.0f) : similar);
    }
  }
  for (int j = 0; j < session.model().branches(); ++j) {
    const bool sequence = session.description().input(j).is_sequence();
    autodiff::InputRows x(std::size_t(n * 784));
    for (std::int64_t r = 0; r < n; ++r) {
      const std::uint8_t* image = images.image(index[std::size_t(j)][std::size_t(first + r)]);
      for (std::int64_t row = 0; row < 28; ++row) {
        for (std::int64_t col = 0; col < 28; ++col) {
          x.data()[r * 784 + (sequence ? col * 28 + row : row * 28 + col)] = data::Dataset::intensity(image[row * 28 + col]);
        }
      }
    }
    batch.inputs.push_back(std::move(x));
  }

  autodiff::Arena parameters("parameters");
  auto model = build(session.description(), n, config.model.seed, parameters);
  autodiff::TrainerOptions options;
  options.activation_budget = config.memory;
  options.solve.solver = "store-all";
  options.calibrate = false;
  autodiff::Trainer reference(*model, parameters, options);
  EXPECT_EQ(session.step().loss, reference.step(std::move(batch)).loss);
}

INSTANTIATE_TEST_SUITE_P(Models, SessionBatch,
                         ::testing::Combine(::testing::ValuesIn(model_names()), ::testing::Values(1, 2)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param) + "_of_" + std::to_string(std::get<1>(info.param));
                           for (char& ch : n) ch = ch == '-' ? '_' : ch;
                           return n;
                         });

}  // namespace
}  // namespace rematch::models
