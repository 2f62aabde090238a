// The command-line contract (docs/model.md: files, command line, worked example), checked by running the real `rematch`
// binary on small temporary files: outputs, exit statuses (0 ok, 1 invalid schedule, 2 budget
// below the least feasible one, 3 bad input) and one-line error messages.
#include <gtest/gtest.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_harness.hpp"

namespace {

using namespace rematch::test;
using nlohmann::json;

constexpr const char* chain_a = R"({"chain": {"fw": [1,1,1,1,1,1], "bw": [1,1,1,1,1,1,0], "cw": [1,1,1,1,1,1,1],
"cbw": [1,2,2,2,2,2,2], "ftmp": [0,0,0,0,0,0], "btmp": [0,0,0,0,0,0,0]}})";

// Store-all on chain A (makespan 12, peak 15).
constexpr const char* store_all_ops = R"({"ops": [{"op": "F_all", "stage": 0}, {"op": "F_all", "stage": 1},
    {"op": "F_all", "stage": 2}, {"op": "F_all", "stage": 3}, {"op": "F_all", "stage": 4}, {"op": "F_all", "stage": 5},
    {"op": "loss"}, {"op": "B", "stage": 5}, {"op": "B", "stage": 4}, {"op": "B", "stage": 3},
    {"op": "B", "stage": 2}, {"op": "B", "stage": 1}, {"op": "B", "stage": 0}]})";

// docs/model.md#a-worked-example: optimal makespans of chain A for M = 6..15.
constexpr double chain_a_optimum[] = {27, 19, 17, 15, 15, 14, 14, 13, 13, 12};

constexpr const char* small_join = R"({"join": {"branches": [
  {"fw": [2, 1, 3], "bw": [2, 2, 4], "cw": [1, 2, 2, 1], "cbw": [1, 3, 4, 2], "ftmp": [0, 1, 0], "btmp": [1, 0, 0]},
  {"fw": [1, 1], "bw": [1, 2], "cw": [2, 1, 1], "cbw": [2, 2, 3], "ftmp": [0, 0], "btmp": [0, 1], "copies": 2}],
  "loss": {"time": 1, "tmp": 1}}})";

class Cli : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    write("a.json", chain_a);
    write("join.json", small_join);
  }

  // Runs and parses stdout as one JSON object on one line.
  json run_json(const std::vector<std::string>& args, int expected_status) const {
    const CliRun r = run(args);
    EXPECT_EQ(r.status, expected_status) << "stdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_EQ(count_lines(r.out), 1u) << r.out;
    EXPECT_EQ(r.err, "");
    json j;
    try {
      j = json::parse(r.out);
    } catch (const json::exception& e) {
      ADD_FAILURE() << "stdout is not JSON (" << e.what() << "): " << r.out;
    }
    EXPECT_TRUE(j.is_object()) << r.out;
    return j;
  }

  // A text-mode error: the status, nothing on stdout, one line on stderr.
  std::string expect_text_error(const std::vector<std::string>& args, int status) const {
    const CliRun r = run(args);
    std::string shown;
    for (const std::string& a : args) shown += a + " ";
    EXPECT_EQ(r.status, status) << shown << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_EQ(r.out, "") << shown;
    EXPECT_EQ(count_lines(r.err), 1u) << shown << "\nstderr: " << r.err;
    EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << shown << "\nstderr: " << r.err;
    return r.err;
  }

  // A JSON-mode error: the status, one JSON line with a string "error", nothing on stderr.
  json expect_json_error(std::vector<std::string> args, int status) const {
    args.push_back("--format");
    args.push_back("json");
    const json j = run_json(args, status);
    EXPECT_TRUE(j.contains("error") && j["error"].is_string()) << j.dump();
    if (j.contains("error")) {
      EXPECT_EQ(j["error"].get<std::string>().find('\n'), std::string::npos);
    }
    return j;
  }

  fs::path dir_;
};

#define EXPECT_MENTIONS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "text: " << (text) << "\nexpected to mention: " << (part)

// ------------------------------------------------------------------------------------------------
// solve

