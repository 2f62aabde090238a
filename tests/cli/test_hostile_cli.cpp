// The rematch command under hostile input and faults (docs/cli.md): numbers beyond the graph
// limits, outputs that cannot be written, allocation failure under a process memory limit, inputs
// whose work or output would be unbounded, and a fuzz-style sweep over every command. Every run
// must end within a time bound, with a documented exit status (0-4) and, on failure, exactly one
// line on stderr.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "../test_scale.hpp"
#include "cli_harness.hpp"

namespace {

using namespace rematch::test;
using nlohmann::json;

// Sanitizer builds reserve terabytes of address space: a process limit on it cannot run them.
constexpr bool address_limits_work = REMATCH_TEST_SCALE == 1;

class HostileCli : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    write("chain.json", chain().dump());
  }

  static json chain() {
    return {{"chain", {{"fw", {1, 1, 1, 1}}, {"bw", {1, 1, 1, 1, 0}}, {"cw", {1, 1, 1, 1, 1}}, {"cbw", {1, 2, 2, 2, 2}},
                       {"ftmp", {0, 0, 0, 0}}, {"btmp", {0, 0, 0, 0, 0}}}}};
  }

  // Every run is killed after 60 s: a hang fails its test instead of stalling the suite.
  CliRun run(const std::vector<std::string>& args, const std::string& prefix = "", const std::string& redirect = "") const {
    return CliTest::run(args, prefix + " timeout -s KILL 60", redirect);
  }

  // A documented failure: `status`, one line on stderr mentioning `part`.
  void expect_failure(const CliRun& r, int status, const std::string& part) const {
    EXPECT_EQ(r.status, status) << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(part), std::string::npos) << "stderr: " << r.err << "expected to mention: " << part;
  }
};

TEST_F(HostileCli, NumbersBeyondTheLimitsAreRefusedNamingTheKeyInEveryCommand) {
  json doc = chain();
  doc["chain"]["fw"] = {1e308, 1e308, 1, 1};
  const std::string g = write("huge.json", doc.dump());
  const std::string ops = write("ops.json", R"({"ops": [{"op": "loss"}]})");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"solve", g, "--memory", "100"}, {"solve", g, "--memory", "100", "--format", "json"},
           {"simulate", g, ops}, {"info", g}, {"solve", g, "--memory", "100", "--plot", "p.svg"}}) {
    const CliRun r = run(args);
    if (args.size() > 4 && args[4] == "--format") {
      EXPECT_EQ(r.status, 3);
      EXPECT_NE(json::parse(r.out)["error"].get<std::string>().find("chain.fw[0]"), std::string::npos) << r.out;
    } else {
      expect_failure(r, 3, "chain.fw[0]");
    }
  }
  EXPECT_FALSE(fs::exists(path("p.svg")));
  doc = chain();
  doc["chain"]["cw"] = {3e29, 3e29, 3e29, 3e29, 3e29};
  doc["chain"]["cbw"] = doc["chain"]["cw"];
  expect_failure(run({"info", write("sum.json", doc.dump())}), 3, "chain.cw");
}

TEST_F(HostileCli, FailedWritesOfStandardOutputAndFilesAreErrors) {
  const std::string g = path("chain.json");
  expect_failure(run({"info", g}, "", "> /dev/full"), 3, "standard output");
  expect_failure(run({"solve", g, "--memory", "20"}, "", ">&-"), 3, "standard output");
  expect_failure(run({"revolve", "--steps", "100000", "--snaps", "3", "--format", "json"}, "", "> /dev/full"), 3,
                 "standard output");
  expect_failure(run({"solve", g, "--memory", "20", "--plot", "/dev/full"}), 3, "/dev/full");
  expect_failure(run({"solve", g, "--memory", "20", "--plot", dir_.string()}), 3, "directory");
  expect_failure(run({"solve", g, "--memory", "20", "--plot", path("no/such/dir/p.svg")}), 3, "p.svg");
  expect_failure(run({"info", dir_.string()}), 3, "directory");
  // A plot written whole, and no temporary file left beside it.
  EXPECT_EQ(run({"solve", g, "--memory", "20", "--plot", "p.svg"}).status, 0);
  EXPECT_NE(slurp(path("p.svg")).find("</svg>"), std::string::npos);
  EXPECT_FALSE(fs::exists(path("p.svg.tmp")));
  EXPECT_EQ(fs::status("/dev/full").type(), fs::file_type::character);  // written in place, never renamed over
}

