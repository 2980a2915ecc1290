// `protocol` and the [notify] table (supervisor/ops/config.h): every key, and
// bad values refused with the key named.
#include <gtest/gtest.h>

#include "supervisor/ops/config.h"

namespace baton::supervisor {
namespace {

const std::string kBase =
    "binary = \"/bin/true\"\ndata_dir = \"/tmp\"\n[listeners]\nhttp = \"tcp://127.0.0.1:8080\"\n";

Result<ServiceConfig> Parse(const std::string& text) { return ParseConfig(text, "t.toml"); }

std::string ErrorOf(const std::string& text) {
  auto c = Parse(text);
  if (!c) return c.error().message;
  auto st = ValidateConfig(*c);
  return st ? "" : st.error().message;
}

TEST(NotifyConfigTest, EveryKey) {
  auto c = Parse("protocol = \"notify\"\n" + kBase +
                 "[notify]\nstrategy = \"sequential\"\nstop_signal = \"SIGINT\"\nready_timeout = \"7s\"\n"
                 "readiness = \"http\"\nprobe_address = \"127.0.0.1:9100\"\nprobe_path = \"/up\"\n"
                 "probe_interval = \"50ms\"\nfd_store_max = 8\nwatchdog = \"3s\"\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(ValidateConfig(*c));
  const NotifyOptions& n = c->notify;
  EXPECT_EQ(n.protocol, ChildProtocol::kNotify);
  EXPECT_EQ(n.strategy, NotifyStrategy::kSequential);
  EXPECT_EQ(n.stop_signal, SIGINT);
  EXPECT_EQ(n.ready, seconds(7));
  EXPECT_EQ(n.readiness, NotifyOptions::Readiness::kProbe);
  EXPECT_EQ(n.probe.kind, ProbeSpec::Kind::kHttp);
  EXPECT_EQ(n.probe.host, "127.0.0.1");
  EXPECT_EQ(n.probe.port, 9100);
  EXPECT_EQ(n.probe.path, "/up");
  EXPECT_EQ(n.probe_interval, milliseconds(50));
  EXPECT_EQ(n.fd_store_max, 8u);
  EXPECT_EQ(n.watchdog, seconds(3));
}

TEST(NotifyConfigTest, DefaultsAreTheNativeProtocol) {
  auto c = Parse(kBase);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->notify.protocol, ChildProtocol::kBaton);
  EXPECT_EQ(c->notify.fd_store_max, 0u);
}

TEST(NotifyConfigTest, BadValuesNameTheKey) {
  const std::string n = "protocol = \"notify\"\n" + kBase + "[notify]\n";
  EXPECT_NE(ErrorOf("protocol = \"systemd\"\n" + kBase).find("t.toml:1: protocol"), std::string::npos);
  EXPECT_NE(ErrorOf(n + "strategy = \"both\"\n").find("notify.strategy"), std::string::npos);
  EXPECT_NE(ErrorOf(n + "stop_signal = \"TERM\"\n").find("notify.stop_signal"), std::string::npos);
  EXPECT_NE(ErrorOf(n + "ready_timeout = \"soon\"\n").find("notify.ready_timeout"), std::string::npos);
  EXPECT_NE(ErrorOf(n + "readiness = \"magic\"\n").find("notify.readiness"), std::string::npos);
  EXPECT_NE(ErrorOf(n + "probe_address = \"localhost\"\n").find("notify.probe_address"), std::string::npos);
  EXPECT_NE(ErrorOf(n + "probe_path = \"up\"\n").find("notify.probe_path"), std::string::npos);
  EXPECT_NE(ErrorOf(n + "fd_store_max = -1\n").find("notify.fd_store_max"), std::string::npos);
  EXPECT_NE(ErrorOf(n + "colour = \"red\"\n").find("notify.colour: unknown key"), std::string::npos);
}

TEST(NotifyConfigTest, ProbesThatProveNothingAreRefused) {
  const std::string n = "protocol = \"notify\"\n" + kBase + "[notify]\n";
  // A tcp connect to a listener the supervisor holds always succeeds.
  EXPECT_NE(ErrorOf(n + "readiness = \"tcp\"\nprobe_address = \"127.0.0.1:8080\"\n").find("always succeeds"),
            std::string::npos);
  // With overlap the old generation answers HTTP on the listener too.
  EXPECT_NE(ErrorOf(n + "readiness = \"http\"\nprobe_address = \"127.0.0.1:8080\"\n").find("overlap"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(n + "strategy = \"sequential\"\nreadiness = \"http\"\nprobe_address = \"127.0.0.1:8080\"\n"), "");
  EXPECT_EQ(ErrorOf(n + "readiness = \"tcp\"\nprobe_address = \"127.0.0.1:9100\"\n"), "");
  EXPECT_NE(ErrorOf(n + "readiness = \"exec\"\n").find("probe_command"), std::string::npos);
  // Strategy and readiness mean nothing to a native daemon.
  EXPECT_NE(ErrorOf(kBase + "[notify]\nstrategy = \"sequential\"\n").find("protocol = \"notify\" only"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(kBase + "[notify]\nfd_store_max = 4\nwatchdog = \"5s\"\n"), "");
}

}  // namespace
}  // namespace baton::supervisor