TEST_F(Cli, SolveTextReportsMakespanPeakAndOps) {
  const CliRun r = run({"solve", path("a.json"), "--memory", "7"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_MENTIONS(r.out, "makespan   19");
  EXPECT_MENTIONS(r.out, "peak       7");
  EXPECT_MENTIONS(r.out, "chain of 6 stages");
}

TEST_F(Cli, SolveJsonHasTheContractKeysAndSpecChainAOptima) {
  for (int m = 6; m <= 15; ++m) {
    const json j = run_json({"solve", path("a.json"), "--memory", std::to_string(m), "--format", "json"}, 0);
    for (const char* key : {"solver", "exact", "memory_limit", "makespan", "peak_memory", "ops"})
      ASSERT_TRUE(j.contains(key)) << key << " missing: " << j.dump();
    EXPECT_EQ(j["solver"], "optimal");
    EXPECT_TRUE(j["exact"].is_boolean());
    EXPECT_EQ(j["memory_limit"].get<double>(), m);
    EXPECT_EQ(j["makespan"].get<double>(), chain_a_optimum[m - 6]) << "M = " << m;
    EXPECT_LE(j["peak_memory"].get<double>(), m);
    ASSERT_TRUE(j["ops"].is_array());
    for (const json& op : j["ops"]) {
      ASSERT_TRUE(op.contains("op")) << op.dump();
      const std::string name = op["op"];
      if (name == "loss") continue;
      EXPECT_TRUE(op.contains("branch") && op.contains("stage")) << op.dump();
      if (name == "drop") EXPECT_TRUE(op["item"] == "x" || op["item"] == "xbar") << op.dump();
      else EXPECT_TRUE(name == "F_all" || name == "F_ck" || name == "F_none" || name == "B") << op.dump();
    }
  }
  const json big = run_json({"solve", path("a.json"), "--memory", "100", "--format", "json"}, 0);
  EXPECT_EQ(big["makespan"].get<double>(), 12);
  EXPECT_EQ(big["peak_memory"].get<double>(), 15) << "store-all's peak";
}

TEST_F(Cli, SolveJsonMakespanAndPeakEqualWhatSimulateMeasures) {
  struct Case {
    std::string graph, memory, solver;
  };
  const std::vector<Case> cases = {
      {"a.json", "6", "optimal"},      {"a.json", "7", "optimal"},       {"a.json", "11", "optimal"},
      {"a.json", "20", "store-all"},   {"a.json", "20", "recompute-all"}, {"a.json", "20", "segments:2"},
      {"a.json", "20", "sqrt"},        {"a.json", "20", "revolve"},      {"a.json", "9", "revolve"},
      {"join.json", "100", "store-all"}, {"join.json", "100", "recompute-all"}, {"join.json", "100", "sqrt"},
      {"join.json", "100", "segments:2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.graph + " --memory " + c.memory + " --solver " + c.solver);
    const CliRun solved = run({"solve", path(c.graph), "--memory", c.memory, "--solver", c.solver, "--format", "json"});
    ASSERT_EQ(solved.status, 0) << solved.out << solved.err;
    const json s = json::parse(solved.out);
    EXPECT_EQ(s["solver"], c.solver);
    EXPECT_LE(s["peak_memory"].get<double>(), std::stod(c.memory));
    // Only the ops go back in: simulate must not need anything else.
    const std::string schedule = write("schedule.json", json{{"ops", s["ops"]}}.dump());
    const json sim = run_json({"simulate", path(c.graph), schedule, "--memory", c.memory, "--format", "json"}, 0);
    EXPECT_EQ(sim["makespan"], s["makespan"]);
    EXPECT_EQ(sim["peak_memory"], s["peak_memory"]);
    // The whole solve output is accepted too.
    const std::string whole = write("whole.json", solved.out);
    const json sim2 = run_json({"simulate", path(c.graph), whole, "--format", "json"}, 0);
    EXPECT_EQ(sim2, sim);
  }
}

TEST_F(Cli, SolvePlotWritesAnSvgFile) {
  const std::string svg = path("out.svg");
  const CliRun r = run({"solve", path("a.json"), "--memory", "7", "--plot", svg});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(fs::exists(svg));
  const std::string text = slurp(svg);
  EXPECT_EQ(text.rfind("<svg", 0), 0u) << text.substr(0, 100);
  EXPECT_MENTIONS(text, "</svg>");
  EXPECT_MENTIONS(r.out, "makespan   19") << "the report is still printed";
  const json j = run_json({"solve", path("join.json"), "--memory", "100", "--solver", "sqrt", "--plot", path("j.svg"),
                           "--format", "json"}, 0);
  EXPECT_MENTIONS(slurp(path("j.svg")), "</svg>");
}

TEST_F(Cli, SolveBelowTheLeastBudgetExits2NamingIt) {
  for (const char* m : {"5", "5.5", "0", "1e-9"}) {
    const json j = expect_json_error({"solve", path("a.json"), "--memory", m}, 2);
    ASSERT_TRUE(j.contains("min_memory")) << j.dump();
    EXPECT_EQ(j["min_memory"].get<double>(), 6) << "docs/model.md#a-worked-example: least feasible budget 6";
    const std::string err = expect_text_error({"solve", path("a.json"), "--memory", m}, 2);
    EXPECT_MENTIONS(err, "6");
  }
  // A baseline below its own peak: its peak is the least budget it accepts.
  const json j = expect_json_error({"solve", path("a.json"), "--memory", "14", "--solver", "store-all"}, 2);
  EXPECT_EQ(j["min_memory"].get<double>(), 15);
  expect_text_error({"solve", path("a.json"), "--memory", "5", "--plot", path("never.svg")}, 2);
  EXPECT_FALSE(fs::exists(path("never.svg")));
}

// ------------------------------------------------------------------------------------------------
// Bad input: exit status 3, one line.

TEST_F(Cli, BadInputExits3WithOneLineOrAnErrorKey) {
  const std::string a = path("a.json");
  const std::string malformed = write("malformed.json", "{\"chain\": {\"fw\": [1, 2,");
  const std::string negative = write("negative.json", R"({"chain": {"fw": [1], "bw": [1, 1], "cw": [1, -1],
                                                          "cbw": [1, 1], "ftmp": [0], "btmp": [0, 0]}})");
  const std::string not_graph = write("array.json", "[1, 2, 3]");
  const std::string empty = write("empty.json", "");
  const std::string multiline = write("multiline.json", "{\n\"chain\":\n{\n\"fw\": [1,\n\n");
  const std::string store_all = write("store_all.json", store_all_ops);
  const std::vector<std::vector<std::string>> cases = {
      {"solve", a, "--memory", "7", "--solver", "fastest"},
      {"solve", a, "--memory", "7", "--solver", ""},
      {"solve", path("missing.json"), "--memory", "7"},
      {"solve", dir_.string(), "--memory", "7"},  // a directory
      {"solve", malformed, "--memory", "7"},
      {"solve", multiline, "--memory", "7"},
      {"solve", negative, "--memory", "7"},
      {"solve", not_graph, "--memory", "7"},
      {"solve", empty, "--memory", "7"},
      {"solve", a, "--memory", "-1"},
      {"solve", a, "--memory", "-0.5"},
      {"solve", a, "--memory", "nan"},
      {"solve", a, "--memory", "NaN"},
      {"solve", a, "--memory", "inf"},
      {"solve", a, "--memory", "1e999"},
      {"solve", a, "--memory", "seven"},
      {"solve", a, "--memory", "7Q"},
      {"solve", a, "--memory", ""},
      {"solve", a, "--memory", "7", "--solver", "segments:"},
      {"solve", a, "--memory", "7", "--solver", "segments:0"},
      {"solve", a, "--memory", "7", "--solver", "segments:-2"},
      {"solve", a, "--memory", "7", "--solver", "segments:x"},
      {"solve", a, "--memory", "7", "--solver", "segments:1.5"},
      {"solve", a, "--memory", "7", "--solver", "segments:2x"},
      {"solve", a, "--memory", "7", "--solver", "segments:99999999999999999999"},
      {"solve", a, "--memory", "7", "--plot", path("no/such/dir/out.svg")},
      {"simulate", a, path("missing.json")},
      {"simulate", a, malformed},
      {"simulate", a, write("badop.json", R"({"ops": [{"op": "F_fast", "stage": 0}]})")},
      {"simulate", a, write("noops.json", R"({"schedule": []})")},
      {"simulate", a, write("negstage.json", R"({"ops": [{"op": "F_all", "stage": -1}]})")},
      {"simulate", a, write("hugestage.json", R"({"ops": [{"op": "F_all", "stage": 1e30}]})")},
      {"simulate", a, write("item.json", R"({"ops": [{"op": "drop", "item": "y", "stage": 0}]})")},
      {"simulate", a, store_all, "--memory", "-3"},
      {"simulate", a, store_all, "--memory", "nan"},
      {"revolve", "--steps", "0", "--snaps", "3"},
      {"revolve", "--steps", "10", "--snaps", "0"},
      {"info", path("missing.json")},
      {"info", malformed},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(args[0] + " " + args[1] + (args.size() > 2 ? " " + args.back() : ""));
    const std::string err = expect_text_error(args, 3);
    EXPECT_EQ(err.rfind("rematch: ", 0), 0u) << err;
    EXPECT_EQ(err.find("internal error"), std::string::npos) << err;
    expect_json_error(args, 3);
  }
}

TEST_F(Cli, ErrorsNameWhatIsWrong) {
  const std::string a = path("a.json");
  EXPECT_MENTIONS(expect_text_error({"solve", a, "--memory", "7", "--solver", "fastest"}, 3), "fastest");
  EXPECT_MENTIONS(expect_text_error({"solve", path("missing.json"), "--memory", "7"}, 3), "missing.json");
  EXPECT_MENTIONS(expect_text_error({"solve", a, "--memory", "-1"}, 3), "--memory");
  EXPECT_MENTIONS(expect_text_error({"solve", a, "--memory", "nan"}, 3), "--memory");
  EXPECT_MENTIONS(expect_text_error({"solve", a, "--memory", "7", "--solver", "segments:0"}, 3), "segments:0");
  const std::string negative = write("negative.json", R"({"chain": {"fw": [1], "bw": [1, 1], "cw": [1, -1],
                                                          "cbw": [1, 1], "ftmp": [0], "btmp": [0, 0]}})");
  EXPECT_MENTIONS(expect_text_error({"info", negative}, 3), "chain.cw[1]");
  const std::string badop = write("badop.json", R"({"ops": [{"op": "loss"}, {"op": "F_fast", "stage": 0}]})");
  EXPECT_MENTIONS(expect_text_error({"simulate", a, badop}, 3), "ops[1]");
}

