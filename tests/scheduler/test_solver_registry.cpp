// The solver registry is the one list of solvers: solve() runs every entry under its own name, the
// unknown-name error lists them all, and the README's command line spells the same list.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "scheduler/solver.hpp"
#include "tests/spec_examples.hpp"

#ifndef REMATCH_SOURCE_DIR
#error "REMATCH_SOURCE_DIR must name the source tree"
#endif

namespace rematch {
namespace {

// The name solve() is asked for: "segments:N" is a pattern, segments:2 one of its names.
std::string instance(std::string_view name) { return name == "segments:N" ? "segments:2" : std::string(name); }

TEST(SolverRegistry, NamesAreUniqueAndDescribed) {
  std::set<std::string_view> seen;
  for (const SolverEntry& entry : solvers()) {
    EXPECT_TRUE(seen.insert(entry.name).second) << entry.name;
    EXPECT_FALSE(entry.description.empty()) << entry.name;
    EXPECT_EQ(entry.description.find('\n'), std::string_view::npos) << entry.name;
  }
  EXPECT_EQ(solver_names().size(), seen.size());
}

TEST(SolverRegistry, SolveRunsEachEntryUnderItsName) {
  const Graph chain = testing::spec_chain_a();
  for (const SolverEntry& entry : solvers()) {
    const Solution s = solve(chain, 1e9, {.solver = instance(entry.name)});
    EXPECT_EQ(s.solver, instance(entry.name));
    EXPECT_FALSE(s.ops.empty()) << entry.name;
  }
}

TEST(SolverRegistry, UnknownNameErrorListsEveryName) {
  try {
    solve(testing::spec_chain_a(), 100, {.solver = "fastest"});
    FAIL() << "an unknown solver was accepted";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'fastest'"), std::string::npos) << message;
    for (const std::string& name : solver_names()) EXPECT_NE(message.find(name), std::string::npos) << name;
  }
}

TEST(SolverRegistry, ReadmeCommandLineListsTheRegistry) {
  std::ifstream readme(REMATCH_SOURCE_DIR "/README.md");
  ASSERT_TRUE(readme) << "cannot read README.md";
  std::stringstream text;
  text << readme.rdbuf();
  std::string expected = "[--solver ";
  for (const std::string& name : solver_names()) expected += (expected.back() == ' ' ? "" : "|") + name;
  expected += "]";
  EXPECT_NE(text.str().find(expected), std::string::npos) << "README.md should list " << expected;
}

}  // namespace
}  // namespace rematch
