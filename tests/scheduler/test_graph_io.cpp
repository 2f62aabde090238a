// Graph and schedule files (docs/model.md#files): both graph layouts, every error naming its key and
// index, robustness against truncated, mutated and retyped files (parse or InputError, nothing
// else), and the graph_to_json round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "scheduler/graph.hpp"
#include "scheduler/io/graph_io.hpp"
#include "scheduler/io/schedule_io.hpp"
#include "tests/reference_bridge.hpp"
#include "tests/test_scale.hpp"

namespace rematch {
namespace {

using nlohmann::json;

// A 3-stage chain in rotor's layout: bw and btmp carry the loss as their last entry.
json chain_doc() {
  return json::parse(R"({"chain": {"fw": [1, 2, 3], "bw": [4, 5, 6, 7], "cw": [1, 2, 3, 4],
                                    "cbw": [1, 3, 5, 7], "ftmp": [0, 1, 0], "btmp": [2, 0, 1, 9]}})");
}

// A join: branch 0 (2 stages, copies 2) and branch 1 (1 stage).
json join_doc() {
  return json::parse(R"({"join": {"branches": [
      {"fw": [1, 2], "bw": [3, 4], "cw": [1, 2, 3], "cbw": [1, 4, 5], "ftmp": [0, 1], "btmp": [1, 0], "copies": 2},
      {"fw": [5], "bw": [6], "cw": [2, 2], "cbw": [2, 3], "ftmp": [1], "btmp": [2]}],
      "loss": {"time": 8, "tmp": 3}}})");
}

// The message of the InputError thrown by `parse`, or a failure when it throws anything else.
std::string error_of(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-InputError: " << e.what();
    return "";
  }
  ADD_FAILURE() << "accepted the input";
  return "";
}

std::string graph_error(const json& doc) {
  return error_of([&] { parse_graph(doc.dump()); });
}
std::string graph_error(const std::string& text) {
  return error_of([&] { parse_graph(text); });
}

// Graph has no operator== (Branch and Loss do).
::testing::AssertionResult same_graph(const Graph& a, const Graph& b) {
  if (a.branches == b.branches && a.loss == b.loss) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "graphs differ:\n" << graph_to_json(a, false) << "\n" << graph_to_json(b, false);
}

#define EXPECT_MENTIONS(message, part) \
  EXPECT_NE((message).find(part), std::string::npos) << "message: " << (message) << "\nexpected to mention: " << (part)

// ------------------------------------------------------------------------------------------------
// Valid layouts.