TEST_F(Cli, UsageErrorsExit3WithOneLine) {
  const std::string a = path("a.json");
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"solve", a},                          // --memory is required
      {"solve", "--memory", "7"},             // the graph is required
      {"solve", a, "--memory", "7", "--format", "xml"},
      {"solve", a, "--memory", "7", "--bogus"},
      {"solve", a, "--memory", "7", "extra.json"},
      {"solve", a, "--memory", "7", "--slots", "0"},
      {"simulate", a},
      {"revolve", "--steps", "10"},
      {"revolve", "--steps", "ten", "--snaps", "3"},
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const std::string& s : args) shown += s + " ";
    SCOPED_TRACE(shown);
    const std::string err = expect_text_error(args, 3);
    EXPECT_MENTIONS(err, "--help");
  }
  // With --format json given, even a usage error is a JSON object.
  const json j = run_json({"solve", "--format", "json", a}, 3);
  EXPECT_TRUE(j.contains("error")) << j.dump();
}

// BUG (see report): user-supplied text is copied raw into error messages, so a newline in a file
// name, a --memory value, a solver name or an op name splits the error over several lines.
TEST_F(Cli, ErrorsStayOnOneLineWhateverTheInputContains) {
  const std::string a = path("a.json");
  const std::string op_with_newline = write("nl.json", "{\"ops\": [{\"op\": \"F_all\\nB\", \"stage\": 0}]}");
  expect_text_error({"solve", path("no\nsuch.json"), "--memory", "7"}, 3);
  expect_text_error({"solve", a, "--memory", "7\nx"}, 3);
  expect_text_error({"solve", a, "--memory", "7", "--solver", "foo\nbar"}, 3);
  expect_text_error({"simulate", a, op_with_newline}, 3);
}

