// End to end against the in-process KV server: watch streams (--watches)
// and half-idle connections (--idle-fraction). Bounds are generous: these
// runs share two cores.
#include <gtest/gtest.h>

#include <string>

#include "base/log.h"
#include "tests/unit/load/engine_test_util.h"
#include "tests/unit/load/kv_test_server.h"
#include "tools/harness/subprocess.h"
#include "tools/load/engine.h"

namespace baton::load {
namespace {

using test::KvFaults;
using test::KvTestServer;

using test::Describe;

LoadOptions Options(const std::string& url, int watches, Duration duration = milliseconds(800)) {
  LoadOptions o = test::EngineOptions(url, duration);
  o.watches = watches;
  o.watch_wait = seconds(20);
  return o;
}

TEST(LoadWatch, StreamsSeeEveryAcknowledgedWriteOnce) {
  auto server = KvTestServer::Start();
  ASSERT_TRUE(server);
  RecordingSink log;
  auto report = RunLoad(Options(server->Url(), 3), log);
  ASSERT_TRUE(report) << report.error().message;
  const WatchReport& w = report->watch;
  EXPECT_EQ(report->errors.Total(), 0u) << Describe(*report);
  ASSERT_GT(report->writes_acked, 0u);
  EXPECT_EQ(w.streams, 3);
  EXPECT_EQ(w.from, 1u) << "current revision (0) + 1";
  EXPECT_EQ(w.last_acked_rev, report->writes_acked) << "every write stored, revisions 1..N";
  EXPECT_TRUE(w.checked);
  EXPECT_EQ(w.behind, 0u) << Describe(*report);
  EXPECT_EQ(w.min_last_rev, w.last_acked_rev);
  EXPECT_EQ(w.counts.events, 3 * report->writes_acked) << Describe(*report);
  EXPECT_TRUE(w.Continuous()) << Describe(*report);
  EXPECT_EQ(w.counts.server_ends, 0u);
  EXPECT_EQ(server->Watches(), 3u);
  EXPECT_EQ(ExitCodeFor(*report), kExitOk);
  EXPECT_NE(FormatJson(*report).find("\"watch\":{\"streams\":3,"), std::string::npos);
  EXPECT_NE(FormatHuman(*report).find("continuous"), std::string::npos);
}

// The server ends each stream after 40 events: the client reconnects with
// from=last+1, and across those reconnects every revision still comes
// exactly once; the reconnects alone make the run fail.
TEST(LoadWatch, ServerEndsAreFollowedAcrossReconnects) {
  KvFaults faults;
  faults.watch_end_after = 40;
  auto server = KvTestServer::Start(faults);
  ASSERT_TRUE(server);
  RecordingSink log;
  auto report = RunLoad(Options(server->Url(), 2), log);
  ASSERT_TRUE(report) << report.error().message;
  const WatchReport& w = report->watch;
  ASSERT_GT(report->writes_acked, 80u) << "enough writes for a reconnect";
  EXPECT_GT(w.counts.server_ends, 0u) << Describe(*report);
  EXPECT_GE(w.counts.reconnects + 2, w.counts.server_ends) << Describe(*report);
  EXPECT_LE(w.counts.reconnects, w.counts.server_ends) << Describe(*report);
  EXPECT_EQ(w.counts.gaps, 0u) << Describe(*report);
  EXPECT_EQ(w.counts.duplicates, 0u) << Describe(*report);
  EXPECT_EQ(w.counts.resets, 0u) << Describe(*report);
  EXPECT_EQ(w.counts.errors, 0u) << Describe(*report);
  EXPECT_EQ(w.counts.events, 2 * report->writes_acked) << Describe(*report);
  EXPECT_EQ(w.behind, 0u);
  EXPECT_FALSE(w.Continuous());
  EXPECT_EQ(ExitCodeFor(*report), kExitFailures);
  EXPECT_TRUE(log.Has("load.watch_end"));
}

TEST(LoadWatch, MissingRevisionIsAGap) {
  KvFaults faults;
  faults.watch_skip_rev = 10;
  auto server = KvTestServer::Start(faults);
  ASSERT_TRUE(server);
  RecordingSink log;
  auto report = RunLoad(Options(server->Url(), 2), log);
  ASSERT_TRUE(report) << report.error().message;
  const WatchReport& w = report->watch;
  ASSERT_GT(report->writes_acked, 10u);
  EXPECT_EQ(w.counts.gaps, 2u) << Describe(*report);
  EXPECT_EQ(w.counts.first_gap_rev, 11u);
  EXPECT_EQ(w.counts.duplicates, 0u);
  EXPECT_EQ(w.behind, 0u) << "the rest still arrives";
  EXPECT_FALSE(w.Continuous());
  EXPECT_FALSE(report->Clean());
  EXPECT_EQ(ExitCodeFor(*report), kExitFailures);
  EXPECT_TRUE(log.Has("load.watch_gap"));
  EXPECT_NE(FormatJson(*report).find("\"first_gap_rev\":11"), std::string::npos) << Describe(*report);
}

TEST(LoadWatch, CompactedStartIsReportedAndGivenUp) {
  KvFaults faults;
  faults.watch_oldest = 1000000;
  auto server = KvTestServer::Start(faults);
  ASSERT_TRUE(server);
  RecordingSink log;
  auto opts = Options(server->Url(), 2, milliseconds(300));
  opts.watch_from = 5;
  opts.watch_wait = seconds(1);
  auto report = RunLoad(opts, log);
  ASSERT_TRUE(report) << report.error().message;
  const WatchReport& w = report->watch;
  EXPECT_EQ(w.from, 5u);
  EXPECT_EQ(w.counts.compacted, 2u) << Describe(*report);
  EXPECT_EQ(w.counts.events, 0u);
  EXPECT_EQ(w.counts.errors, 0u) << Describe(*report);
  EXPECT_EQ(server->Watches(), 2u) << "a compacted stream is not retried";
  EXPECT_EQ(w.behind, 2u);
  EXPECT_EQ(ExitCodeFor(*report), kExitFailures);
  EXPECT_TRUE(log.Has("load.watch_compacted"));
}

TEST(LoadWatch, UnixSocketTarget) {
  const harness::TempDir tmp("bw");
  auto server = KvTestServer::Start({}, tmp.path() + "/kv.sock");
  ASSERT_TRUE(server);
  NullSink log;
  auto report = RunLoad(Options(server->Url(), 2, milliseconds(400)), log);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_TRUE(report->watch.Ok()) << Describe(*report);
  EXPECT_EQ(report->watch.counts.events, 2 * report->writes_acked);
}

// Half the connections idle between bursts on the same connection: no
// reconnect, no server close.
TEST(LoadIdle, HalfIdleConnectionsReuseTheirConnection) {
  auto server = KvTestServer::Start();
  ASSERT_TRUE(server);
  NullSink log;
  auto opts = Options(server->Url(), 0, milliseconds(1200));
  opts.idle_fraction = 0.5;
  opts.burst = milliseconds(100);
  opts.idle = milliseconds(300);
  auto report = RunLoad(opts, log);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->idle_connections, 2);
  EXPECT_EQ(report->errors.Total(), 0u) << Describe(*report);
  EXPECT_EQ(report->reconnects, 0u) << Describe(*report);
  EXPECT_EQ(report->server_closed, 0u) << Describe(*report);
  EXPECT_EQ(report->lost_writes, 0u);
  EXPECT_NE(FormatJson(*report).find("\"idle_connections\":2"), std::string::npos);
}

// A server that closes connections idle for 100 ms closes the idle ones
// during each 400 ms idle period: each such close is counted once as
// server_closed and followed by one reconnect, never an error.
TEST(LoadIdle, IdleClosesAreCountedNotErrors) {
  KvFaults faults;
  faults.idle_close_ms = 100;
  auto server = KvTestServer::Start(faults);
  ASSERT_TRUE(server);
  NullSink log;
  auto opts = Options(server->Url(), 0, milliseconds(2000));
  opts.connections = 2;
  opts.idle_fraction = 0.5;
  opts.burst = milliseconds(100);
  opts.idle = milliseconds(400);
  auto report = RunLoad(opts, log);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->idle_connections, 1);
  EXPECT_EQ(report->errors.Total(), 0u) << Describe(*report);
  EXPECT_GT(server->IdleCloses(), 0u);
  EXPECT_GE(report->server_closed, 2u) << Describe(*report);
  EXPECT_LE(report->server_closed, server->IdleCloses());
  EXPECT_EQ(report->reconnects, report->server_closed) << Describe(*report);
  EXPECT_EQ(report->lost_writes, 0u);
}

TEST(LoadIdle, Validation) {
  LoadOptions o;
  o.target = *ParseTarget("http://127.0.0.1:1");
  o.idle_fraction = 1.5;
  EXPECT_FALSE(Validate(o));
  o.idle_fraction = 0.5;
  o.close_mode = true;
  EXPECT_FALSE(Validate(o));
  o.close_mode = false;
  o.idle = Duration::zero();
  EXPECT_FALSE(Validate(o));
  o.idle = seconds(1);
  EXPECT_TRUE(Validate(o));
  o.watches = -1;
  EXPECT_FALSE(Validate(o));
  o.watches = 1;
  o.watch_from = 0;
  EXPECT_FALSE(Validate(o));
}

}  // namespace
}  // namespace baton::load