TEST_F(HostileCli, AllocationFailureIsTheOneLineOutOfMemoryErrorWithStatus4) {
  if (!address_limits_work) GTEST_SKIP() << "address-space limits do not apply under the sanitizers";
  // A 40 MB graph file whose parse needs several hundred MB.
  std::string text = R"({"chain": {"meta": [0)";
  text.reserve(40'000'000);
  while (text.size() < 40'000'000) text += ",0";
  text += "]}}";
  const std::string big = write("big.json", text);
  for (const auto& args : std::vector<std::vector<std::string>>{{"info", big}, {"solve", big, "--memory", "5"}}) {
    const CliRun r = run(args, "ulimit -v 300000 &&");
    expect_failure(r, 4, "out of memory");
    EXPECT_EQ(r.err.find("--slots"), std::string::npos) << "no --slots was given";
  }
  // Revolve streams: a million steps in JSON within 1 GiB of address space.
  const CliRun r = run({"revolve", "--steps", "1000000", "--snaps", "3", "--format", "json"}, "ulimit -v 1048576 &&",
                    "> /dev/null");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST_F(HostileCli, UnboundedWorkIsRefusedUpFrontNamingTheLimit) {
  json join = {{"join", {{"branches", json::array()}, {"loss", {{"time", 1}}}}}};
  for (int k = 0; k < 30; ++k)
    join["join"]["branches"].push_back({{"fw", {k + 1}}, {"bw", {1}}, {"cw", {1, 1}}, {"cbw", {1, 2}}, {"ftmp", {0}}, {"btmp", {0}}});
  const std::string many = write("many.json", join.dump());
  json copies = chain();
  copies = {{"join", {{"branches", {chain()["chain"]}}, {"loss", {{"time", 1}}}}}};
  copies["join"]["branches"][0]["bw"] = {1, 1, 1, 1};
  copies["join"]["branches"][0]["btmp"] = {0, 0, 0, 0};
  copies["join"]["branches"][0]["copies"] = 1024;
  const std::string copied = write("copies.json", copies.dump());
  for (const auto& [args, part] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"info", many}, "limit"},
           {{"solve", many, "--memory", "100"}, "limit"},
           {{"info", copied}, "copies"},
           {{"revolve", "--steps", "1000000000", "--snaps", "1000000000"}, "--steps"},
           {{"revolve", "--steps", "10000001", "--snaps", "3"}, "limit"}}) {
    const CliRun r = run(args);
    expect_failure(r, 3, part);
    EXPECT_LT(r.seconds, 10);
  }
}

