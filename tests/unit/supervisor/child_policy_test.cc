#include "supervisor/child_policy.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "tools/harness/subprocess.h"

namespace baton::supervisor {
namespace {

bool Has(const std::vector<std::string>& env, const std::string& kv) {
  return std::find(env.begin(), env.end(), kv) != env.end();
}
bool HasName(const std::vector<std::string>& env, const std::string& name) {
  return std::any_of(env.begin(), env.end(), [&](const std::string& e) { return e.rfind(name + "=", 0) == 0; });
}

TEST(ChildPolicyTest, SanitizedEnvironmentKeepsOnlyTheSafeAndTheAsked) {
  const std::vector<std::string> ours = {"PATH=/usr/bin", "HOME=/root", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC",
                                         "LD_PRELOAD=/evil.so", "NOTIFY_SOCKET=/run/systemd/notify",
                                         "AWS_SECRET_ACCESS_KEY=hunter2", "ASAN_OPTIONS=detect_leaks=1",
                                         "BATON_CRASH_AT=successor.after_begin", "KVD_TOKEN=t", "JOURNAL_STREAM=8:9"};
  LeaseConfig lease{"host=db", "leader", seconds(10), seconds(1)};
  auto env = SanitizedEnvironment(ours, {"KVD_TOKEN"}, {{"KVD_MODE", "prod"}, {"PATH", "/opt/kvd/bin"}}, lease);
  EXPECT_TRUE(Has(env, "HOME=/root"));
  EXPECT_TRUE(Has(env, "LANG=C.UTF-8"));
  EXPECT_TRUE(Has(env, "LC_ALL=C"));
  EXPECT_TRUE(Has(env, "TZ=UTC"));
  EXPECT_TRUE(Has(env, "ASAN_OPTIONS=detect_leaks=1"));
  EXPECT_TRUE(Has(env, "JOURNAL_STREAM=8:9"));
  EXPECT_TRUE(Has(env, "BATON_CRASH_AT=successor.after_begin"));  // filtered per role later
  EXPECT_TRUE(Has(env, "KVD_TOKEN=t"));
  EXPECT_TRUE(Has(env, "KVD_MODE=prod"));
  EXPECT_TRUE(Has(env, "PATH=/opt/kvd/bin"));  // [environment] wins
  EXPECT_FALSE(HasName(env, "LD_PRELOAD"));
  EXPECT_FALSE(HasName(env, "NOTIFY_SOCKET"));
  EXPECT_FALSE(HasName(env, "AWS_SECRET_ACCESS_KEY"));
  EXPECT_TRUE(Has(env, "BATON_LEASE_DSN=host=db"));
  EXPECT_TRUE(Has(env, "BATON_LEASE_NAME=leader"));
  EXPECT_TRUE(Has(env, "BATON_LEASE_TTL_MS=10000"));
  EXPECT_TRUE(Has(env, "BATON_LEASE_OP_TIMEOUT_MS=1000"));
  // What the library reads (LeaseOptionsFromEnvironment), and nothing else.
  EXPECT_FALSE(HasName(env, "BATON_LEASE_SEAL_BUDGET_MS"));
  EXPECT_FALSE(HasName(SanitizedEnvironment(ours, {}, {}, std::nullopt), "BATON_LEASE_DSN"));
}

class AllowedBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    char buf[4096];
    ASSERT_NE(::realpath(dir_.c_str(), buf), nullptr);
    real_ = buf;
    ::mkdir((dir_ + "/releases").c_str(), 0755);
    ::mkdir((dir_ + "/releases/v2").c_str(), 0755);
    std::ofstream(dir_ + "/releases/v2/kvd") << "#!/bin/sh\n";
    std::ofstream(dir_ + "/other") << "#!/bin/sh\n";
    ASSERT_EQ(::symlink((dir_ + "/releases/v2/kvd").c_str(), (dir_ + "/current").c_str()), 0);
    ASSERT_EQ(::symlink((dir_ + "/other").c_str(), (dir_ + "/sneaky").c_str()), 0);
  }
  harness::TempDir tmp_{"allow"};
  std::string dir_, real_;
};

TEST_F(AllowedBinaryTest, EmptyListAllowsAnythingUnchanged) {
  auto r = CheckAllowedBinary({}, dir_ + "/current");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, dir_ + "/current");
}

TEST_F(AllowedBinaryTest, MatchesTheCanonicalPathAndReturnsIt) {
  auto r = CheckAllowedBinary({real_ + "/releases/*/kvd"}, dir_ + "/current");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, real_ + "/releases/v2/kvd");
  EXPECT_TRUE(CheckAllowedBinary({real_ + "/releases/v2/kvd"}, dir_ + "/releases/../releases/v2/kvd"));
}

TEST_F(AllowedBinaryTest, RefusesWhatResolvesOutsideTheList) {
  // A symlink inside an allowed-looking name does not help: the target counts.
  auto r = CheckAllowedBinary({real_ + "/releases/*/kvd", real_ + "/sneaky"}, dir_ + "/sneaky");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kPermissionDenied));
  EXPECT_NE(r.error().message.find("canonical path " + real_ + "/other"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("not in allowed_binaries"), std::string::npos);
  // '*' does not cross '/'.
  EXPECT_FALSE(CheckAllowedBinary({real_ + "/*"}, dir_ + "/releases/v2/kvd"));
  auto missing = CheckAllowedBinary({real_ + "/*"}, dir_ + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos);
}

}  // namespace
}  // namespace baton::supervisor