TEST(GraphLayoutChain, LastBwAndBtmpEntriesAreTheLoss) {
  const Graph g = parse_graph(chain_doc().dump());
  ASSERT_EQ(g.num_branches(), 1);
  const Branch& b = g.branches[0];
  EXPECT_EQ(b.fw, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(b.bw, (std::vector<double>{4, 5, 6}));
  EXPECT_EQ(b.cw, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(b.cbw, (std::vector<double>{1, 3, 5, 7}));
  EXPECT_EQ(b.ftmp, (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(b.btmp, (std::vector<double>{2, 0, 1}));
  EXPECT_EQ(g.loss.time, 7);
  EXPECT_EQ(g.loss.tmp, 9);
  EXPECT_NO_THROW(validate(g));
}

TEST(GraphLayoutChain, SpecChainAParses) {
  const Graph g = parse_graph(R"({"chain": {"fw": [1,1,1,1,1,1], "bw": [1,1,1,1,1,1,0], "cw": [1,1,1,1,1,1,1],
      "cbw": [1,2,2,2,2,2,2], "ftmp": [0,0,0,0,0,0], "btmp": [0,0,0,0,0,0,0]}})");
  EXPECT_EQ(g.branches[0].stages(), 6);
  EXPECT_EQ(g.store_all_time(), 12);
  EXPECT_EQ(g.initial_memory(), 1);
}

TEST(GraphLayoutChain, FractionalAndZeroValuesAreAccepted) {
  json doc = chain_doc();
  doc["chain"]["fw"] = {0, 0.5, 1e-300};
  doc["chain"]["ftmp"] = {0.25, 0, -0.0};  // -0 is not negative
  const Graph g = parse_graph(doc.dump());
  EXPECT_EQ(g.branches[0].fw[1], 0.5);
  EXPECT_EQ(g.branches[0].ftmp[2], 0.0);
}

TEST(GraphLayoutJoin, CopiesRepeatTheBranch) {
  const Graph g = parse_graph(join_doc().dump());
  ASSERT_EQ(g.num_branches(), 3);
  EXPECT_EQ(g.branches[0], g.branches[1]);
  EXPECT_EQ(g.branches[0].stages(), 2);
  EXPECT_EQ(g.branches[0].cbw, (std::vector<double>{1, 4, 5}));
  EXPECT_EQ(g.branches[2].stages(), 1);
  EXPECT_EQ(g.branches[2].btmp, (std::vector<double>{2}));
  EXPECT_EQ(g.loss.time, 8);
  EXPECT_EQ(g.loss.tmp, 3);
  EXPECT_FALSE(g.is_chain());
}

TEST(GraphLayoutJoin, CopiesOneIsASingleBranchAndAOneBranchJoinIsAChain) {
  json doc = join_doc();
  doc["join"]["branches"][0]["copies"] = 1;
  EXPECT_EQ(parse_graph(doc.dump()).num_branches(), 2);
  doc["join"]["branches"].erase(1);
  const Graph g = parse_graph(doc.dump());
  EXPECT_TRUE(g.is_chain());
}

TEST(GraphLayoutJoin, CopiesUpToTheBranchLimitAccepted) {
  json doc = join_doc();  // branch 0 has copies 2
  doc["join"]["branches"][1]["copies"] = GraphLimits::max_branches - 2;
  EXPECT_EQ(parse_graph(doc.dump()).num_branches(), GraphLimits::max_branches);
  doc["join"]["branches"][1]["copies"] = GraphLimits::max_branches - 1;
  EXPECT_MENTIONS(graph_error(doc), "join.branches[1].copies");
}

TEST(GraphLayoutUnknownKeys, AreIgnoredAtEveryLevel) {
  json chain = chain_doc();
  chain["name"] = "resnet";
  chain["units"] = {{"time", "ms"}, {"memory", "bytes"}};
  chain["chain"]["names"] = {"a", "b", "c"};
  chain["chain"]["meta"] = nullptr;
  EXPECT_TRUE(same_graph(parse_graph(chain.dump()), parse_graph(chain_doc().dump())));

  json join = join_doc();
  join["version"] = 2;
  join["join"]["comment"] = {1, 2, {{"x", nullptr}}};
  join["join"]["branches"][1]["name"] = "text encoder";
  join["join"]["branches"][1]["fw_ms"] = "not checked";
  join["join"]["loss"]["name"] = "contrastive";
  EXPECT_TRUE(same_graph(parse_graph(join.dump()), parse_graph(join_doc().dump())));
}

// ------------------------------------------------------------------------------------------------
// Errors: each names the key (and the index where there is one).

const char* const chain_keys[] = {"fw", "bw", "cw", "cbw", "ftmp", "btmp"};

TEST(GraphErrorsMissing, MissingArrayNamesTheKey) {
  for (const char* key : chain_keys) {
    json doc = chain_doc();
    doc["chain"].erase(key);
    const std::string m = graph_error(doc);
    EXPECT_MENTIONS(m, std::string("chain.") + key);
    EXPECT_MENTIONS(m, "missing");
  }
  for (const char* key : chain_keys) {
    json doc = join_doc();
    doc["join"]["branches"][1].erase(key);
    const std::string m = graph_error(doc);
    EXPECT_MENTIONS(m, std::string("join.branches[1].") + key);
    EXPECT_MENTIONS(m, "missing");
  }
}

TEST(GraphErrorsMissing, MissingLossOrLossTimeNamesTheKey) {
  json doc = join_doc();
  doc["join"].erase("loss");
  EXPECT_MENTIONS(graph_error(doc), "join.loss");
  doc = join_doc();
  doc["join"]["loss"].erase("time");
  EXPECT_MENTIONS(graph_error(doc), "join.loss.time");
  doc = join_doc();
  doc["join"].erase("branches");
  EXPECT_MENTIONS(graph_error(doc), "join.branches");
}

TEST(GraphErrorsLayout, NeedsExactlyOneOfChainAndJoin) {
  json both = chain_doc();
  both["join"] = join_doc()["join"];
  EXPECT_MENTIONS(graph_error(both), "chain");
  EXPECT_MENTIONS(graph_error(both), "join");
  const std::string neither = graph_error(json{{"graph", chain_doc()["chain"]}});
  EXPECT_MENTIONS(neither, "chain");
  EXPECT_MENTIONS(neither, "join");
  for (const char* text : {"[]", "3", "null", "\"chain\"", "{}", "[{\"chain\": 1}]"})
    EXPECT_MENTIONS(graph_error(std::string(text)), "chain");
}

TEST(GraphErrorsLayout, ChainOrJoinOrBranchOrLossNotAnObject) {
  for (json value : {json(1), json("x"), json(nullptr), json::array({1, 2}), json(true)}) {
    EXPECT_MENTIONS(graph_error(json{{"chain", value}}), "chain");
    EXPECT_MENTIONS(graph_error(json{{"join", value}}), "join");
    json doc = join_doc();
    doc["join"]["branches"][1] = value;
    EXPECT_MENTIONS(graph_error(doc), "join.branches[1]");
    doc = join_doc();
    doc["join"]["loss"] = value;
    EXPECT_MENTIONS(graph_error(doc), "join.loss");
  }
  json doc = join_doc();
  doc["join"]["branches"] = json::array();
  EXPECT_MENTIONS(graph_error(doc), "join.branches");
  doc["join"]["branches"] = json::object();
  EXPECT_MENTIONS(graph_error(doc), "join.branches");
}

TEST(GraphErrorsLength, WrongLengthNamesTheKeyAndBothLengths) {
  // fw fixes n = 3; bw and btmp need n + 1 = 4 in rotor's layout, cw and cbw n + 1, ftmp n.
  const std::pair<const char*, std::size_t> expected[] = {{"bw", 4}, {"cw", 4}, {"cbw", 4}, {"ftmp", 3}, {"btmp", 4}};
  for (auto [key, length] : expected) {
    for (std::size_t wrong : {length - 1, length + 1, std::size_t{0}}) {
      json doc = chain_doc();
      doc["chain"][key] = std::vector<double>(wrong, 1.0);
      const std::string m = graph_error(doc);
      EXPECT_MENTIONS(m, std::string("chain.") + key);
      EXPECT_MENTIONS(m, std::to_string(wrong));
      EXPECT_MENTIONS(m, std::to_string(length));
    }
  }
  // Join layout: bw and btmp have n entries (the loss has its own object).
  const std::pair<const char*, std::size_t> join_expected[] = {{"bw", 2}, {"cw", 3}, {"cbw", 3}, {"ftmp", 2}, {"btmp", 2}};
  for (auto [key, length] : join_expected) {
    json doc = join_doc();
    doc["join"]["branches"][0][key] = std::vector<double>(length + 1, 5.0);
    const std::string m = graph_error(doc);
    EXPECT_MENTIONS(m, std::string("join.branches[0].") + key);
    EXPECT_MENTIONS(m, std::to_string(length));
  }
}

TEST(GraphErrorsLength, EmptyFwIsAnError) {
  json doc = chain_doc();
  doc["chain"]["fw"] = json::array();
  EXPECT_MENTIONS(graph_error(doc), "chain.fw");
  doc = join_doc();
  doc["join"]["branches"][1]["fw"] = json::array();
  EXPECT_MENTIONS(graph_error(doc), "join.branches[1].fw");
}

TEST(GraphErrorsValues, NegativeNamesTheKeyAndIndex) {
  for (const char* key : chain_keys) {
    json doc = chain_doc();
    doc["chain"][key][2] = -1;
    const std::string m = graph_error(doc);
    EXPECT_MENTIONS(m, std::string("chain.") + key + "[2]");
    EXPECT_MENTIONS(m, "negative");
  }
  for (const char* key : chain_keys) {
    json doc = join_doc();
    doc["join"]["branches"][1][key][0] = -0.5;
    const std::string m = graph_error(doc);
    EXPECT_MENTIONS(m, std::string("join.branches[1].") + key + "[0]");
    EXPECT_MENTIONS(m, "negative");
  }
  json doc = join_doc();
  doc["join"]["loss"]["time"] = -2;
  EXPECT_MENTIONS(graph_error(doc), "join.loss.time");
  doc = join_doc();
  doc["join"]["loss"]["tmp"] = -1e-9;
  EXPECT_MENTIONS(graph_error(doc), "join.loss.tmp");
}

TEST(GraphErrorsValues, JsonHasNoNanOrInfinityLiterals) {
  for (const char* literal : {"NaN", "nan", "Infinity", "-Infinity", "inf", "1e", "--1", "0x10", "+1", ".5"}) {
    const std::string text = R"({"chain": {"fw": [1, )" + std::string(literal) +
                             R"(, 3], "bw": [4, 5, 6, 7], "cw": [1, 2, 3, 4], "cbw": [1, 3, 5, 7], "ftmp": [0, 1, 0], "btmp": [2, 0, 1, 9]}})";
    EXPECT_MENTIONS(graph_error(text), "not valid JSON") << literal;
  }
}

TEST(GraphErrorsValues, ValuesUpToTheLimitAreAcceptedAndAboveRefusedWithTheKey) {
  json doc = chain_doc();
  doc["chain"]["fw"][1] = GraphLimits::max_value;
  EXPECT_EQ(parse_graph(doc.dump()).branches[0].fw[1], GraphLimits::max_value);
  for (const char* key : {"fw", "bw", "cw", "cbw", "ftmp", "btmp"}) {
    json bad = chain_doc();
    bad["chain"][key][1] = std::numeric_limits<double>::max();
    EXPECT_MENTIONS(graph_error(bad), "chain." + std::string(key) + "[1]");
  }
}

TEST(GraphErrorsValues, SumsAboveTheLimitAreRefusedWithTheKey) {
  json doc = chain_doc();
  doc["chain"]["fw"][0] = GraphLimits::max_value;
  doc["chain"]["fw"][1] = GraphLimits::max_value;
  EXPECT_MENTIONS(graph_error(doc), "chain.fw");
  json join = join_doc();  // branch 0 has copies 2: its sizes count twice
  join["join"]["branches"][0]["cbw"][1] = GraphLimits::max_value * 0.6;
  EXPECT_MENTIONS(graph_error(join), "join.branches[0].cbw");
  join = join_doc();
  join["join"]["branches"][0]["fw"][0] = GraphLimits::max_value / 2;
  join["join"]["loss"]["time"] = GraphLimits::max_value;
  EXPECT_MENTIONS(graph_error(join), "join.loss.time");
}

TEST(GraphErrorsLimits, StagesBranchesAndOrdersAboveTheLimitsAreRefused) {
  const auto chain_of = [](int n) {
    const std::vector<double> ones(n, 1), ones1(n + 1, 1), zeros(n, 0), zeros1(n + 1, 0);
    return json{{"chain", {{"fw", ones}, {"bw", ones1}, {"cw", ones1}, {"cbw", ones1}, {"ftmp", zeros}, {"btmp", zeros1}}}};
  };
  EXPECT_EQ(parse_graph(chain_of(GraphLimits::max_stages).dump()).branches[0].stages(), GraphLimits::max_stages);
  EXPECT_MENTIONS(graph_error(chain_of(GraphLimits::max_stages + 1)), "stages");
  // Seven distinct one-stage branches: 5040 forward orders.
  json join = {{"join", {{"branches", json::array()}, {"loss", {{"time", 1}}}}}};
  for (int k = 0; k < 7; ++k)
    join["join"]["branches"].push_back({{"fw", {k + 1}}, {"bw", {1}}, {"cw", {1, 1}}, {"cbw", {1, 1}}, {"ftmp", {0}}, {"btmp", {0}}});
  EXPECT_MENTIONS(graph_error(join), "forward orders");
  join["join"]["branches"].erase(6);
  EXPECT_EQ(parse_graph(join.dump()).num_branches(), 6);
  for (int k = 0; k < 3; ++k) join["join"]["branches"].push_back(join["join"]["branches"][0]);
  EXPECT_MENTIONS(graph_error(join), "branches");
}

// nlohmann 3.11 does not turn 1e999 into infinity: it throws json::out_of_range (406, "number
// overflow parsing '1e999'"), which json_reader::parse does not catch. BUG (see report): the
// error escapes as a non-InputError; the CLI prints "internal error: [json.exception...]".
TEST(GraphErrorsValues, OverflowingNumberIsAnInputError) {
  for (const char* literal : {"1e999", "-1e999", "1e309"}) {
    const std::string text = R"({"chain": {"fw": [1, )" + std::string(literal) +
                             R"(, 3], "bw": [4, 5, 6, 7], "cw": [1, 2, 3, 4], "cbw": [1, 3, 5, 7], "ftmp": [0, 1, 0], "btmp": [2, 0, 1, 9]}})";
    const std::string m = graph_error(text);
    EXPECT_TRUE(m.find("chain.fw[1]") != std::string::npos || m.find(literal) != std::string::npos) << m;
  }
}

TEST(GraphErrorsValues, InfiniteValueInAGraphObjectIsRejectedByValidate) {
  Graph g = parse_graph(chain_doc().dump());
  g.branches[0].cw[1] = std::numeric_limits<double>::infinity();
  try {
    validate(g);
    ADD_FAILURE() << "accepted an infinite size";
  } catch (const InputError& e) {
    EXPECT_MENTIONS(std::string(e.what()), "cw[1]");
  }
  g = parse_graph(chain_doc().dump());
  g.branches[0].fw[0] = std::nan("");
  EXPECT_THROW(validate(g), InputError);
  g = parse_graph(chain_doc().dump());
  g.loss.tmp = std::numeric_limits<double>::infinity();
  EXPECT_THROW(validate(g), InputError);
}

TEST(GraphErrorsTypes, WrongElementTypeNamesTheKeyAndIndex) {
  const json bad_values[] = {json("3"), json(nullptr), json(true), json(false), json::object({{"v", 1}}),
                             json::array({1}), json::array()};
  for (const json& bad : bad_values) {
    for (const char* key : chain_keys) {
      json doc = chain_doc();
      doc["chain"][key][1] = bad;
      const std::string m = graph_error(doc);
      EXPECT_MENTIONS(m, std::string("chain.") + key + "[1]");
      EXPECT_MENTIONS(m, "not a number");
    }
    json doc = join_doc();
    doc["join"]["branches"][1]["cbw"][1] = bad;
    EXPECT_MENTIONS(graph_error(doc), "join.branches[1].cbw[1]");
    doc = join_doc();
    doc["join"]["loss"]["time"] = bad;
    EXPECT_MENTIONS(graph_error(doc), "join.loss.time");
    doc = join_doc();
    doc["join"]["loss"]["tmp"] = bad;
    EXPECT_MENTIONS(graph_error(doc), "join.loss.tmp");
  }
}

TEST(GraphErrorsTypes, ArrayReplacedByAScalarNamesTheKey) {
  for (const json& bad : {json("1,2,3"), json(nullptr), json(true), json(3), json::object()}) {
    for (const char* key : chain_keys) {
      json doc = chain_doc();
      doc["chain"][key] = bad;
      const std::string m = graph_error(doc);
      EXPECT_MENTIONS(m, std::string("chain.") + key);
      EXPECT_MENTIONS(m, "array");
    }
  }
}

TEST(GraphErrorsValues, CbwBelowCwNamesTheKeyAndIndex) {
  json doc = chain_doc();
  doc["chain"]["cbw"][2] = 2.5;  // cw[2] = 3
  std::string m = graph_error(doc);
  EXPECT_MENTIONS(m, "chain.cbw[2]");
  EXPECT_MENTIONS(m, "cw[2]");
  doc = chain_doc();
  doc["chain"]["cbw"][0] = 0;  // cbw[0] = cw[0] in the model
  EXPECT_MENTIONS(graph_error(doc), "cbw[0]");
  doc = join_doc();
  doc["join"]["branches"][0]["cbw"][1] = 1;  // cw[1] = 2
  m = graph_error(doc);
  EXPECT_MENTIONS(m, "join.branches[0].cbw[1]");
  EXPECT_MENTIONS(m, "cw[1]");
}

// BUG (see report): cbw < cw is checked by validate() after "copies" expanded the branches, so
// the index named is the expanded one: file branch 1 after a branch with copies 2 is reported as
// "join.branches[2]". The file's own index should be named.
TEST(GraphErrorsValues, CbwBelowCwAfterCopiesNamesTheFileIndex) {
  json doc = join_doc();  // branch 0 has copies 2
  doc["join"]["branches"][1]["cbw"][1] = 1;  // cw[1] = 2
  const std::string m = graph_error(doc);
  EXPECT_MENTIONS(m, "join.branches[1].cbw[1]");
}

TEST(GraphErrorsCopies, OutOfRangeOrNonIntegerCopiesNameTheKey) {
  const json bad_values[] = {json(0),  json(-1), json(-1000000), json(1025), json(1u << 31), json(1ull << 63),
                             json(18446744073709551615ull), json(1e30), json(1.5), json(2.0), json("2"),
                             json(nullptr), json(true), json::array({2}), json::object()};
  for (const json& bad : bad_values) {
    json doc = join_doc();
    doc["join"]["branches"][1]["copies"] = bad;
    EXPECT_MENTIONS(graph_error(doc), "join.branches[1].copies") << bad.dump();
  }
  // Textual forms nlohmann reads as float (beyond 64-bit integers) or as huge unsigned.
  for (const char* text : {"99999999999999999999999", "4294967296", "-9223372036854775808", "2.5e3"}) {
    std::string s = join_doc().dump();
    const std::string needle = "\"copies\":2";
    ASSERT_NE(s.find(needle), std::string::npos);
    s.replace(s.find(needle), needle.size(), "\"copies\":" + std::string(text));
    EXPECT_MENTIONS(error_of([&] { parse_graph(s); }), "join.branches[0].copies") << text;
  }
}

TEST(GraphFiles, MissingFileNamesThePath) {
  const std::string m = error_of([] { read_graph_file("/nonexistent/dir/graph.json"); });
  EXPECT_MENTIONS(m, "/nonexistent/dir/graph.json");
  EXPECT_MENTIONS(error_of([] { read_schedule_file("/nonexistent/s.json"); }), "/nonexistent/s.json");
}

TEST(GraphErrorsSyntax, MalformedJsonIsAnInputError) {
  for (const char* text : {"", " ", "{", "{\"chain\":", "{\"chain\": {\"fw\": [1,]}}", "{'chain': 1}",
                           "{\"chain\": {}} trailing", "\xef\xbb\xbf", "\x80\x81", "{\"a\": \"\xff\"}"}) {
    const std::string m = graph_error(std::string(text));
    EXPECT_MENTIONS(m, "graph file");
  }
}

// ------------------------------------------------------------------------------------------------
// Schedules.

json schedule_doc() {
  return json::parse(R"({"solver": "optimal", "makespan": 19, "ops": [
      {"op": "F_all", "branch": 0, "stage": 0}, {"op": "F_ck", "stage": 1}, {"op": "F_none", "branch": 1, "stage": 2},
      {"op": "loss"}, {"op": "B", "branch": 0, "stage": 1}, {"op": "drop", "item": "x", "branch": 2, "stage": 3},
      {"op": "drop", "item": "xbar", "stage": 0}]})");
}