TEST_F(HostileCli, VersionAndUnknownSubcommands) {
  const CliRun version = run({"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_NE(version.out.find("rematch 0."), std::string::npos) << version.out;
  expect_failure(run({"frobnicate", "x"}), 3, "frobnicate");
}

#ifdef REMATCH_HAS_RUNTIME
TEST_F(HostileCli, TrainRefusesBadFlagsBeforeTraining) {
  const std::vector<std::string> model = {"train", "--model", "siamese-mlp", "--depth", "2", "--width", "16",
                                          "--batch", "4", "--steps", "1", "--no-eval"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = model;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  for (const char* lr : {"nan", "inf", "-1"}) expect_failure(run(with({"--memory", "1GiB", "--lr", lr})), 3, "--lr");
  expect_failure(run(with({"--memory", "1GiB", "--momentum", "nan"})), 3, "--momentum");
  expect_failure(run(with({"--memory", "1GiB", "--checkpoint", path("no/dir/w.bin")})), 3, "--checkpoint");
  expect_failure(run(with({"--memory", "1GiB", "--report", dir_.string()})), 3, "--report");
  expect_failure(run(with({"--memory", "1GiB", "--eval-every", "-1"})), 3, "--eval-every");
  expect_failure(run(with({"--memory", "1GiB", "--eval-every", "2"})), 3, "--eval-every");  // with --no-eval
  // A budget of 0 is below the least like any other: status 2 naming it.
  const CliRun zero = run(with({"--memory", "0"}));
  const CliRun one = run(with({"--memory", "1"}));
  expect_failure(zero, 2, "least feasible budget");
  EXPECT_EQ(one.status, 2);
  expect_failure(run({"profile", "--model", "siamese-mlp", "--depth", "2", "--width", "16", "--batch", "4", "-o",
                      "/dev/full"}),
                 3, "/dev/full");
}
#endif

// Random hostile variations of valid inputs for every command: each run ends within the time
// bound with a documented status, and a failure prints exactly one line on stderr.
TEST_F(HostileCli, FuzzEveryCommandEndsWithADocumentedStatusAndOneLine) {
  std::mt19937 rng(2126);
  const std::vector<json> hostile_values = {-1, 1e308, -0.0, 1e31, "7", nullptr, true, json::array(), json::object(),
                                            1.5, 0, 4.9e-324, 18446744073709551615ull, json::array({1, 2})};
  const std::vector<std::string> hostile_flags = {"nan", "-1", "1e400", "0", "7Q", "", "inf", "99999999999999999999",
                                                  "1e-320", "0x10", " 5", "5 GiB"};
  auto pick = [&](const auto& values) { return values[std::uniform_int_distribution<std::size_t>(0, values.size() - 1)(rng)]; };
  const std::vector<std::string> keys = {"fw", "bw", "cw", "cbw", "ftmp", "btmp"};
  const std::string ops = write("ops.json", R"({"ops": [{"op": "F_all", "stage": 0}, {"op": "loss"}, {"op": "B", "stage": 9}]})");
  const int runs = 60 / REMATCH_TEST_SCALE + 6;
  for (int k = 0; k < runs; ++k) {
    json doc = chain();
    if (k % 4 == 0) {
      doc["chain"][pick(keys)] = pick(hostile_values);
    } else if (k % 4 == 1) {
      doc["chain"][pick(keys)][std::uniform_int_distribution<int>(0, 4)(rng)] = pick(hostile_values);
    } else if (k % 4 == 2) {
      doc = {{"join", {{"branches", {chain()["chain"], chain()["chain"]}}, {"loss", {{"time", pick(hostile_values)}}}}}};
      for (auto& b : doc["join"]["branches"]) b["bw"].erase(4), b["btmp"].erase(4);
      doc["join"]["branches"][1]["copies"] = pick(hostile_values);
    }
    const std::string g = write("fuzz.json", k % 9 == 8 ? doc.dump().substr(0, doc.dump().size() / 2) : doc.dump());
    const std::string flag = pick(hostile_flags);
    std::vector<std::vector<std::string>> commands = {
        {"solve", g, "--memory", k % 3 ? "6" : flag},
        {"solve", g, "--memory", "6", "--format", "json", "--slots", k % 2 ? "100" : flag},
        {"simulate", g, ops, "--memory", flag},
        {"info", g, "--format", k % 2 ? "json" : "text"},
        {"revolve", "--steps", flag, "--snaps", k % 2 ? flag : "3"},
        {pick(std::vector<std::string>{"curve", "embed", "evaluate", "--", "-x"}), g}};
#ifdef REMATCH_HAS_RUNTIME
    commands.push_back({"train", "--model", "siamese-mlp", "--depth", "2", "--width", "8", "--batch", "2", "--steps", "0",
                        "--no-eval", "--memory", k % 2 ? flag : "0", "--lr", flag});
    commands.push_back({"profile", "--model", k % 2 ? "nope" : "siamese-mlp", "--depth", flag, "-o", g});
#endif
    for (const auto& args : commands) {
      std::string shown;
      for (const std::string& a : args) shown += a + " ";
      SCOPED_TRACE(shown + " on " + doc.dump());
      const CliRun r = run(args);
      EXPECT_GE(r.status, 0);
      EXPECT_LE(r.status, 4);
      EXPECT_LT(r.seconds, 30);
      if (r.status != 0) {
        const bool json_error = r.err.empty() && r.out.find("\"error\"") != std::string::npos;
        EXPECT_TRUE(json_error || count_lines(r.err) == 1) << r.err;
      }
    }
  }
}

}  // namespace
