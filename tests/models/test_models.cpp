// The model zoo builds trainable join models, weight files round-trip and refuse what does not
// fit, and a short training session on Fashion-MNIST lowers its loss within its budget.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>

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
  const auto seq = to_input(InputLayout::rows_as_sequence, images, 2);
  // sample 1, row 3, column 5 -> channel 5, position 3
  EXPECT_EQ(seq[784 + 5 * 28 + 3], images[784 + 3 * 28 + 5]);
  EXPECT_EQ(to_input(InputLayout::pixels, images, 2), images);
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

}  // namespace
}  // namespace rematch::models