TEST(ScheduleParsing, ReadsEveryOpKindAndDefaultsBranchToZero) {
  const Schedule s = parse_schedule(schedule_doc().dump());
  const Schedule expected = {Op::f_all(0, 0), Op::f_ck(0, 1),   Op::f_none(1, 2),           Op::loss_op(),
                             Op::b(0, 1),     Op::drop(Item::x, 2, 3), Op::drop(Item::xbar, 0, 0)};
  EXPECT_EQ(s, expected);
}

TEST(ScheduleParsing, LossIgnoresStageAndOtherKeysAreIgnored) {
  const Schedule s = parse_schedule(R"({"ops": [{"op": "loss", "stage": "whatever", "note": 1}], "x": null})");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].kind, OpKind::loss);
  EXPECT_TRUE(parse_schedule(R"({"ops": []})").empty());
}

TEST(ScheduleParsing, LargestIntStageIsKept) {
  const Schedule s = parse_schedule(R"({"ops": [{"op": "B", "stage": 2147483647, "branch": 2147483647}]})");
  EXPECT_EQ(s[0].stage, std::numeric_limits<int>::max());
  EXPECT_EQ(s[0].branch, std::numeric_limits<int>::max());
}

TEST(ScheduleErrors, EachErrorNamesTheOpIndexAndKey) {
  struct Case {
    const char* ops;  // the ops array
    const char* names;
  };
  const Case cases[] = {
      {R"([{"op": "F_all", "stage": 0}, {"op": "F_fast", "stage": 1}])", "ops[1].op"},
      {R"([{"op": "F_all"}])", "ops[0].stage"},
      {R"([{"stage": 0}])", "ops[0].op"},
      {R"([{"op": 3, "stage": 0}])", "ops[0].op"},
      {R"([{"op": null, "stage": 0}])", "ops[0].op"},
      {R"([{"op": "f_all", "stage": 0}])", "ops[0].op"},
      {R"([{"op": "F_all", "stage": -1}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": 1.5}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": 1.0}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": "1"}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": null}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": [1]}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": 1e30}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": 9223372036854775808}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": 18446744073709551615}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": 18446744073709551616}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": -9223372036854775808}])", "ops[0].stage"},
      {R"([{"op": "F_all", "stage": 4294967296}])", "ops[0].stage"},
      {R"([{"op": "B", "stage": 0, "branch": -1}])", "ops[0].branch"},
      {R"([{"op": "B", "stage": 0, "branch": "0"}])", "ops[0].branch"},
      {R"([{"op": "B", "stage": 0, "branch": 1e30}])", "ops[0].branch"},
      {R"([{"op": "drop", "stage": 0}])", "ops[0].item"},
      {R"([{"op": "drop", "stage": 0, "item": "y"}])", "ops[0].item"},
      {R"([{"op": "drop", "stage": 0, "item": "X"}])", "ops[0].item"},
      {R"([{"op": "drop", "stage": 0, "item": 0}])", "ops[0].item"},
      {R"([{"op": "drop", "stage": 0, "item": ["x"]}])", "ops[0].item"},
      {R"([{"op": "loss"}, 3])", "ops[1]"},
      {R"([{"op": "loss"}, null])", "ops[1]"},
      {R"([{"op": "loss"}, ["F_all", 0]])", "ops[1]"},
  };
  for (const Case& c : cases) {
    const std::string text = std::string(R"({"ops": )") + c.ops + "}";
    const std::string m = error_of([&] { parse_schedule(text); });
    EXPECT_MENTIONS(m, c.names) << text;
  }
  for (const char* text : {"{}", "[]", "{\"ops\": {}}", "{\"ops\": 1}", "{\"ops\": null}", "", "{\"ops\": ["})
    EXPECT_MENTIONS(error_of([&] { parse_schedule(text); }), "schedule") << text;
}

