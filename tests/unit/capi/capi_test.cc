// The C ABI in this process: every function, its argument checks and its
// error paths, on a standalone daemon (no supervisor in the environment).
// The handoff paths, with real processes: capi_handoff_test.cc.
#include <stdlib.h>

#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "baton/baton.h"
#include "baton/errors.h"
#include "tools/harness/subprocess.h"

namespace {

// Frees the error on scope exit.
struct Err {
  baton_error* e = nullptr;
  ~Err() { baton_error_free(e); }
  baton_error** operator&() { return &e; }
  std::string message() const { return baton_error_message(e); }
  int code() const { return baton_error_code(e); }
};

// Ends the daemon as the header asks: destroyed only once it was told to exit.
struct Daemon {
  baton_daemon* d = nullptr;
  ~Daemon() {
    if (d == nullptr) return;
    int code = 0;
    baton_request_exit(d, 0, nullptr);
    baton_wait_for_exit(d, &code, nullptr);
    baton_destroy(d);
  }
};

baton_options Options(const std::string& dir) {
  baton_options o{};
  o.size = sizeof o;
  o.build_id = "capi-test";
  o.data_dir = dir.c_str();
  return o;
}

int Noop(void*, baton_hook_ctx*) { return 0; }
int NoopDrain(void*, int64_t, int64_t, baton_hook_ctx*) { return 0; }
int NoopSeal(void*, baton_seal_report*, baton_hook_ctx*) { return 0; }
int NoopBegin(void*, const baton_sealed_state*, baton_hook_ctx*) { return 0; }
int NoopResume(void*, int, baton_hook_ctx*) { return 0; }
void NoopRetire(void*) {}

baton_hooks Hooks() {
  baton_hooks h{};
  h.size = sizeof h;
  h.warm = Noop;
  h.drain = NoopDrain;
  h.seal = NoopSeal;
  h.begin = NoopBegin;
  h.resume = NoopResume;
  h.retire = NoopRetire;
  return h;
}

class CapiTest : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("BATON_DATA_DIR"); }
  baton::harness::TempDir dir_{"capi"};
};

TEST(CapiBasicsTest, AbiVersionIsTheHeaders) {
  EXPECT_EQ(baton_abi_version(), BATON_ABI_VERSION);
  EXPECT_EQ(baton_abi_version() >> 16, 1u);
}

TEST(CapiBasicsTest, ErrcNamesAreTheCxxNames) {
  for (int c = BATON_OK; c <= BATON_IO_ERROR; ++c) {
    EXPECT_EQ(std::string(baton_errc_name(c)), std::string(baton::ErrcName(static_cast<baton::Errc>(c)))) << c;
  }
  EXPECT_STREQ(baton_errc_name(-1), "unknown");
  EXPECT_STREQ(baton_errc_name(BATON_IO_ERROR + 1), "unknown");
}

TEST(CapiBasicsTest, ErrorAccessorsAcceptNull) {
  EXPECT_EQ(baton_error_code(nullptr), BATON_INTERNAL);
  EXPECT_STREQ(baton_error_message(nullptr), "");
  baton_error_free(nullptr);
  baton_destroy(nullptr);
}

