// Model files build what they describe: the zoo's files train bitwise like the builder they
// replaced, the shipped examples are the generator's output, a residual conv1d encoder and a
// GELU + layer-norm + dropout classifier have finite-difference gradients that every optimal
// schedule reproduces bitwise, and bad files are refused with the file, the key path and what
// was expected.
#include "models/model_file.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "autodiff/arena.hpp"
#include "autodiff/executor.hpp"
#include "autodiff/profiler.hpp"
#include "autodiff/trainer.hpp"
#include "scheduler/simulator.hpp"
#include "scheduler/solver.hpp"
#include "tests/autodiff/gradient_equality.hpp"
#include "tests/models/legacy_zoo.hpp"

namespace rematch::models {
namespace {

using autodiff::bitwise_equal;
using autodiff::Gradients;
using autodiff::Tensor;
using nlohmann::json;

std::vector<float> random_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

autodiff::Batch random_batch(autodiff::JoinModel& model, Task task, std::int64_t batch,
                             std::int64_t classes, unsigned seed) {
  autodiff::Batch b;
  for (int j = 0; j < model.branches(); ++j) {
    const auto& in = model.encoder_of(j).input_shape(0);
    b.inputs.push_back(autodiff::input_rows(random_values(std::size_t(in.rows * in.cols), seed * 10 + j)));
  }
  for (std::int64_t r = 0; r < batch; ++r) {
    const bool cosine = model.loss().kind() == autodiff::LossKind::cosine;
    if (task == Task::classifier) b.targets.push_back(float(r % classes));
    else if (task == Task::pairs) b.targets.push_back(cosine ? (r % 2 ? 1.f : -1.f) : float(r % 2));
  }
  return b;
}

std::vector<std::vector<float>> weights_of(autodiff::JoinModel& model) {
  std::vector<std::vector<float>> out;
  for (int e = 0; e < model.encoders(); ++e) {
    for (Tensor* p : model.encoder(e).parameters()) {
      out.emplace_back(p->data.span().begin(), p->data.span().end());
    }
  }
  return out;
}

std::vector<std::vector<float>> train_five_steps(autodiff::JoinModel& model, autodiff::Arena& params,
                                                 Task task, std::int64_t batch) {
  autodiff::TrainerOptions options;
  options.activation_budget = 64u << 20;
  options.profile.repeats = 1;
  options.calibrate = false;
  autodiff::Trainer trainer(model, params, options);
  for (unsigned s = 0; s < 5; ++s) trainer.step(random_batch(model, task, batch, 0, s));
  return weights_of(model);
}

class ZooFile : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooFile, TrainsBitwiseLikeTheBuiltInBuilderAtOneAndTwoThreads) {
  const int threads = omp_get_max_threads();
  for (int t : {1, 2}) {
    for (int per_stage : {1, 2}) {
      SCOPED_TRACE(std::to_string(t) + " threads, " + std::to_string(per_stage) + " layers per stage");
      omp_set_num_threads(t);
      ModelConfig c;
      c.model = GetParam();
      c.depth = 4;
      c.width = 24;
      c.batch = 16;
      c.embedding = 8;
      c.layers_per_stage = per_stage;
      autodiff::Arena pa("parameters"), pb("parameters");
      auto from_file = build_model(c, pa);
      auto reference = legacy::build_model(c, pb);
      ASSERT_EQ(weights_of(*from_file), weights_of(*reference)) << "initial weights";
      for (int j = 0; j < reference->branches(); ++j) {
        EXPECT_EQ(from_file->encoder_of(j).stages(), reference->encoder_of(j).stages());
      }
      const Task task = GetParam() == "triplet-mlp" ? Task::triplets : Task::pairs;
      EXPECT_EQ(train_five_steps(*from_file, pa, task, c.batch),
                train_five_steps(*reference, pb, task, c.batch));
    }
  }
  omp_set_num_threads(threads);
}

TEST_P(ZooFile, ShippedExampleIsTheGeneratorsDocumentAtDefaultSizes) {
  ModelConfig c;
  c.model = GetParam();
  std::ifstream in(std::string(REMATCH_SOURCE_DIR) + "/examples/models/" + GetParam() + ".json");
  ASSERT_TRUE(in) << "examples/models/" << GetParam() << ".json";
  EXPECT_EQ(json::parse(in), zoo_document(c));
}

INSTANTIATE_TEST_SUITE_P(Models, ZooFile, ::testing::ValuesIn(model_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) ch = ch == '-' ? '_' : ch;
                           return n;
                         });