// BUG (see report): json_reader::non_negative_integer accepts 2^31 (its bound is `> 2^31`), and
// parse_schedule casts it to int: stage 2147483648 becomes -2147483648 (and the simulator then
// reports "stage -2147483648 out of range"). Values above INT_MAX should be rejected naming the key.
TEST(ScheduleErrors, StageOrBranchTwoToThe31IsRejected) {
  EXPECT_MENTIONS(error_of([] { parse_schedule(R"({"ops": [{"op": "F_all", "stage": 2147483648}]})"); }),
                  "ops[0].stage");
  EXPECT_MENTIONS(error_of([] { parse_schedule(R"({"ops": [{"op": "F_all", "stage": 0, "branch": 2147483648}]})"); }),
                  "ops[0].branch");
}

TEST(ScheduleParsing, ParsedIndicesAreNeverNegative) {
  // Whatever the file says, a parsed op never carries a negative branch or stage unless it is
  // rejected. (2^31 is excluded here: see StageOrBranchTwoToThe31IsRejected.)
  for (const char* value : {"0", "1", "2147483647", "2147483649", "4294967295", "4294967296", "9223372036854775807"}) {
    const std::string text = std::string(R"({"ops": [{"op": "F_ck", "stage": )") + value + R"(, "branch": )" + value + "}]}";
    try {
      const Schedule s = parse_schedule(text);
      EXPECT_GE(s[0].stage, 0) << value;
      EXPECT_GE(s[0].branch, 0) << value;
    } catch (const InputError&) {
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Robustness: truncations, byte mutations, value substitutions. Outcome must be a valid Graph or
// an InputError; any other exception fails (a crash fails the whole binary; run under ASan).

struct Outcomes {
  int parsed = 0, rejected = 0, other = 0;
  std::vector<std::string> failures;
};

void try_graph(const std::string& text, Outcomes& out) {
  try {
    const Graph g = parse_graph(text);
    validate(g);
    ++out.parsed;
  } catch (const InputError&) {
    ++out.rejected;
  } catch (const std::exception& e) {
    ++out.other;
    if (out.failures.size() < 5) out.failures.push_back(std::string(e.what()) + "  <-  " + text.substr(0, 300));
  }
}

void try_schedule(const std::string& text, Outcomes& out) {
  try {
    parse_schedule(text);
    ++out.parsed;
  } catch (const InputError&) {
    ++out.rejected;
  } catch (const std::exception& e) {
    ++out.other;
    if (out.failures.size() < 5) out.failures.push_back(std::string(e.what()) + "  <-  " + text.substr(0, 300));
  }
}

void expect_only_input_errors(const Outcomes& out, const char* what) {
  EXPECT_EQ(out.other, 0) << what;
  for (const std::string& f : out.failures) ADD_FAILURE() << what << ": " << f;
}

std::vector<std::string> graph_samples() {
  json unknown = chain_doc();
  unknown["meta"] = {{"name", "x"}, {"list", {1, 2, {{"deep", nullptr}}}}};
  return {chain_doc().dump(), join_doc().dump(1), unknown.dump()};
}

using Parse = void (*)(const std::string&, Outcomes&);

void truncations(const std::vector<std::string>& samples, Parse parse, const char* what) {
  Outcomes out;
  for (const std::string& text : samples)
    for (std::size_t len = 0; len <= text.size(); ++len) parse(text.substr(0, len), out);
  expect_only_input_errors(out, what);
  EXPECT_GT(out.rejected, 0);
  EXPECT_GT(out.parsed, 0) << "the full texts parse";
}

void mutations(const std::vector<std::string>& samples, Parse parse, const char* what, int per_sample) {
  static const std::string interesting = "{}[]:,\"-+.0123456789eEntfrul \\/\n\t";
  std::mt19937_64 rng(12345);
  Outcomes out;
  for (const std::string& original : samples) {
    for (int k = 0; k < per_sample; ++k) {
      std::string text = original;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits; ++e) {
        const std::size_t pos = rng() % text.size();
        const char c = (rng() % 4 == 0) ? static_cast<char>(rng() % 256) : interesting[rng() % interesting.size()];
        switch (rng() % 3) {
          case 0: text[pos] = c; break;
          case 1: text = text.substr(0, pos) + c + text.substr(pos); break;
          default: text.erase(pos, 1); break;
        }
        if (text.empty()) text.push_back('{');
      }
      parse(text, out);
    }
  }
  expect_only_input_errors(out, what);
  EXPECT_GT(out.rejected, 0);
}

// Every JSON pointer of `doc` (containers and leaves), root excluded.
void pointers(const json& value, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      out.push_back(at / it.key());
      pointers(it.value(), at / it.key(), out);
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      out.push_back(at / i);
      pointers(value[i], at / i, out);
    }
  }
}

