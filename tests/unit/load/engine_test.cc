// End to end: the load engine against the in-process KV server, with and
// without injected faults. Bounds are generous: these runs share two cores.
#include "tools/load/engine.h"

#include <gtest/gtest.h>

#include <string>

#include "base/log.h"
#include "tests/unit/load/engine_test_util.h"
#include "tests/unit/load/kv_test_server.h"
#include "tools/harness/subprocess.h"

namespace baton::load {
namespace {

using test::KvFaults;
using test::KvTestServer;

using test::Describe;
using test::EngineOptions;

TEST(LoadEngine, CleanRunAgainstHealthyServer) {
  auto server = KvTestServer::Start();
  ASSERT_TRUE(server);
  RecordingSink log;
  auto report = RunLoad(EngineOptions(server->Url()), log);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->errors.Total(), 0u) << Describe(*report);
  EXPECT_GT(report->writes_acked, 0u);
  EXPECT_GT(report->reads, 0u);
  EXPECT_EQ(report->lost_writes, 0u);
  EXPECT_EQ(report->verify_errors, 0u);
  EXPECT_EQ(report->verified, report->writes_acked);
  EXPECT_EQ(report->requests, report->writes_acked + report->reads);
  EXPECT_EQ(report->mode, "keepalive");
  EXPECT_GT(report->p50_us, 0u);
  EXPECT_GE(report->max_us, report->p99_us);
  EXPECT_GE(report->p99_us, report->p50_us);
  EXPECT_FALSE(report->timeline.empty());
  EXPECT_FALSE(report->write_gaps.empty());
  EXPECT_GE(report->duration_s, 0.7);
  EXPECT_LT(report->duration_s, 10.0);
  EXPECT_EQ(ExitCodeFor(*report), kExitOk);
  EXPECT_TRUE(log.Has("load.start"));
  EXPECT_TRUE(log.Has("load.verify"));
  EXPECT_EQ(report->reconnects, 0u);
  EXPECT_EQ(report->server_closed, 0u);
}

TEST(LoadEngine, CloseModeUsesOneConnectionPerRequest) {
  auto server = KvTestServer::Start();
  ASSERT_TRUE(server);
  NullSink log;
  auto opts = EngineOptions(server->Url(), milliseconds(500));
  opts.close_mode = true;
  auto report = RunLoad(opts, log);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->mode, "close");
  EXPECT_EQ(report->errors.Total(), 0u) << Describe(*report);
  EXPECT_GT(report->writes_acked, 0u);
  EXPECT_EQ(report->lost_writes, 0u);
  EXPECT_EQ(report->reconnects, 0u) << "client-chosen closes are not reconnects";
  EXPECT_EQ(report->server_closed, 0u);
}

TEST(LoadEngine, ServerConnectionCloseIsNotAnError) {
  KvFaults faults;
  faults.close_every = 7;
  auto server = KvTestServer::Start(faults);
  ASSERT_TRUE(server);
  NullSink log;
  auto report = RunLoad(EngineOptions(server->Url()), log);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_GT(server->ClosesSent(), 0u);
  EXPECT_EQ(report->errors.Total(), 0u) << Describe(*report);
  // Every close the client saw was sent; each but the run's last ones led
  // to a new connection.
  EXPECT_GT(report->server_closed, 0u);
  EXPECT_LE(report->server_closed, server->ClosesSent());
  EXPECT_GE(report->reconnects + 4, report->server_closed) << Describe(*report);
  EXPECT_GT(report->reconnects, 0u);
  EXPECT_GT(report->writes_acked, 0u);
  EXPECT_EQ(report->lost_writes, 0u);
  EXPECT_EQ(ExitCodeFor(*report), kExitOk);
}

