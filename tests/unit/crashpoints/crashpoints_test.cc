#include "crashpoints/crashpoints.h"

#include <signal.h>

#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "tools/harness/subprocess.h"

namespace baton::crashpoints {
namespace {

using baton::harness::HelperPath;
using baton::harness::RunProgram;
using baton::harness::RunOptions;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(CrashpointsTest, RegistryNamesAreUniqueAndFindable) {
  std::set<std::string_view> names;
  for (const auto& info : All()) {
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate " << info.name;
    auto found = Find(info.name);
    ASSERT_TRUE(found) << info.name;
    EXPECT_EQ((*found)->point, info.point);
    EXPECT_FALSE(info.description.empty());
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(Point::kCount));
  auto missing = Find("no.such.point");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no.such.point"), std::string::npos);
}

TEST(CrashpointsTest, UnarmedPointDoesNothing) {
  Disarm();
  BATON_CRASH_POINT(kTestProbe);  // would _exit the test binary if armed
  SUCCEED();
}

TEST(CrashpointsTest, ParseAction) {
  EXPECT_EQ(*ParseAction("exit"), Action::kExit);
  EXPECT_EQ(*ParseAction(""), Action::kExit);
  EXPECT_EQ(*ParseAction("abort"), Action::kAbort);
  EXPECT_EQ(*ParseAction("hang"), Action::kHang);
  EXPECT_FALSE(ParseAction("explode"));
}

TEST(CrashpointsTest, ArmedExitWritesMarkerAndExitsWithDistinctCode) {
  const baton::harness::TempDir tmp("cp");
  const std::string& dir = tmp.path();
  const std::string marker = dir + "/marker";
  RunOptions opts;
  opts.env = {"BATON_CRASH_AT=test.probe", "BATON_CRASH_MARKER=" + marker};
  auto r = RunProgram({HelperPath("crashpoint_probe")}, opts);
  ASSERT_TRUE(r.exited) << r.err;
  EXPECT_EQ(r.exit_code, kCrashExitCode);
  EXPECT_EQ(r.out.find("survived"), std::string::npos);
  EXPECT_NE(ReadFile(marker).find("baton crashpoint test.probe pid "), std::string::npos);
  EXPECT_NE(r.err.find("test.probe"), std::string::npos);
}

TEST(CrashpointsTest, ArmedAbortRaisesSigabrt) {
  RunOptions opts;
  opts.env = {"BATON_CRASH_AT=test.probe", "BATON_CRASH_ACTION=abort"};
  auto r = RunProgram({HelperPath("crashpoint_probe")}, opts);
  EXPECT_FALSE(r.exited);
  EXPECT_EQ(r.signal, SIGABRT);
}

TEST(CrashpointsTest, ArmedHangNeverReturns) {
  RunOptions opts;
  opts.env = {"BATON_CRASH_AT=test.probe", "BATON_CRASH_ACTION=hang"};
  opts.timeout = std::chrono::milliseconds(1500);
  auto r = RunProgram({HelperPath("crashpoint_probe")}, opts);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_NE(r.err.find("test.probe"), std::string::npos);  // the marker still came first
}

TEST(CrashpointsTest, OtherPointArmedLetsProbeSurvive) {
  RunOptions opts;
  opts.env = {"BATON_CRASH_AT=supervisor.after_send_seal"};
  auto r = RunProgram({HelperPath("crashpoint_probe")}, opts);
  ASSERT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("survived"), std::string::npos);
}

TEST(CrashpointsTest, UnknownPointOrActionIsAnError) {
  RunOptions opts;
  opts.env = {"BATON_CRASH_AT=test.probe.typo"};
  auto r = RunProgram({HelperPath("crashpoint_probe")}, opts);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown crash point 'test.probe.typo'"), std::string::npos);
  opts.env = {"BATON_CRASH_AT=test.probe", "BATON_CRASH_ACTION=explode"};
  r = RunProgram({HelperPath("crashpoint_probe")}, opts);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("explode"), std::string::npos);
}

TEST(CrashpointsTest, CliListsEveryPointWithItsRole) {
  auto r = RunProgram({baton::harness::BinPath("baton"), "crashpoints"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& info : All()) {
    EXPECT_NE(r.out.find(std::string(info.name)), std::string::npos) << info.name;
  }
  auto only = RunProgram({baton::harness::BinPath("baton"), "crashpoints", "--role", "incumbent", "--names"});
  ASSERT_EQ(only.exit_code, 0);
  EXPECT_NE(only.out.find("incumbent.in_seal"), std::string::npos);
  EXPECT_EQ(only.out.find("supervisor."), std::string::npos);
}

}  // namespace
}  // namespace baton::crashpoints