std::vector<json> substitutes() {
  return {json(nullptr), json(true),  json(false), json(0),    json(-1),         json(-0.0),
          json(0.5),     json(1e308), json(-1e308), json(1e30), json(1ull << 31), json(1ull << 63),
          json(18446744073709551615ull), json(-9223372036854775807ll - 1), json(""), json("x"), json("xbar"),
          json("F_all"), json("loss"), json::array(), json::array({1}), json::array({json::array({-1})}),
          json::object(), json::object({{"op", "loss"}}), json(1024), json(1025), json(3)};
}

void substitutions(const std::vector<json>& docs, Parse parse, const char* what) {
  Outcomes out;
  const std::vector<json> subs = substitutes();
  for (const json& doc : docs) {
    std::vector<json::json_pointer> where;
    pointers(doc, json::json_pointer(), where);
    for (const auto& p : where)
      for (const json& s : subs) {
        json changed = doc;
        changed[p] = s;
        parse(changed.dump(), out);
      }
    // Deletions of each key or element.
    for (const auto& p : where) {
      json changed = doc;
      json& parent = changed[p.parent_pointer()];
      if (parent.is_object()) parent.erase(p.back());
      else parent.erase(static_cast<std::size_t>(std::stoul(p.back())));
      parse(changed.dump(), out);
    }
    // Random pairs of substitutions.
    std::mt19937_64 rng(7);
    for (int k = 0; k < 2000 / REMATCH_TEST_SCALE; ++k) {
      json changed = doc;
      for (int e = 0; e < 2; ++e) {
        std::vector<json::json_pointer> now;
        pointers(changed, json::json_pointer(), now);
        if (now.empty()) break;
        changed[now[rng() % now.size()]] = subs[rng() % subs.size()];
      }
      parse(changed.dump(), out);
    }
  }
  expect_only_input_errors(out, what);
  EXPECT_GT(out.rejected, 0);
  EXPECT_GT(out.parsed, 0);
}