TEST(LoadEngine, IdleCloseWithoutHeaderIsNotAnError) {
  // The server closes keep-alive connections idle for 30 ms; the client
  // paces each connection ~150 ms apart, so every close happens while idle
  // and must be absorbed by the reuse check.
  KvFaults faults;
  faults.idle_close_ms = 30;
  auto server = KvTestServer::Start(faults);
  ASSERT_TRUE(server);
  NullSink log;
  auto opts = EngineOptions(server->Url(), milliseconds(1500));
  opts.connections = 2;
  opts.rate_limit = 13;
  auto report = RunLoad(opts, log);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_GT(server->IdleCloses(), 0u);
  EXPECT_EQ(report->errors.Total(), 0u) << Describe(*report);
  EXPECT_GT(report->server_closed, 0u);
  EXPECT_LE(report->server_closed, server->IdleCloses());
  EXPECT_GT(report->reconnects, 0u);
  EXPECT_GT(report->writes_acked, 0u);
  EXPECT_EQ(report->lost_writes, 0u);
  EXPECT_LT(report->requests, 40u) << "rate limit honoured";
}

TEST(LoadEngine, DroppedRequestCountsAsReset) {
  KvFaults faults;
  faults.drop_request = 50;
  auto server = KvTestServer::Start(faults);
  ASSERT_TRUE(server);
  RecordingSink log;
  auto report = RunLoad(EngineOptions(server->Url()), log);
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_EQ(server->Dropped(), 1u);
  EXPECT_GE(report->errors.reset, 1u) << Describe(*report);
  EXPECT_EQ(report->errors.Total(), report->errors.reset) << Describe(*report);
  // The dropped request is an error, not a polite close; the connection
  // after it is a reconnect.
  EXPECT_EQ(report->server_closed, 0u);
  EXPECT_GE(report->reconnects, 1u);
  EXPECT_EQ(report->lost_writes, 0u) << "an unanswered PUT is unknown, not lost";
  EXPECT_EQ(ExitCodeFor(*report), kExitFailures);
  EXPECT_TRUE(log.Has("load.error"));
}

TEST(LoadEngine, ForgottenWriteIsLost) {
  KvFaults faults;
  faults.forget_put = 10;
  auto server = KvTestServer::Start(faults);
  ASSERT_TRUE(server);
  RecordingSink log;
  auto report = RunLoad(EngineOptions(server->Url()), log);
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_EQ(server->Forgotten(), 1u);
  EXPECT_EQ(report->lost_writes, 1u) << Describe(*report);
  EXPECT_EQ(report->verify_errors, 0u);
  EXPECT_EQ(report->verified + 1, report->writes_acked);
  EXPECT_EQ(ExitCodeFor(*report), kExitFailures);
  EXPECT_TRUE(log.Has("load.lost_write"));
}

TEST(LoadEngine, UnixSocketTarget) {
  const harness::TempDir tmp("bl");
  const std::string path = tmp.path() + "/kv.sock";
  {
    auto server = KvTestServer::Start({}, path);
    ASSERT_TRUE(server);
    NullSink log;
    auto report = RunLoad(EngineOptions(server->Url(), milliseconds(400)), log);
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_EQ(report->errors.Total(), 0u) << Describe(*report);
    EXPECT_GT(report->writes_acked, 0u);
    EXPECT_EQ(report->lost_writes, 0u);
  }
}

TEST(LoadEngine, TargetDownIsUnavailable) {
  std::string url;
  {
    auto server = KvTestServer::Start();  // grab a free port, then close it
    ASSERT_TRUE(server);
    url = server->Url();
  }
  NullSink log;
  auto report = RunLoad(EngineOptions(url, milliseconds(200)), log);
  ASSERT_FALSE(report);
  EXPECT_TRUE(report.error().Is(Errc::kUnavailable)) << report.error().message;
}

TEST(LoadEngine, InvalidOptions) {
  LoadOptions o;
  o.connections = 0;
  NullSink log;
  auto report = RunLoad(o, log);
  ASSERT_FALSE(report);
  EXPECT_TRUE(report.error().Is(Errc::kInvalidArgument));
}

}  // namespace
}  // namespace baton::load