// BUG (see report): with --format json, a value that CLI11 fails to convert or check (an option
// declared before --format, or --format itself) is reported as text on stderr, not as JSON.
TEST_F(Cli, UsageErrorsUnderFormatJsonAreJson) {
  expect_json_error({"revolve", "--steps", "ten", "--snaps", "3"}, 3);
  expect_json_error({"solve", path("a.json"), "--memory", "7", "--slots", "x"}, 3);
}

// BUG (see report): nlohmann throws json::out_of_range for numbers beyond the double range; it is
// not turned into an InputError, so the CLI says "internal error: [json.exception.out_of_range.406]".
TEST_F(Cli, OverflowingNumberInAGraphIsAPlainInputError) {
  const std::string g = write("overflow.json", R"({"chain": {"fw": [1e999], "bw": [1, 1], "cw": [1, 1],
                                                   "cbw": [1, 1], "ftmp": [0], "btmp": [0, 0]}})");
  const std::string err = expect_text_error({"info", g}, 3);
  EXPECT_EQ(err.find("internal error"), std::string::npos) << err;
  EXPECT_EQ(err.find("json.exception"), std::string::npos) << err;
}

// BUG (see report): an error message dumps the offending JSON value; a deeply nested one
// overflows the stack (SIGSEGV, status 139) instead of exiting 3.
TEST_F(Cli, DeeplyNestedValueInAScheduleExits3) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  const std::string s = write("deep.json", "{\"ops\": [{\"op\": \"F_all\", \"stage\": " + deep + "}]}");
  expect_text_error({"simulate", path("a.json"), s}, 3);
}

// BUG (see report): CLI11 reads "-1" into the unsigned --steps as 2^64 - 1; the error then talks
// about T(18446744073709551615, 3) instead of rejecting a negative step count.
TEST_F(Cli, RevolveRejectsNegativeCountsAsSuch) {
  const std::string err = expect_text_error({"revolve", "--steps", "-1", "--snaps", "3"}, 3);
  EXPECT_EQ(err.find("18446744073709551615"), std::string::npos) << err;
}

// ------------------------------------------------------------------------------------------------
// simulate

TEST_F(Cli, SimulateReportsMakespanAndPeak) {
  const std::string s = write("s.json", store_all_ops);
  const json j = run_json({"simulate", path("a.json"), s, "--format", "json"}, 0);
  EXPECT_EQ(j, (json{{"makespan", 12.0}, {"peak_memory", 15.0}}));
  EXPECT_EQ(run_json({"simulate", path("a.json"), s, "--memory", "15", "--format", "json"}, 0), j);
  const CliRun r = run({"simulate", path("a.json"), s});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_MENTIONS(r.out, "makespan   12");
  EXPECT_MENTIONS(r.out, "peak       15");
}

TEST_F(Cli, SimulateInvalidScheduleExits1NamingTheOpIndex) {
  const std::string a = path("a.json");
  // Op 1 needs y_1, which does not exist.
  const std::string missing_gradient = write("bad.json", R"({"ops": [{"op": "F_all", "stage": 0}, {"op": "B", "stage": 0}]})");
  std::string err = expect_text_error({"simulate", a, missing_gradient}, 1);
  EXPECT_MENTIONS(err, "op 1");
  json j = expect_json_error({"simulate", a, missing_gradient}, 1);
  EXPECT_EQ(j["index"], 1);
  EXPECT_MENTIONS(j["error"].get<std::string>(), "op 1");

  // The M = 7 schedule of chain A (docs/model.md) over a budget of 6: its first op at peak 7 is B 5 (index 7).
  const std::string spec_m7 = write("m7.json", R"({"ops": [
      {"op":"F_all","stage":0},{"op":"F_none","stage":1},{"op":"F_none","stage":2},{"op":"F_all","stage":3},
      {"op":"F_none","stage":4},{"op":"F_all","stage":5},{"op":"loss"},{"op":"B","stage":5},{"op":"F_ck","stage":3},
      {"op":"F_all","stage":4},{"op":"B","stage":4},{"op":"F_ck","stage":0},{"op":"F_all","stage":3},
      {"op":"B","stage":3},{"op":"F_all","stage":1},{"op":"drop","item":"x","stage":1},{"op":"F_all","stage":2},
      {"op":"B","stage":2},{"op":"F_all","stage":0},{"op":"B","stage":1},{"op":"B","stage":0}]})");
  j = run_json({"simulate", a, spec_m7, "--memory", "7", "--format", "json"}, 0);
  EXPECT_EQ(j["makespan"].get<double>(), 19) << "docs/model.md#a-worked-example";
  EXPECT_EQ(j["peak_memory"].get<double>(), 7);
  j = expect_json_error({"simulate", a, spec_m7, "--memory", "6"}, 1);
  ASSERT_TRUE(j["index"].is_number_integer()) << j.dump();
  const int over = j["index"];
  EXPECT_MENTIONS(j["error"].get<std::string>(), "op " + std::to_string(over));
  err = expect_text_error({"simulate", a, spec_m7, "--memory", "6"}, 1);
  EXPECT_MENTIONS(err, "op " + std::to_string(over));

  // Incomplete: the index is the number of ops.
  const std::string incomplete = write("inc.json", R"({"ops": [{"op": "F_all", "stage": 0}, {"op": "F_all", "stage": 1}]})");
  j = expect_json_error({"simulate", a, incomplete}, 1);
  EXPECT_EQ(j["index"], 2);
  // Out-of-range stage and branch are invalid ops (status 1), not bad files.
  j = expect_json_error({"simulate", a, write("range.json", R"({"ops": [{"op": "F_all", "stage": 6}]})")}, 1);
  EXPECT_EQ(j["index"], 0);
  j = expect_json_error({"simulate", a, write("branch.json", R"({"ops": [{"op": "loss"}, {"op": "F_all", "stage": 0, "branch": 1}]})")}, 1);
  EXPECT_EQ(j["index"], 0) << "the loss cannot run first";
  expect_text_error({"simulate", a, write("empty_ops.json", R"({"ops": []})")}, 1);
}