TEST_F(CapiTest, CreateRejectsNullOutParameter) {
  baton_options o = Options(dir_.path());
  Err err;
  EXPECT_EQ(baton_create(&o, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.code(), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_create: daemon is NULL");
  // Without an error pointer the code alone comes back.
  EXPECT_EQ(baton_create(&o, nullptr, nullptr), BATON_INVALID_ARGUMENT);
}

TEST_F(CapiTest, CreateRejectsAnOptionsSizeItCannotTrust) {
  baton_options o = Options(dir_.path());
  o.size = 0;
  Daemon d;
  Err err;
  EXPECT_EQ(baton_create(&o, &d.d, &err), BATON_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("set it to sizeof(baton_options)"), std::string::npos) << err.message();
  EXPECT_EQ(d.d, nullptr);

  // A newer caller's larger struct: fine while the unknown tail is zero.
  struct {
    baton_options o;
    uint64_t newer_field;
  } bigger{};
  bigger.o = Options(dir_.path());
  bigger.o.size = sizeof bigger;
  EXPECT_EQ(baton_create(&bigger.o, &d.d, &err), BATON_OK) << err.message();
  baton_destroy(d.d);
  d.d = nullptr;
  bigger.newer_field = 1;
  EXPECT_EQ(baton_create(&bigger.o, &d.d, &err), BATON_INCOMPATIBLE);
  EXPECT_NE(err.message().find("does not know"), std::string::npos) << err.message();
}

TEST_F(CapiTest, CreateNeedsADataDir) {
  Daemon d;
  Err err;
  EXPECT_EQ(baton_create(nullptr, &d.d, &err), BATON_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("no data dir"), std::string::npos) << err.message();
  // NULL options: every default, the data dir from the environment.
  ::setenv("BATON_DATA_DIR", dir_.path().c_str(), 1);
  ASSERT_EQ(baton_create(nullptr, &d.d, &err), BATON_OK) << err.message();
  const char* got = nullptr;
  ASSERT_EQ(baton_data_dir(d.d, &got, &err), BATON_OK);
  EXPECT_EQ(std::string(got), dir_.path());
}

TEST_F(CapiTest, CreateRejectsAnEmptySchemaRangeAndNegativeLeaseTimes) {
  Daemon d;
  Err err;
  baton_options o = Options(dir_.path());
  o.state_schema_min = 3;
  o.state_schema_max = 2;
  EXPECT_EQ(baton_create(&o, &d.d, &err), BATON_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("[3,2]"), std::string::npos) << err.message();
  o = Options(dir_.path());
  o.lease_name = "capi";
  o.lease_ttl_ms = -1;
  EXPECT_EQ(baton_create(&o, &d.d, &err), BATON_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("negative"), std::string::npos) << err.message();
}

TEST_F(CapiTest, CreateReportsABadEnvironment) {
  ::setenv("BATON_ROLE", "cold", 1);
  Daemon d;
  Err err;
  baton_options o = Options(dir_.path());
  const int rc = baton_create(&o, &d.d, &err);
  ::unsetenv("BATON_ROLE");
  EXPECT_EQ(rc, BATON_FAILED_PRECONDITION);
  EXPECT_NE(err.message().find("BATON_CONTROL_FD"), std::string::npos) << err.message();
}

TEST_F(CapiTest, AnErrorPassedBackInIsFreedAndReplaced) {
  Err err;
  EXPECT_EQ(baton_create(nullptr, nullptr, &err), BATON_INVALID_ARGUMENT);
  const baton_error* first = err.e;
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(baton_role(nullptr, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_role: daemon is NULL");
  // A success leaves it alone.
  EXPECT_EQ(baton_testing_arm_crash_point(nullptr, &err), BATON_INVALID_ARGUMENT);
  const baton_error* last = err.e;
  baton_options o = Options(dir_.path());
  Daemon d;
  ASSERT_EQ(baton_create(&o, &d.d, &err), BATON_OK);
  EXPECT_EQ(err.e, last);
}

TEST_F(CapiTest, AccessorsOfAStandaloneDaemon) {
  baton_options o = Options(dir_.path());
  Daemon d;
  Err err;
  ASSERT_EQ(baton_create(&o, &d.d, &err), BATON_OK) << err.message();
  int role = -1;
  EXPECT_EQ(baton_role(d.d, &role, &err), BATON_OK);
  EXPECT_EQ(role, BATON_ROLE_STANDALONE);
  const char* dir = nullptr;
  EXPECT_EQ(baton_data_dir(d.d, &dir, &err), BATON_OK);
  EXPECT_EQ(std::string(dir), dir_.path());
  size_t count = 99;
  EXPECT_EQ(baton_listener_count(d.d, &count, &err), BATON_OK);
  EXPECT_EQ(count, 0u);
  uint64_t epoch = 99;
  EXPECT_EQ(baton_lease_epoch(d.d, &epoch, &err), BATON_OK);
  EXPECT_EQ(epoch, 0u);

  // NULL handle or out-parameter: INVALID_ARGUMENT naming it.
  EXPECT_EQ(baton_role(nullptr, &role, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_role(d.d, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_role: role is NULL");
  EXPECT_EQ(baton_data_dir(nullptr, &dir, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_data_dir(d.d, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_listener_count(nullptr, &count, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_listener_count(d.d, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_lease_epoch(nullptr, &epoch, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_lease_epoch(d.d, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_lease_epoch: epoch is NULL");
}

TEST_F(CapiTest, ListenerLookupErrors) {
  baton_options o = Options(dir_.path());
  Daemon d;
  Err err;
  ASSERT_EQ(baton_create(&o, &d.d, &err), BATON_OK) << err.message();
  int fd = -7;
  EXPECT_EQ(baton_listener(d.d, "http", &fd, &err), BATON_NOT_FOUND);
  EXPECT_NE(err.message().find("'http'"), std::string::npos) << err.message();
  EXPECT_EQ(fd, -7);
  EXPECT_EQ(baton_listener(nullptr, "http", &fd, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_listener(d.d, nullptr, &fd, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_listener: name is NULL");
  EXPECT_EQ(baton_listener(d.d, "http", nullptr, &err), BATON_INVALID_ARGUMENT);
  const char* name = nullptr;
  EXPECT_EQ(baton_listener_at(d.d, 0, &name, &fd, &err), BATON_NOT_FOUND);
  EXPECT_EQ(err.message(), "baton_listener_at: index 0 but there are 0 listeners");
  EXPECT_EQ(baton_listener_at(nullptr, 0, &name, &fd, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_listener_at(d.d, 0, nullptr, &fd, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_listener_at(d.d, 0, &name, nullptr, &err), BATON_INVALID_ARGUMENT);
}

TEST_F(CapiTest, StartChecksItsArguments) {
  baton_options o = Options(dir_.path());
  Daemon d;
  Err err;
  ASSERT_EQ(baton_create(&o, &d.d, &err), BATON_OK) << err.message();
  baton_hooks h = Hooks();
  EXPECT_EQ(baton_start(nullptr, &h, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_start(d.d, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_start: hooks is NULL");
  h.size = sizeof(size_t);
  EXPECT_EQ(baton_start(d.d, &h, &err), BATON_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("sizeof(baton_hooks)"), std::string::npos) << err.message();
  h = Hooks();
  h.seal = nullptr;
  EXPECT_EQ(baton_start(d.d, &h, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_start: hooks.seal is NULL");
  h = Hooks();
  h.retire = nullptr;
  EXPECT_EQ(baton_start(d.d, &h, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_start: hooks.retire is NULL");
  // None of these used up the one start.
  h = Hooks();
  EXPECT_EQ(baton_start(d.d, &h, &err), BATON_OK) << err.message();
}

TEST_F(CapiTest, StartTwiceFails) {
  baton_options o = Options(dir_.path());
  Daemon d;
  Err err;
  ASSERT_EQ(baton_create(&o, &d.d, &err), BATON_OK) << err.message();
  baton_hooks h = Hooks();
  ASSERT_EQ(baton_start(d.d, &h, &err), BATON_OK) << err.message();
  EXPECT_EQ(baton_start(d.d, &h, &err), BATON_FAILED_PRECONDITION);
  EXPECT_EQ(err.message(), "baton_start: already called for this daemon");
}

TEST_F(CapiTest, StartFailsWhileAnotherOwnerHoldsTheDataDir) {
  baton_options o = Options(dir_.path());
  Daemon first, second;
  Err err;
  ASSERT_EQ(baton_create(&o, &first.d, &err), BATON_OK) << err.message();
  ASSERT_EQ(baton_create(&o, &second.d, &err), BATON_OK) << err.message();
  baton_hooks h = Hooks();
  ASSERT_EQ(baton_start(first.d, &h, &err), BATON_OK) << err.message();
  EXPECT_EQ(baton_start(second.d, &h, &err), BATON_FAILED_PRECONDITION);
  EXPECT_NE(err.message().find(dir_.path()), std::string::npos) << err.message();
  // Destroying the owner releases the lock, but `second` used its start.
  int code = 0;
  baton_request_exit(first.d, 0, nullptr);
  baton_wait_for_exit(first.d, &code, nullptr);
  baton_destroy(first.d);
  first.d = nullptr;
  EXPECT_EQ(baton_start(second.d, &h, &err), BATON_FAILED_PRECONDITION);
}

TEST_F(CapiTest, RequestExitWakesEveryWaiterWithTheFirstCode) {
  baton_options o = Options(dir_.path());
  Daemon d;
  Err err;
  ASSERT_EQ(baton_create(&o, &d.d, &err), BATON_OK) << err.message();
  baton_hooks h = Hooks();
  ASSERT_EQ(baton_start(d.d, &h, &err), BATON_OK) << err.message();
  int codes[2] = {-1, -1};
  int rcs[2] = {-1, -1};
  std::thread a([&] { rcs[0] = baton_wait_for_exit(d.d, &codes[0], nullptr); });
  std::thread b([&] { rcs[1] = baton_wait_for_exit(d.d, &codes[1], nullptr); });
  EXPECT_EQ(baton_request_exit(d.d, 7, &err), BATON_OK);
  EXPECT_EQ(baton_request_exit(d.d, 9, &err), BATON_OK);
  a.join();
  b.join();
  EXPECT_EQ(rcs[0], BATON_OK);
  EXPECT_EQ(rcs[1], BATON_OK);
  EXPECT_EQ(codes[0], 7);
  EXPECT_EQ(codes[1], 7);
  int code = -1;
  EXPECT_EQ(baton_wait_for_exit(d.d, &code, &err), BATON_OK);
  EXPECT_EQ(code, 7);
  EXPECT_EQ(baton_wait_for_exit(nullptr, &code, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_wait_for_exit(d.d, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_wait_for_exit: exit_code is NULL");
  EXPECT_EQ(baton_request_exit(nullptr, 0, &err), BATON_INVALID_ARGUMENT);
}

TEST_F(CapiTest, ExitRequestedBeforeStartAbortsIt) {
  baton_options o = Options(dir_.path());
  Daemon d;
  Err err;
  ASSERT_EQ(baton_create(&o, &d.d, &err), BATON_OK) << err.message();
  ASSERT_EQ(baton_request_exit(d.d, 3, &err), BATON_OK);
  int code = -1;
  EXPECT_EQ(baton_wait_for_exit(d.d, &code, &err), BATON_OK);
  EXPECT_EQ(code, 3);
}

struct Captured {
  std::mutex mu;
  std::vector<std::string> lines;  // "<level> <event> <json>"
};

void Capture(void* user, int level, const char* event, const char* message, const char* json) {
  auto* c = static_cast<Captured*>(user);
  std::lock_guard<std::mutex> lock(c->mu);
  c->lines.push_back(std::to_string(level) + " " + event + " " + message + " " + json);
}

TEST_F(CapiTest, LogCallbackReceivesTheLibrarysEvents) {
  Captured got;
  baton_options o = Options(dir_.path());
  o.log = Capture;
  o.log_user = &got;
  Daemon d;
  Err err;
  ASSERT_EQ(baton_create(&o, &d.d, &err), BATON_OK) << err.message();
  baton_hooks h = Hooks();
  ASSERT_EQ(baton_start(d.d, &h, &err), BATON_OK) << err.message();
  std::lock_guard<std::mutex> lock(got.mu);
  ASSERT_FALSE(got.lines.empty());
  const std::string& line = got.lines.front();
  EXPECT_EQ(line.rfind(std::to_string(BATON_LEVEL_INFO) + " daemon.start standalone start", 0), 0u) << line;
  EXPECT_NE(line.find("\"event\":\"daemon.start\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"generation\":"), std::string::npos) << line;
}

TEST_F(CapiTest, ALeaseIsConfiguredButNotHeldBeforeStart) {
  baton_options o = Options(dir_.path());
  o.lease_name = "capi";
  o.lease_dsn = "host=/nonexistent";
  o.lease_ttl_ms = 2000;
  Daemon d;
  Err err;
  ASSERT_EQ(baton_create(&o, &d.d, &err), BATON_OK) << err.message();
  uint64_t epoch = 99;
  EXPECT_EQ(baton_lease_epoch(d.d, &epoch, &err), BATON_OK);
  EXPECT_EQ(epoch, 0u);
}

TEST(CapiTestingTest, CrashPoints) {
  Err err;
  EXPECT_EQ(baton_testing_arm_crash_point("no.such_point", &err), BATON_NOT_FOUND);
  EXPECT_NE(err.message().find("no.such_point"), std::string::npos) << err.message();
  EXPECT_EQ(baton_testing_arm_crash_point(nullptr, &err), BATON_INVALID_ARGUMENT);
  baton_testing_crash_point(nullptr);            // ignored
  baton_testing_crash_point("successor.in_warm");  // not armed: returns
  EXPECT_EXIT(
      {
        baton_testing_arm_crash_point("successor.in_warm", nullptr);
        baton_testing_crash_point("successor.in_warm");
      },
      ::testing::ExitedWithCode(86), "successor.in_warm");
}

}  // namespace