// The acceptance models, small: a siamese residual conv1d encoder (valid and same convolutions,
// dilation, a separate ReLU and fused ones (in a stage and in a residual block), residual blocks, average pooling, flatten) and a classifier MLP with GELU, layer
// norm, dropout and a residual block.
const char* kResidualConv = R"({
  "name": "residual-conv",
  "branches": [{"name": "a", "input": {"channels": 3, "length": 14}, "encoder": "seq"},
               {"name": "b", "input": {"channels": 3, "length": 14}, "encoder": "seq"}],
  "encoders": {"seq": {"layers_per_stage": 1, "layers": [
    {"type": "conv1d", "out": 6, "taps": 3, "padding": "valid"},
    {"type": "relu"},
    {"type": "conv1d", "out": 6, "taps": 3, "activation": "relu"},
    {"type": "residual", "layers": [
      {"type": "conv1d", "out": 6, "taps": 3, "dilation": 2, "activation": "relu"},
      {"type": "conv1d", "out": 6, "taps": 2}]},
    {"type": "residual", "layers": [{"type": "conv1d", "out": 6, "taps": 3, "dilation": 3}, {"type": "gelu"}]},
    {"type": "avg_pool1d", "window": 2},
    {"type": "flatten"},
    {"type": "linear", "out": 5}]}},
  "loss": {"type": "contrastive", "margin": 1.0}})";

const char* kGeluMlp = R"({
  "name": "gelu-mlp",
  "branches": [{"name": "x", "input": {"features": 20}, "encoder": "mlp"}],
  "encoders": {"mlp": {"stages": [4, 1, 3, 1], "layers": [
    {"type": "linear", "out": 16},
    {"type": "gelu"},
    {"type": "layer_norm"},
    {"type": "dropout", "p": 0.25},
    {"type": "residual", "layers": [{"type": "linear", "out": 16}, {"type": "gelu"}, {"type": "dropout", "p": 0.3}]},
    {"type": "linear", "out": 12},
    {"type": "layer_norm", "eps": 1e-4},
    {"type": "gelu"},
    {"type": "linear", "out": 7}]}},
  "loss": {"type": "softmax_cross_entropy", "classes": 7}})";

constexpr std::int64_t kBatch = 6;

struct Setup {
  ModelDescription description;
  autodiff::Arena params{"parameters"};
  std::unique_ptr<autodiff::JoinModel> model;
  Graph graph;
  autodiff::Batch batch;
};

std::unique_ptr<Setup> make(const char* doc, autodiff::Precision activations = autodiff::Precision::fp32) {
  auto s = std::make_unique<Setup>();
  s->description = parse_model_json(doc, "test.json");
  s->model = build(s->description, kBatch, 3, s->params);
  s->model->set_step(4);  // a fixed step: fixed dropout masks
  s->model->set_activation_precision(activations);
  s->graph = autodiff::profile(*s->model, {.repeats = 1});
  s->batch = random_batch(*s->model, s->description.task, kBatch, s->description.classes, 5);
  s->model->loss().set_targets(s->batch.targets);
  return s;
}

struct Executed {
  float loss = 0;
  std::vector<Gradients> grads;
};

Executed execute(Setup& s, const Schedule& schedule, std::size_t budget) {
  autodiff::Arena arena("activations", budget);
  autodiff::Executor executor(*s.model, s.graph, arena);
  Executed run;
  for (int j = 0; j < s.model->branches(); ++j) {
    run.grads.push_back(s.model->encoder_of(j).make_gradients(s.params));
  }
  std::vector<Tensor> inputs;
  for (int j = 0; j < s.model->branches(); ++j) {
    inputs.emplace_back(s.model->encoder_of(j).input_shape(0), false, arena);
    kernels::pack_into(s.batch.inputs[j].span(), inputs.back());
  }
  run.loss = executor.run(schedule, std::move(inputs), run.grads).loss;
  return run;
}

