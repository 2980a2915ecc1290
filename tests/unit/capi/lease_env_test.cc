// The lease contract between `baton supervise` and libbaton: the
// supervisor's [lease] reaches every generation as BATON_LEASE_* variables,
// and the library (not each daemon) reads them when the daemon configures no
// lease itself. Through the public C++ API and the C ABI, as daemons use it.
#include <stdlib.h>

#include <memory>

#include <gtest/gtest.h>

#include "baton/baton.h"
#include "baton/daemon.h"
#include "tools/harness/subprocess.h"

namespace {

// Ends a daemon that never started as the header asks: told to exit first.
void End(std::unique_ptr<baton::Daemon>& d) {
  d->RequestExit(0);
  d->WaitForExit();
  d.reset();
}

class LeaseEnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("BATON_LEASE_NAME", "from-supervisor", 1);
    ::setenv("BATON_LEASE_DSN", "host=/nonexistent dbname=lease", 1);
    ::setenv("BATON_LEASE_TTL_MS", "4000", 1);
    ::setenv("BATON_LEASE_OP_TIMEOUT_MS", "500", 1);
  }
  void TearDown() override {
    for (const char* v : {"BATON_LEASE_NAME", "BATON_LEASE_DSN", "BATON_LEASE_TTL_MS", "BATON_LEASE_OP_TIMEOUT_MS"}) {
      ::unsetenv(v);
    }
  }
  baton::harness::TempDir dir_{"lease-env"};
};

TEST_F(LeaseEnvironmentTest, TheSupervisorsLeaseIsReadByTheLibrary) {
  auto o = baton::LeaseOptionsFromEnvironment();
  ASSERT_TRUE(o.has_value()) << o.error().message;
  ASSERT_TRUE(o->has_value());
  EXPECT_EQ((*o)->name, "from-supervisor");
  EXPECT_EQ((*o)->dsn, "host=/nonexistent dbname=lease");
  EXPECT_EQ((*o)->ttl, std::chrono::milliseconds(4000));
  EXPECT_EQ((*o)->op_timeout, std::chrono::milliseconds(500));

  auto d = baton::Daemon::Create({.data_dir = dir_.path()});
  ASSERT_TRUE(d.has_value()) << d.error().message;
  ASSERT_NE((*d)->lease(), nullptr) << "a daemon configuring no lease takes the supervisor's";
  EXPECT_EQ((*d)->lease()->name(), "from-supervisor");
  End(*d);
}

TEST_F(LeaseEnvironmentTest, TheDaemonsOwnLeaseWins) {
  auto d = baton::Daemon::Create({.data_dir = dir_.path(), .lease = baton::LeaseOptions{.name = "own"}});
  ASSERT_TRUE(d.has_value()) << d.error().message;
  ASSERT_NE((*d)->lease(), nullptr);
  EXPECT_EQ((*d)->lease()->name(), "own");
  End(*d);
}

TEST_F(LeaseEnvironmentTest, NoNameNoLease) {
  ::unsetenv("BATON_LEASE_NAME");
  auto o = baton::LeaseOptionsFromEnvironment();
  ASSERT_TRUE(o.has_value()) << o.error().message;
  EXPECT_FALSE(o->has_value());
  auto d = baton::Daemon::Create({.data_dir = dir_.path()});
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ((*d)->lease(), nullptr);
  End(*d);
}

TEST_F(LeaseEnvironmentTest, AMalformedSettingIsAClearError) {
  for (const char* bad : {"12x", "0", "-5", "", "99999999999"}) {
    ::setenv("BATON_LEASE_TTL_MS", bad, 1);
    auto o = baton::LeaseOptionsFromEnvironment();
    if (*bad == '\0') {  // empty = unset: the default
      ASSERT_TRUE(o.has_value());
      EXPECT_EQ((*o)->ttl, std::chrono::milliseconds(10000));
      continue;
    }
    ASSERT_FALSE(o.has_value()) << bad;
    EXPECT_TRUE(o.error().Is(baton::Errc::kInvalidArgument));
    EXPECT_EQ(o.error().message, std::string("BATON_LEASE_TTL_MS='") + bad +
                                     "': expected a whole number of milliseconds from 1 to 86400000");
    auto d = baton::Daemon::Create({.data_dir = dir_.path()});
    ASSERT_FALSE(d.has_value());
    EXPECT_EQ(d.error().message, o.error().message);
  }
}

TEST_F(LeaseEnvironmentTest, TheCAbiTakesItToo) {
  baton_options o{};
  o.size = sizeof o;
  const std::string data = dir_.path();
  o.data_dir = data.c_str();
  baton_daemon* d = nullptr;
  ASSERT_EQ(baton_create(&o, &d, nullptr), BATON_OK);
  // lease_name NULL: the supervisor's lease, not yet held before start.
  uint64_t epoch = 99;
  EXPECT_EQ(baton_lease_epoch(d, &epoch, nullptr), BATON_OK);
  EXPECT_EQ(epoch, 0u);
  int code = 0;
  baton_request_exit(d, 0, nullptr);
  baton_wait_for_exit(d, &code, nullptr);
  baton_destroy(d);
  d = nullptr;
  ::setenv("BATON_LEASE_OP_TIMEOUT_MS", "nope", 1);
  baton_error* err = nullptr;
  EXPECT_EQ(baton_create(&o, &d, &err), BATON_INVALID_ARGUMENT);
  ASSERT_NE(err, nullptr);
  EXPECT_NE(std::string(baton_error_message(err)).find("BATON_LEASE_OP_TIMEOUT_MS='nope'"), std::string::npos);
  baton_error_free(err);
}

}  // namespace