// ------------------------------------------------------------------------------------------------
// revolve, info, help

std::uint64_t binomial(std::uint64_t n, std::uint64_t k) {
  std::uint64_t r = 1;
  for (std::uint64_t i = 1; i <= k; ++i) r = r * (n - k + i) / i;
  return r;
}

// docs/model.md#files: T(L, C) = r*L - C(C+r, r-1), r the smallest with C(C+r, C) >= L; T(1, C) = 0.
std::uint64_t closed_form(std::uint64_t l, std::uint64_t c) {
  if (l == 1) return 0;
  std::uint64_t r = 0;
  while (binomial(c + r, c) < l) ++r;
  return r * l - (r == 0 ? 0 : binomial(c + r, r - 1));
}

TEST_F(Cli, RevolveJsonCountsTheClosedFormAdvances) {
  const json j = run_json({"revolve", "--steps", "10", "--snaps", "3", "--format", "json"}, 0);
  EXPECT_EQ(j["advances"], 15);
  // The stream agrees with its count: each advance moves the current state forward.
  std::uint64_t moved = 0, at = 0;
  ASSERT_TRUE(j["actions"].is_array());
  for (const json& a : j["actions"]) {
    const std::string action = a["action"];
    const std::uint64_t capo = a["capo"];
    if (action == "advance") moved += capo - at;
    at = capo;
  }
  EXPECT_EQ(moved, 15u);
  EXPECT_EQ(j["actions"].back()["action"], "terminate");
  for (auto [l, c] : {std::pair{1, 1}, {2, 1}, {5, 2}, {20, 3}, {30, 4}, {100, 5}, {7, 10}}) {
    const json k = run_json({"revolve", "--steps", std::to_string(l), "--snaps", std::to_string(c), "--format", "json"}, 0);
    EXPECT_EQ(k["advances"].get<std::uint64_t>(), closed_form(l, c)) << "L = " << l << ", C = " << c;
  }
}