TEST(GraphRobustness, EveryTruncationParsesOrThrowsInputError) {
  truncations(graph_samples(), try_graph, "graph truncation");
}

TEST(GraphRobustness, RandomByteMutationsParseOrThrowInputError) {
  mutations(graph_samples(), try_graph, "graph mutation", 4000 / REMATCH_TEST_SCALE);
}

TEST(GraphRobustness, ValueSubstitutionsAndDeletionsParseOrThrowInputError) {
  std::vector<json> docs;
  for (const std::string& s : graph_samples()) docs.push_back(json::parse(s));
  substitutions(docs, try_graph, "graph substitution");
}

std::vector<std::string> schedule_samples() {
  return {schedule_doc().dump(), schedule_doc().dump(2), R"({"ops": [{"op": "loss"}]})"};
}

TEST(ScheduleRobustness, EveryTruncationParsesOrThrowsInputError) {
  truncations(schedule_samples(), try_schedule, "schedule truncation");
}

TEST(ScheduleRobustness, RandomByteMutationsParseOrThrowInputError) {
  mutations(schedule_samples(), try_schedule, "schedule mutation", 4000 / REMATCH_TEST_SCALE);
}

TEST(ScheduleRobustness, ValueSubstitutionsAndDeletionsParseOrThrowInputError) {
  substitutions({schedule_doc()}, try_schedule, "schedule substitution");
}