class AcceptanceModel : public ::testing::TestWithParam<const char*> {};

void expect_bitwise_store_all_gradients_at_five_budgets(Setup* s) {
  const double store_all_peak = solve(s->graph, 1e18, {.solver = "store-all"}).peak;
  const Executed reference = execute(*s, solve(s->graph, store_all_peak, {.solver = "store-all"}).ops,
                                     std::size_t(store_all_peak));
  const double least = min_feasible_memory(s->graph);
  ASSERT_LT(least, store_all_peak) << "the budgets must differ";
  for (double f : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    const double budget = std::floor(least + f * (store_all_peak - least));
    SCOPED_TRACE("budget " + std::to_string(budget));
    const Solution plan = solve(s->graph, budget, {.solver = "optimal"});
    const Executed run = execute(*s, plan.ops, std::size_t(budget));
    EXPECT_EQ(run.loss, reference.loss);
    EXPECT_TRUE(bitwise_equal(run.grads, reference.grads));
  }
}

TEST_P(AcceptanceModel, OptimalSchedulesAtFiveBudgetsGiveBitwiseTheStoreAllGradients) {
  expect_bitwise_store_all_gradients_at_five_budgets(make(GetParam()).get());
}

// Every layer kind of the files (GELU, layer norm, dropout, residual blocks, pooling) with its
// activations kept in bf16, against the bf16 store-all run.
TEST_P(AcceptanceModel, Bf16ActivationsGiveBitwiseTheBf16StoreAllGradientsAtFiveBudgets) {
  expect_bitwise_store_all_gradients_at_five_budgets(make(GetParam(), autodiff::Precision::bf16).get());
}

