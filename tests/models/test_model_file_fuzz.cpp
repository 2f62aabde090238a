// The model-file parser refuses every malformed document with a ModelFileError and never
// crashes: truncations of valid files, values of the wrong type, huge numbers, hostile shapes
// and random mutations (run under AddressSanitizer + UndefinedBehaviorSanitizer in CI).
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "models/model_file.hpp"
#include "tests/test_scale.hpp"

namespace rematch::models {
namespace {

using nlohmann::json;

std::string example(const std::string& name) {
  std::ifstream in(std::string(REMATCH_SOURCE_DIR) + "/examples/models/" + name + ".json");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Parses `text`: either a valid description or a ModelFileError naming the source; anything
// else (another exception, a crash) fails the test.
bool parses(const std::string& text) {
  try {
    const ModelDescription m = parse_model_json(text, "fuzz.json");
    EXPECT_FALSE(m.encoders.empty());
    return true;
  } catch (const ModelFileError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("fuzz.json: ", 0), 0u) << e.what();
    return false;
  }
}

const std::vector<std::string> kExamples = {"residual-conv", "mlp-classifier", "cross-modal"};

TEST(ModelFileFuzz, EveryTruncationOfAValidFileIsRefused) {
  for (const auto& name : kExamples) {
    const std::string text = example(name);
    ASSERT_TRUE(parses(text)) << name;
    const std::size_t step = text.size() > 4000 ? 7 : 1;
    for (std::size_t cut = 0; cut + 1 < text.size(); cut += step) {
      // A cut inside trailing whitespace leaves a complete document.
      if (text.find_first_not_of(" \n\t", cut) == std::string::npos) continue;
      EXPECT_FALSE(parses(text.substr(0, cut))) << name << " cut at " << cut;
    }
  }
}

// Every scalar and container of the document replaced by values of other types and by extreme
// numbers: each is accepted or refused, never anything else.
void replace_everywhere(json& node, const std::function<void()>& check) {
  static const std::vector<json> hostile = {
      json(nullptr), json(true), json(-1), json(0), json(1.5), json("x"), json::array(), json::object(),
      json(9223372036854775807LL), json(18446744073709551615ULL), json(-9223372036854775807LL - 1),
      json(1e308), json(-1e308), json(16777216), json(16777217), json(268435456)};
  const json saved = node;
  for (const json& v : hostile) {
    node = v;
    check();
  }
  node = saved;
  if (node.is_object()) {
    for (auto& item : node.items()) replace_everywhere(item.value(), check);
  } else if (node.is_array()) {
    for (auto& item : node) replace_everywhere(item, check);
  }
}

TEST(ModelFileFuzz, WrongTypesAndHugeNumbersAnywhereAreAnErrorNeverACrash) {
  for (const auto& name : {"residual-conv", "mlp-classifier"}) {
    json doc = json::parse(example(name));
    int refused = 0;
    replace_everywhere(doc, [&] { refused += !parses(doc.dump()); });
    EXPECT_GT(refused, 100) << name;
  }
}

TEST(ModelFileFuzz, HostileShapesAreRefusedBeforeAnythingIsAllocated) {
  const char* docs[] = {
      // a weight of 2^24 x 2^24 values
      R"({"branches":[{"input":{"features":16777216},"encoder":"e"}],"encoders":{"e":{"layers":[{"type":"linear","out":16777216}]}},"loss":{"type":"softmax_cross_entropy"}})",
      // a sample of 2^24 x 2^24 values
      R"({"branches":[{"input":{"channels":16777216,"length":16777216},"encoder":"e"}],"encoders":{"e":{"layers":[{"type":"flatten"}]}},"loss":{"type":"softmax_cross_entropy"}})",
      // dilation * taps overflowing a naive product
      R"({"branches":[{"input":{"channels":2,"length":8},"encoder":"e"}],"encoders":{"e":{"layers":[{"type":"conv1d","out":2,"taps":16777216,"dilation":16777216,"padding":"valid"},{"type":"flatten"}]}},"loss":{"type":"softmax_cross_entropy"}})",
      // residual blocks nested without end
      R"({"branches":[{"input":{"features":4},"encoder":"e"}],"encoders":{"e":{"layers":[{"type":"residual","layers":[{"type":"residual","layers":[{"type":"residual","layers":[{"type":"residual","layers":[{"type":"residual","layers":[{"type":"residual","layers":[{"type":"residual","layers":[{"type":"residual","layers":[{"type":"residual","layers":[{"type":"relu"}]}]}]}]}]}]}]}]}]}]}},"loss":{"type":"softmax_cross_entropy"}})",
      // a pool window longer than the sequence, an empty encoder, an unused encoder
      R"({"branches":[{"input":{"channels":2,"length":3},"encoder":"e"}],"encoders":{"e":{"layers":[{"type":"max_pool1d","window":4},{"type":"flatten"}]}},"loss":{"type":"softmax_cross_entropy"}})",
      R"({"branches":[{"input":{"features":4},"encoder":"e"}],"encoders":{"e":{"layers":[]}},"loss":{"type":"softmax_cross_entropy"}})",
      R"({"branches":[{"input":{"features":4},"encoder":"e"}],"encoders":{"e":{"layers":[{"type":"linear","out":3}]},"f":{"layers":[{"type":"relu"}]}},"loss":{"type":"softmax_cross_entropy"}})",
      // stages that do not cover the layers, a misspelt key
      R"({"branches":[{"input":{"features":4},"encoder":"e"}],"encoders":{"e":{"stages":[1,1],"layers":[{"type":"linear","out":3}]}},"loss":{"type":"softmax_cross_entropy"}})",
      R"({"branches":[{"input":{"features":4},"encoder":"e"}],"encoders":{"e":{"layers":[{"type":"linear","out":3,"dilaton":2}]}},"loss":{"type":"softmax_cross_entropy"}})",
  };
  for (const char* d : docs) EXPECT_FALSE(parses(d)) << d;
}

TEST(ModelFileFuzz, RandomByteMutationsAreAnErrorOrAValidModel) {
  const std::string text = example("residual-conv");
  std::mt19937_64 rng(11);
  const std::string alphabet = "{}[]\":,0123456789-.eE truefalsnul\\x";
  for (int trial = 0; trial < 3000 / REMATCH_TEST_SCALE; ++trial) {
    std::string t = text;
    const int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0: t[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: t.erase(at, 1 + rng() % 8); break;
        default: t.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
      if (t.empty()) t = "{";
    }
    parses(t);
  }
}

}  // namespace
}  // namespace rematch::models