// BUG (see report): an error message dumps the offending value (json_reader non_negative_integer,
// schedule item): a deeply nested array there overflows the stack in json::dump (SIGSEGV), and a
// large one makes a message as large as the file. Deep nesting elsewhere is fine (next test).
TEST(ScheduleRobustness, DeeplyNestedValueInAnErrorIsAnInputError) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EXIT(
      {
        try {
          parse_schedule(R"({"ops": [{"op": "F_all", "stage": )" + deep + "}]}");
        } catch (const InputError&) {
          std::exit(0);
        }
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(GraphRobustness, DeeplyNestedUnknownValueIsIgnored) {
  const int depth = 100000 / REMATCH_TEST_SCALE;
  json doc = chain_doc();
  std::string text = doc.dump();
  text.insert(text.size() - 1, R"(, "meta": )" + std::string(depth, '[') + std::string(depth, ']'));
  EXPECT_TRUE(same_graph(parse_graph(text), parse_graph(doc.dump())));
}

// ------------------------------------------------------------------------------------------------
// Round trip.

void expect_round_trip(const Graph& g) {
  EXPECT_TRUE(same_graph(parse_graph(graph_to_json(g, false)), g));
  EXPECT_TRUE(same_graph(parse_graph(graph_to_json(g, true)), g));
}

TEST(GraphRoundTrip, ParsedFilesSurviveGraphToJson) {
  expect_round_trip(parse_graph(chain_doc().dump()));
  expect_round_trip(parse_graph(join_doc().dump()));
  const std::string chain_text = graph_to_json(parse_graph(chain_doc().dump()), true);
  EXPECT_TRUE(json::parse(chain_text).contains("chain"));
  const std::string as_join = graph_to_json(parse_graph(chain_doc().dump()), false);
  EXPECT_TRUE(json::parse(as_join).contains("join"));
  EXPECT_TRUE(json::parse(graph_to_json(parse_graph(join_doc().dump()), true)).contains("join"))
      << "as_chain is ignored for joins";
}

TEST(GraphRoundTrip, RandomChainsAndJoinsWithAwkwardDoublesSurvive) {
  std::mt19937_64 rng(99);
  reference::RandomSpec spec;
  spec.max_stages = 8;
  std::uniform_real_distribution<double> unit(0, 1);
  for (int k = 0; k < 300 / REMATCH_TEST_SCALE; ++k) {
    reference::Graph r = k % 3 == 0 ? reference::random_chain(rng, spec)
                                    : reference::random_join(rng, 1 + k % 4, k % 2 == 0, spec);
    Graph g = testing::from_reference(r);
    // Non-integers that need all 17 digits, tiny and huge values (the largest sizes a graph may sum to).
    const double huge = GraphLimits::max_value / 100;
    for (Branch& b : g.branches) {
      for (double& v : b.fw) v = v / 3.0;
      for (double& v : b.bw) v = v * 0.1 + unit(rng);
      for (std::size_t i = 0; i < b.cw.size(); ++i) {
        b.cw[i] *= (k % 5 == 0) ? huge / 7.0 : 1.0 / 7.0;
        b.cbw[i] = b.cw[i] + unit(rng) * ((k % 5 == 0) ? huge : 1.0);
      }
      if (!b.ftmp.empty()) b.ftmp[0] = 4.9e-324;
    }
    g.loss.time = unit(rng);
    ASSERT_NO_THROW(validate(g));
    expect_round_trip(g);
  }
}

}  // namespace
}  // namespace rematch

namespace rematch {
namespace {

TEST(SolutionJson, CarriesTheSpecKeysAndTheGroupingOnlyWhenThereIsOne) {
  Solution s;
  s.solver = "optimal";
  s.memory_limit = 10;
  s.makespan = 12;
  s.peak = 9;
  s.method = "m";
  s.ops = {Op::f_all(0, 0), Op::loss_op(), Op::b(0, 0)};
  const nlohmann::json plain = nlohmann::json::parse(solution_to_json(s, R"({"overhead_pct": 3})"));
  for (const char* key : {"solver", "exact", "memory_limit", "makespan", "peak_memory", "ops", "overhead_pct"})
    EXPECT_TRUE(plain.contains(key)) << key;
  EXPECT_FALSE(plain.contains("grouped_runs"));
  EXPECT_EQ(plain["ops"].size(), 3u);
  s.grouped_runs = 7;
  EXPECT_EQ(nlohmann::json::parse(solution_to_json(s, "{}"))["grouped_runs"], 7);
}

}  // namespace
}  // namespace rematch