// Central differences of the loss on entries of every parameter tensor (dropout masks fixed by
// the step), against the executed gradients summed over the branches sharing the encoder.
TEST_P(AcceptanceModel, GradientsMatchCentralDifferencesOfTheLoss) {
  auto s = make(GetParam());
  const auto budget = std::size_t(min_feasible_memory(s->graph));
  const Solution plan = solve(s->graph, double(budget));
  const Executed base = execute(*s, plan.ops, budget);
  std::vector<Tensor*> params = s->model->encoder(0).parameters();
  std::vector<std::pair<std::size_t, std::size_t>> where;  // (layer, index) of each parameter
  const Gradients& g0 = base.grads[0];
  for (std::size_t l = 0; l < g0.size(); ++l) {
    for (std::size_t p = 0; p < g0[l].size(); ++p) where.push_back({l, p});
  }
  ASSERT_EQ(where.size(), params.size());
  for (std::size_t q = 0; q < params.size(); ++q) {
    Tensor& param = *params[q];
    std::vector<float> plain(std::size_t(param.shape.rows * param.shape.cols));
    kernels::unpack(param, plain);
    for (std::size_t idx : {std::size_t(0), plain.size() / 2, plain.size() - 1}) {
      std::vector<float> grad_plain(plain.size());
      double analytic = 0;
      for (int j = 0; j < s->model->branches(); ++j) {
        kernels::unpack(base.grads[j][where[q].first][where[q].second], grad_plain);
        analytic += grad_plain[idx];
      }
      const float saved = plain[idx];
      const float eps = 1e-3f;
      plain[idx] = saved + eps;
      kernels::pack_into(plain, param);
      const double up = execute(*s, plan.ops, budget).loss;
      plain[idx] = saved - eps;
      kernels::pack_into(plain, param);
      const double down = execute(*s, plan.ops, budget).loss;
      plain[idx] = saved;
      kernels::pack_into(plain, param);
      const double numeric = (up - down) / (2.0 * eps);
      EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::abs(numeric))
          << parameter_names(s->description)[q] << " entry " << idx;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Files, AcceptanceModel, ::testing::Values(kResidualConv, kGeluMlp),
                         [](const auto& info) { return info.index == 0 ? "residual_conv" : "gelu_mlp"; });

TEST(Dropout, MasksDependOnTheStepAndInferencePassesThrough) {
  auto s = make(kGeluMlp);
  auto embed = [&](std::int64_t step) {
    s->model->set_step(step);
    autodiff::Arena a("a");  // before x, which ends up holding its memory
    autodiff::Tensor x(s->model->encoder_of(0).input_shape(0));
    kernels::pack_into(s->batch.inputs[0].span(), x);
    x = s->model->encoder_of(0).forward_all(std::move(x), a);
    std::vector<float> out(std::size_t(x.shape.rows * x.shape.cols));
    kernels::unpack(x, out);
    return out;
  };
  EXPECT_EQ(embed(1), embed(1));
  EXPECT_NE(embed(1), embed(2));
  EXPECT_NE(embed(autodiff::Layer::kInference), embed(1));
}

TEST(ParameterNames, OnePerTensorNamedAfterTheFilesLayers) {
  const ModelDescription m = parse_model_json(kGeluMlp, "test.json");
  autodiff::Arena params("parameters");
  auto model = build(m, 4, 1, params);
  const std::vector<std::string> names = parameter_names(m);
  ASSERT_EQ(names.size(), model->encoder(0).parameters().size());
  EXPECT_EQ(names.front(), "encoders.mlp.layers.0.weight");
  EXPECT_EQ(names[2], "encoders.mlp.layers.2.weight");  // layer norm scale
  EXPECT_EQ(names[4], "encoders.mlp.layers.4.body.0.weight");
  EXPECT_EQ(names.back(), "encoders.mlp.layers.8.bias");
  EXPECT_THROW(build(m, 0, 1, params), std::invalid_argument);
  EXPECT_THROW(build(m, std::int64_t{1} << 40, 1, params), std::invalid_argument);
}

std::string error_of(const std::string& doc) {
  try {
    parse_model_json(doc, "m.json");
  } catch (const ModelFileError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ModelFileErrors, NameTheFileTheKeyPathAndWhatWasExpected) {
  json doc = json::parse(kResidualConv);
  doc["encoders"]["seq"]["layers"][3]["layers"][0]["dilation"] = 0;
  EXPECT_EQ(error_of(doc.dump()),
            "m.json: encoders.seq.layers[3].layers[0].dilation: expected an integer in [1, 16777216], got 0");
  doc = json::parse(kResidualConv);
  doc["encoders"]["seq"]["layers"][3]["layers"][0]["activation"] = "tanh";
  EXPECT_EQ(error_of(doc.dump()),
            "m.json: encoders.seq.layers[3].layers[0].activation: expected 'none' or 'relu', got 'tanh'");
  doc = json::parse(kResidualConv);
  doc["encoders"]["seq"]["layers"][0]["taps"] = 20;
  EXPECT_NE(error_of(doc.dump()).find("m.json: encoders.seq.layers[0]: a valid conv1d of 20 taps"), std::string::npos);
  doc = json::parse(kGeluMlp);
  doc["encoders"]["mlp"]["layers"][4]["layers"][0]["out"] = 15;
  EXPECT_NE(error_of(doc.dump()).find("m.json: encoders.mlp.layers[4].layers: a residual block must return"),
            std::string::npos);
  doc = json::parse(kResidualConv);
  doc["encoders"]["other"] = doc["encoders"]["seq"];
  doc["encoders"]["other"]["layers"][7]["out"] = 4;
  doc["branches"][1]["encoder"] = "other";
  EXPECT_NE(error_of(doc.dump()).find("m.json: branches[1]: its encoder outputs 4 features but branch 0's outputs 5"),
            std::string::npos);
  doc = json::parse(kGeluMlp);
  doc["loss"]["classes"] = 9;
  EXPECT_NE(error_of(doc.dump()).find("m.json: loss.classes: expected the encoder's 7"), std::string::npos);
  doc = json::parse(kResidualConv);
  doc["encoders"]["seq"]["layers"].erase(6);
  EXPECT_NE(error_of(doc.dump()).find("linear reads features, but its input is 6 channels x 6"), std::string::npos);
  EXPECT_NE(error_of("{").find("m.json: not valid JSON"), std::string::npos);
}

TEST(ModelFileErrors, AMissingFileIsNamed) {
  EXPECT_THROW(
      {
        try {
          parse_model_file("/nonexistent/model.json");
        } catch (const ModelFileError& e) {
          EXPECT_STREQ(e.what(), "/nonexistent/model.json: cannot open the model file");
          throw;
        }
      },
      ModelFileError);
}

}  // namespace
}  // namespace rematch::models