TEST_F(Cli, RevolveTextIsTheActionStream) {
  const CliRun r = run({"revolve", "--steps", "10", "--snaps", "3"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_MENTIONS(r.out.substr(0, r.out.find('\n')), "15");
  EXPECT_EQ(r.out.rfind("terminate\n"), r.out.size() - 10);
  for (const char* action : {"advance", "takeshot", "restore", "firsturn", "youturn"}) EXPECT_MENTIONS(r.out, action);
}

TEST_F(Cli, InfoReportsStoreAllAndTheLeastBudget) {
  const json j = run_json({"info", path("a.json"), "--format", "json"}, 0);
  EXPECT_EQ(j["min_memory"].get<double>(), 6);
  EXPECT_EQ(j["store_all_makespan"].get<double>(), 12);
  EXPECT_EQ(j["store_all_peak"].get<double>(), 15);
  EXPECT_EQ(j["branches"], 1);
  const CliRun r = run({"info", path("a.json")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_MENTIONS(r.out, "least budget      6");
  const json join = run_json({"info", path("join.json"), "--format", "json"}, 0);
  EXPECT_EQ(join["branches"], 3);
}

TEST_F(Cli, HelpExitsZero) {
  CliRun r = run({"--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* command : {"solve", "simulate", "revolve"}) EXPECT_MENTIONS(r.out, command);
  for (const char* command : {"solve", "simulate", "revolve", "info"}) {
    r = run({command, "--help"});
    EXPECT_EQ(r.status, 0) << command;
    EXPECT_MENTIONS(r.out, "Usage");
  }
  r = run({"solve", "--help"});
  EXPECT_MENTIONS(r.out, "--memory");
  EXPECT_MENTIONS(r.out, "--solver");
}

// ------------------------------------------------------------------------------------------------
// curve
TEST_F(Cli, CurveListsTheOptimalMakespanAtEveryBudgetStepOfChainA) {
  const json j = run_json({"curve", path("a.json"), "--format", "json"}, 0);
  EXPECT_EQ(j["least_budget"], 6);
  EXPECT_EQ(j["store_all_peak"], 15);
  EXPECT_EQ(j["store_all_makespan"], 12);
  EXPECT_TRUE(j["complete"].get<bool>());
  // Each budget 6..15 reads the last point at or below it: SPEC section 4's optimum.
  const json& points = j["points"];
  ASSERT_FALSE(points.empty());
  std::size_t p = 0;
  for (int m = 6; m <= 15; ++m) {
    while (p + 1 < points.size() && points[p + 1]["budget"].get<double>() <= m) ++p;
    EXPECT_EQ(points[p]["makespan"].get<double>(), chain_a_optimum[m - 6]) << "M = " << m;
    EXPECT_TRUE(points[p]["certified"].get<bool>());
    EXPECT_NEAR(points[p]["overhead_pct"].get<double>(), 100 * (chain_a_optimum[m - 6] / 12 - 1), 1e-9);
  }
  bool sqrt = false;
  int revolve = 0;
  for (const json& b : j["baselines"]) {
    sqrt |= b["name"] == "sqrt";
    revolve += b["name"].get<std::string>().rfind("revolve:", 0) == 0;
  }
  EXPECT_TRUE(sqrt);
  EXPECT_EQ(revolve, 5) << "chain A is homogeneous: revolve with 1 to L-1 snapshots";
  const CliRun text = run({"curve", path("a.json")});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_MENTIONS(text.out, "overhead %");
  EXPECT_MENTIONS(text.out, "certified");
}

TEST_F(Cli, CurveSamplesAJoinUnderOptimalReadsOneFillPerOrderUnderBranchSequentialAndPlots) {
  const json sampled = run_json({"curve", path("join.json"), "--samples", "5", "--format", "json"}, 0);
  EXPECT_FALSE(sampled["complete"].get<bool>());
  EXPECT_EQ(sampled["points"].size(), 5u);
  EXPECT_EQ(sampled["solves"], 5);
  const json one_fill = run_json({"curve", path("join.json"), "--solver", "branch-sequential", "--format", "json"}, 0);
  EXPECT_TRUE(one_fill["complete"].get<bool>());
  EXPECT_EQ(one_fill["table_fills"], 3) << "three distinct forward orders (a branch and two copies), one fill each";
  const std::string svg = path("curve.svg");
  const CliRun r = run({"curve", path("join.json"), "--plot", svg});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string text = slurp(svg);
  EXPECT_EQ(text.rfind("<svg", 0), 0u);
  EXPECT_MENTIONS(text, "segments:2");
  EXPECT_MENTIONS(text, "</svg>");
  EXPECT_FALSE(fs::exists(svg + ".tmp"));
}

TEST_F(Cli, CurveDrawsRevolveOnHomogeneousChainsOnly) {
  const std::string chain = write("h.json", R"({"chain": {"fw": [1,1,2,1,1], "bw": [2,2,2,2,2,0],
    "cw": [1,1,1,1,1,1], "cbw": [1,2,2,2,2,2], "ftmp": [0,0,0,0,0], "btmp": [0,0,0,0,0,0]}})");
  const json j = run_json({"curve", chain, "--format", "json"}, 0);
  int revolve = 0;
  for (const json& b : j["baselines"]) revolve += b["name"].get<std::string>().rfind("revolve:", 0) == 0;
  EXPECT_EQ(revolve, 0) << "stage 2 is slower: revolve's snapshots are not optimal there";
}

TEST_F(Cli, CurveRejectsBadInputWithExit3) {
  const std::string a = path("a.json");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"curve", path("missing.json")},
           {"curve", write("bad.json", R"({"chain": {"fw": [1]}})")},
           {"curve", a, "--solver", "store-all"},
           {"curve", a, "--solver", "fastest"},
           {"curve", a, "--samples", "1"},
           {"curve"}}) {
    expect_text_error(args, 3);
    expect_json_error(args, 3);
  }
  expect_text_error({"curve", a, "--plot", path("no/such/dir/c.svg")}, 3);
}

#ifdef REMATCH_HAS_RUNTIME
// `rematch train` refuses what it cannot do before training, with the number users need.
TEST_F(Cli, TrainRefusesABudgetBelowTheLeastFeasibleOneWithThatNumber) {
  const CliRun r = run({"train", "--model", "siamese-mlp", "--depth", "3", "--width", "16", "--batch", "8",
                        "--memory", "1KiB", "--steps", "1"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("least feasible budget"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

// `--memory auto` under an address-space limit: the budget stays inside it and so does the run.
TEST_F(Cli, TrainMemoryAutoUnderRlimitAsPicksABudgetInsideTheLimitAndTrains) {
  if (kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: no RLIMIT_AS fits it";
  const std::string limit = "800000000";
  const CliRun r = run({"train", "--depth", "4", "--width", "64", "--batch", "32", "--memory", "auto", "--steps", "2",
                        "--no-eval", "--report", path("r.json")},
                       "prlimit --as=" + limit);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (const char* term : {"RLIMIT_AS less mapped", "weights", "gradients", "optimizer state", "data reader buffers",
                           "kernel scratch", "margin", "= activations"})
    EXPECT_MENTIONS(r.out, term);
  const json report = json::parse(slurp(path("r.json")));
  EXPECT_GT(report["budget"].get<double>(), 0);
  EXPECT_LT(report["budget"].get<double>(), std::stod(limit));
  EXPECT_LT(report["peak_rss"].get<double>(), std::stod(limit));
  EXPECT_EQ(report["steps"], 2);
}

// Under an address-space limit the planner's tables shrink to fit it (coarser memory slots)
// rather than the planning running out of memory; the plan says so.
TEST_F(Cli, TrainUnderRlimitAsPlansWithFewerSlotsAndSaysSo) {
  if (kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: no RLIMIT_AS fits it";
  // 2 x 48 stages at 4096 slots would need about 2.5 GB of tables.
  const CliRun r = run({"train", "--depth", "48", "--width", "64", "--batch", "4096", "--memory", "60MiB",
                        "--plan-only", "--profile-repeats", "1"},
                       "prlimit --as=400000000");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_MENTIONS(r.out, "fewer than the default 4096");
  const auto at = r.out.find("\nslots ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const int slots = std::stoi(r.out.substr(r.out.find_first_not_of(' ', at + 6)));
  EXPECT_GE(slots, 16);
  EXPECT_LT(slots, 4096);
}

TEST_F(Cli, TrainMemoryShareTakesThatShareOfWhatIsLeft) {
  const CliRun r = run({"train", "--depth", "4", "--width", "64", "--batch", "32", "--memory", "50%", "--plan-only"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_MENTIONS(r.out, "= activations (50.00 % of what is left)");
  EXPECT_MENTIONS(r.out, "MemAvailable");
  EXPECT_EQ(r.out.find("step 1/"), std::string::npos) << "--plan-only does not train";
}

TEST_F(Cli, TrainMemoryAutoWithNoRoomRefusesWithTheFiguresExit4) {
  if (kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: no RLIMIT_AS fits it";
  const CliRun r = run({"train", "--depth", "4", "--width", "64", "--batch", "32", "--memory", "auto", "--steps", "1"},
                       "prlimit --as=300000000");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_MENTIONS(r.err, "no memory left for activations");
  EXPECT_MENTIONS(r.err, "margin");
}

// The budget --max-overhead picks is the least budget of the printed curve within the bound.
TEST_F(Cli, TrainMaxOverheadPicksTheLeastBudgetOnTheCurveOrRefusesWithTheLeastAchievable) {
  const std::vector<std::string> model = {"train", "--depth", "4", "--width", "64", "--batch", "32", "--plan-only",
                                          "--curve", "--profile-repeats", "1"};
  std::vector<std::string> args = model;
  for (const char* a : {"--max-overhead", "5%"}) args.push_back(a);
  const CliRun r = run(args);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  // The table: budget, makespan, overhead %, yes|no.
  std::istringstream lines(r.out);
  std::string line;
  double first_within = -1, least = -1, least_overhead = 0;
  long long chosen = -1;
  while (std::getline(lines, line)) {
    if (const auto at = line.find("least budget within"); at != std::string::npos) {
      const auto open = line.find('(', at);
      ASSERT_NE(open, std::string::npos) << line;
      chosen = std::stoll(line.substr(open + 1));
    }
    std::istringstream row(line);
    double budget = 0, makespan = 0, overhead = 0;
    std::string certified;
    if (row >> budget >> makespan >> overhead >> certified && (certified == "yes" || certified == "no")) {
      if (least < 0) least = budget, least_overhead = overhead;
      if (first_within < 0 && overhead <= 5) first_within = budget;
    }
  }
  ASSERT_GE(first_within, 0) << r.out;
  EXPECT_EQ(chosen, static_cast<long long>(std::ceil(first_within))) << r.out;
  if (least_overhead > 0.5) {
    // At the least budget with a bound below its overhead: refused, naming the least achievable.
    args = model;
    for (const std::string& a : {std::string("--memory"), std::to_string(static_cast<long long>(least)),
                                 std::string("--max-overhead"), std::string("0.1%")})
      args.push_back(a);
    const CliRun refused = run(args);
    EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
    EXPECT_MENTIONS(refused.err, "least achievable");
  }
  args = model;
  for (const char* a : {"--memory", "1KiB", "--max-overhead", "10%"}) args.push_back(a);
  EXPECT_EQ(run(args).status, 2);
  args = model;
  for (const char* a : {"--max-overhead", "ten"}) args.push_back(a);
  EXPECT_EQ(run(args).status, 3);
  for (const char* share : {"0%", "120%", "x%"}) {
    args = model;
    args.push_back("--memory");
    args.push_back(share);
    EXPECT_EQ(run(args).status, 3) << share;
  }
}

TEST_F(Cli, TrainRejectsAnUnknownModelAndAMissingWeightFile) {
  CliRun r = run({"train", "--model", "resnet", "--memory", "1GiB"});
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.err.find("unknown model 'resnet'"), std::string::npos) << r.err;
  r = run({"train", "--depth", "3", "--width", "16", "--batch", "8", "--memory", "1GiB", "--resume",
           path("missing.bin")});
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
}

TEST_F(Cli, TrainRefusesABadModelFileNamingTheFileAndTheKeyPath) {
  {
    std::ofstream(path("net.json")) << R"({"branches": [{"input": {"features": 784}, "encoder": "e"}],
      "encoders": {"e": {"layers": [{"type": "linear", "out": 10, "activation": "tanh"}]}},
      "loss": {"type": "softmax_cross_entropy"}})";
  }
  const CliRun r = run({"train", "--model", path("net.json"), "--memory", "1GiB", "--steps", "1"});
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.err.find(path("net.json") + ": encoders.e.layers[0].activation: expected 'none' or 'relu'"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

// bf16 activations: the plan and the report say so, the profiled store-all peak is smaller than
// fp32's, the step stays in the budget; an unknown precision is one line, status 3.
TEST_F(Cli, TrainWithBf16ActivationsPlansWithSmallerSizesAndSaysSo) {
  json reports[2];
  const char* precisions[2] = {"fp32", "bf16"};
  for (int p = 0; p < 2; ++p) {
    const std::string report = path(std::string("report-") + precisions[p] + ".json");
    const CliRun r = run({"train", "--model", "siamese-mlp", "--depth", "3", "--width", "64", "--batch", "64",
                          "--memory", "16MiB", "--steps", "1", "--eval-batches", "1", "--profile-repeats", "1",
                          "--activations", precisions[p], "--report", report});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(std::string("activations ") + precisions[p]), std::string::npos) << r.out;
    reports[p] = json::parse(slurp(report));
    EXPECT_EQ(reports[p]["activations"], precisions[p]);
    EXPECT_LE(reports[p]["arena_peak"].get<double>(), reports[p]["budget"].get<double>());
  }
  EXPECT_LT(reports[1]["store_all_peak"].get<double>(), reports[0]["store_all_peak"].get<double>());
  const CliRun bad = run({"train", "--model", "siamese-mlp", "--depth", "3", "--width", "16", "--batch", "8",
                          "--memory", "1GiB", "--activations", "fp16"});
  EXPECT_EQ(bad.status, 3);
  EXPECT_NE(bad.err.find("'fp16'"), std::string::npos) << bad.err;
  EXPECT_EQ(count_lines(bad.err), 1u) << bad.err;
}

// --eval-every: the held-out loss before training, every N steps and after the last; it depends
// on the weights alone (the same held-out batches every time: a run resumed from step 2's weights
// reads step 2's point again) and leaves the training run as it was.
TEST_F(Cli, TrainEvalEveryReportsAHeldOutLossOfTheWeightsAloneAndLeavesTrainingAsItWas) {
  const auto train = [&](const std::string& report, std::vector<std::string> extra) {
    std::vector<std::string> args = {"train", "--model", "siamese-mlp", "--depth", "3", "--width", "32",
                                     "--batch", "32", "--memory", "16MiB", "--eval-batches", "2",
                                     "--profile-repeats", "1", "--report", path(report)};
    args.insert(args.end(), extra.begin(), extra.end());
    const CliRun r = run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    return json::parse(slurp(path(report)));
  };
  const json curve = train("curve.json", {"--steps", "5", "--eval-every", "2"});
  const json plain = train("plain.json", {"--steps", "5"});
  ASSERT_EQ(curve["eval_losses"].size(), 4u) << curve["eval_losses"].dump();
  const int expected_steps[4] = {0, 2, 4, 5};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(curve["eval_losses"][i][0], expected_steps[i]);
    EXPECT_GT(curve["eval_losses"][i][1].get<double>(), 0);
  }
  EXPECT_EQ(plain["eval_losses"], json::array());
  EXPECT_EQ(curve["first_loss"], plain["first_loss"]);
  EXPECT_EQ(curve["last_loss"], plain["last_loss"]);
  EXPECT_EQ(curve["test_metric"], plain["test_metric"]);
  train("two.json", {"--steps", "2", "--checkpoint", path("w.npz")});
  const json resumed = train("resumed.json", {"--steps", "0", "--resume", path("w.npz"), "--eval-every", "1"});
  ASSERT_EQ(resumed["eval_losses"].size(), 1u) << resumed["eval_losses"].dump();
  EXPECT_EQ(resumed["eval_losses"][0][0], 0);
  EXPECT_EQ(resumed["eval_losses"][0][1], curve["eval_losses"][1][1]);
}

TEST_F(Cli, TrainsAModelFileReadingTheImageAsASequence) {
  {
    std::ofstream(path("net.json")) << R"({"branches": [{"input": {"channels": 28, "length": 28}, "encoder": "e"}],
      "encoders": {"e": {"layers": [{"type": "conv1d", "out": 8, "taps": 3}, {"type": "relu"},
        {"type": "max_pool1d", "window": 4}, {"type": "flatten"}, {"type": "linear", "out": 10}]}},
      "loss": {"type": "softmax_cross_entropy"}})";
  }
  const CliRun r = run({"train", "--model", path("net.json"), "--batch", "8", "--memory", "64MiB",
                        "--steps", "2", "--eval-batches", "1", "--profile-repeats", "1",
                        "--report", path("report.json")});
  ASSERT_EQ(r.status, 0) << r.err;
  const json report = json::parse(slurp(path("report.json")));
  EXPECT_EQ(report["test_metric_name"], "top1_accuracy");
  EXPECT_EQ(report["steps"], 2);
}

TEST_F(Cli, ProfileWritesAGraphThatSolveAccepts) {
  const CliRun p = run({"profile", "--model", "cross-modal", "--depth", "3", "--width", "16", "--batch", "8",
                        "-o", path("model.json")});
  ASSERT_EQ(p.status, 0) << p.err;
  const json solved = run_json({"solve", path("model.json"), "--memory", "1GiB", "--format", "json"}, 0);
  EXPECT_EQ(solved["solver"], "optimal");
  EXPECT_GT(solved["ops"].size(), 0u);
}

// `profile --activations bf16` writes the sizes a bf16 run plans with: every stage output (cw)
// in bf16 is at most the fp32 one's and the chain's total is smaller; an unknown precision is
// one line, status 3, and writes nothing.
TEST_F(Cli, ProfileWithBf16ActivationsWritesSmallerSizes) {
  json graphs[2];
  const char* precisions[2] = {"fp32", "bf16"};
  for (int p = 0; p < 2; ++p) {
    const std::string out = path(std::string("model-") + precisions[p] + ".json");
    const CliRun r = run({"profile", "--model", "siamese-mlp", "--depth", "3", "--width", "64", "--batch", "64",
                          "--activations", precisions[p], "-o", out});
    ASSERT_EQ(r.status, 0) << r.err;
    graphs[p] = json::parse(slurp(out));
  }
  const json& fp32 = graphs[0]["join"]["branches"][0]["cw"];
  const json& bf16 = graphs[1]["join"]["branches"][0]["cw"];
  ASSERT_EQ(fp32.size(), bf16.size());
  double total32 = 0, total16 = 0;
  for (std::size_t i = 0; i < fp32.size(); ++i) {
    EXPECT_LE(bf16[i].get<double>(), fp32[i].get<double>()) << "cw[" << i << "]";
    total32 += fp32[i].get<double>();
    total16 += bf16[i].get<double>();
  }
  EXPECT_LT(total16, 0.75 * total32);
  const CliRun bad = run({"profile", "--model", "siamese-mlp", "--depth", "2", "--width", "16", "--batch", "8",
                          "--activations", "fp16", "-o", path("bad.json")});
  EXPECT_EQ(bad.status, 3);
  EXPECT_NE(bad.err.find("'fp16'"), std::string::npos) << bad.err;
  EXPECT_EQ(count_lines(bad.err), 1u) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(path("bad.json")));
}
#endif

}  // namespace
