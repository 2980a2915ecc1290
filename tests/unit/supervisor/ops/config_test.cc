#include "supervisor/ops/config.h"

#include <gtest/gtest.h>

namespace baton::supervisor {
namespace {

constexpr const char* kFull = R"(# every key
name = "kvd"
data_dir = "/var/lib/kvd"
runtime_dir = "/run/kvd"
binary = "/opt/kvd/current/kvd"
args = ["--listen-name", "http"]
allowed_binaries = ["/opt/kvd/releases/*/kvd"]
admin_uids = [0, 1000]
pass_environment = ["KVD_TOKEN"]
metrics_listen = "127.0.0.1:9100"
events_max_bytes = 65536
fd_store = true
max_handover_fds = 256

[listeners]
http = "tcp://127.0.0.1:8080"
admin = "unix:/run/kvd/admin.sock"
api = "systemd"

[environment]
KVD_MODE = "production"

[timeouts]
hello = "2s"
warm = "2m"
drain = "10s"
seal = "4s"
begin = "20s"
commit = "5s"
resume = "15s"
term_grace = "3s"
handoff = "4m"
heartbeat = "500ms"
liveness = "3s"

[restart]
backoff_min = "200ms"
backoff_max = "10s"

[lease]
dsn = "host=db dbname=kvd"
name = "kvd-leader"
ttl = "15s"
op_timeout = "2s"
)";

TEST(ConfigTest, ParsesEveryKey) {
  auto c = ParseConfig(kFull, "kvd.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->name, "kvd");
  EXPECT_EQ(c->data_dir, "/var/lib/kvd");
  EXPECT_EQ(c->runtime_dir, "/run/kvd");
  EXPECT_EQ(c->binary, "/opt/kvd/current/kvd");
  EXPECT_EQ(c->args, (std::vector<std::string>{"--listen-name", "http"}));
  EXPECT_EQ(c->allowed_binaries, (std::vector<std::string>{"/opt/kvd/releases/*/kvd"}));
  EXPECT_EQ(c->admin_uids, (std::set<uid_t>{0, 1000}));
  EXPECT_EQ(c->pass_environment, (std::vector<std::string>{"KVD_TOKEN"}));
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9100");
  EXPECT_EQ(c->events_max_bytes, 65536u);
  EXPECT_TRUE(c->fd_store);
  EXPECT_EQ(c->max_handover_fds, 256u);
  ASSERT_EQ(c->listeners.size(), 3u);
  EXPECT_EQ(c->listeners[0].name, "http");
  EXPECT_EQ(c->listeners[0].port, 8080);
  EXPECT_EQ(c->listeners[1].kind, ListenerSpec::Kind::kUnix);
  EXPECT_EQ(c->listeners[1].path, "/run/kvd/admin.sock");
  EXPECT_TRUE(c->listeners[2].require_inherited);
  EXPECT_FALSE(c->listeners[0].require_inherited);
  EXPECT_EQ(c->environment.at("KVD_MODE"), "production");
  EXPECT_EQ(c->timeouts.hello, seconds(2));
  EXPECT_EQ(c->timeouts.warm, seconds(120));
  EXPECT_EQ(c->timeouts.drain, seconds(10));
  EXPECT_EQ(c->timeouts.seal, seconds(4));
  EXPECT_EQ(c->timeouts.begin, seconds(20));
  EXPECT_EQ(c->timeouts.commit, seconds(5));
  EXPECT_EQ(c->timeouts.resume, seconds(15));
  EXPECT_EQ(c->timeouts.term_grace, seconds(3));
  EXPECT_EQ(c->timeouts.handoff, seconds(240));
  EXPECT_EQ(c->heartbeat, milliseconds(500));
  EXPECT_EQ(c->liveness, seconds(3));
  EXPECT_EQ(c->restart_backoff_min, milliseconds(200));
  EXPECT_EQ(c->restart_backoff_max, seconds(10));
  ASSERT_TRUE(c->lease.has_value());
  EXPECT_EQ(c->lease->dsn, "host=db dbname=kvd");
  EXPECT_EQ(c->lease->name, "kvd-leader");
  EXPECT_EQ(c->lease->ttl, seconds(15));
  EXPECT_EQ(c->lease->op_timeout, seconds(2));
  EXPECT_TRUE(c->set.count("timeouts.warm"));
  EXPECT_TRUE(ValidateConfig(*c));
}

TEST(ConfigTest, ParsesUdpListeners) {
  auto c = ParseConfig("[listeners]\nhttp = \"tcp://127.0.0.1:8080\"\ndns = \"udp://[::1]:5353\"\n", "udp.toml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->listeners.size(), 2u);
  const ListenerSpec* dns = nullptr;
  for (const auto& l : c->listeners) dns = l.name == "dns" ? &l : dns;
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(dns->kind, ListenerSpec::Kind::kUdp);
  EXPECT_EQ(dns->host, "::1");
  EXPECT_EQ(dns->port, 5353);
}

TEST(ConfigTest, OmittedKeysKeepTheDesignDefaults) {
  auto c = ParseConfig("binary = \"/bin/true\"\n", "x.toml");
  ASSERT_TRUE(c) << c.error().message;
  const HandoffTimeouts defaults;
  EXPECT_EQ(c->timeouts.warm, defaults.warm);
  EXPECT_EQ(c->timeouts.handoff, defaults.handoff);
  EXPECT_EQ(c->heartbeat, seconds(1));
  EXPECT_EQ(c->liveness, seconds(5));
  EXPECT_FALSE(c->lease.has_value());
  EXPECT_FALSE(c->set.count("timeouts.warm"));
}

struct BadCase {
  const char* text;
  const char* expect;  // substring of the error, which always starts "bad.toml:<line>: "
};

TEST(ConfigTest, ErrorsNameTheFileLineAndKey) {
  const BadCase cases[] = {
      {"name = \"kvd\"\n\ndata_dri = \"/x\"\n", "bad.toml:3: data_dri: unknown key"},
      {"[timeouts]\nhello = \"1s\"\nwarm = \"soon\"\n", "bad.toml:3: timeouts.warm: "},
      {"[timeouts]\nwarm = 5\n", "bad.toml:2: timeouts.warm: expected a duration string with a unit"},
      {"[timeouts]\nwarmup = \"5s\"\n", "bad.toml:2: timeouts.warmup: unknown key"},
      {"[timeouts]\ndrain = \"-1s\"\n", "bad.toml:2: timeouts.drain: "},
      {"\n[listeners]\nhttp = \"ftp://x:1\"\n", "bad.toml:3: listeners.http: "},
      {"[listeners]\nhttp = 8080\n", "bad.toml:2: listeners.http: expected a string"},
      {"[listeners]\ndns = \"udp://127.0.0.1\"\n", "bad.toml:2: listeners.dns: --listen 'dns=udp://127.0.0.1': expected udp://HOST:PORT (no port)"},
      {"[listeners]\ndns = \"udp://[::1:53\"\n", "bad.toml:2: listeners.dns: --listen 'dns=udp://[::1:53': bad host"},
      {"admin_uids = [0, -5]\n", "bad.toml:1: admin_uids: expected an array of numeric uids"},
      {"args = \"--x\"\n", "bad.toml:1: args: expected an array of strings"},
      {"fd_store = \"yes\"\n", "bad.toml:1: fd_store: expected true or false"},
      {"events_max_bytes = 10\n", "bad.toml:1: events_max_bytes: 10 is too small"},
      {"max_handover_fds = -1\n", "bad.toml:1: max_handover_fds: -1 is out of range (0 .. 65536)"},
      {"[restart]\nbackof_max = \"1s\"\n", "bad.toml:2: restart.backof_max: unknown key"},
      {"\n\n[lease]\nname = \"x\"\n", "bad.toml:3: lease: needs both dsn and name"},
      {"[lease]\ndsn = \"d\"\nname = \"n\"\nttl = \"1s\"\nop_timeout = \"2s\"\n",
       "bad.toml:1: lease: op_timeout must be shorter than ttl"},
      {"[lease]\ndsn = \"d\"\nname = \"n\"\nseal_budget = \"5s\"\n",
       "bad.toml:4: lease.seal_budget: is not a setting: the seal, and the lease transfer inside it, is bounded by "
       "[timeouts] seal"},
      {"timeouts = \"fast\"\n", "bad.toml:1: timeouts: expected a table"},
      {"binary = \"\"\n", "bad.toml:1: binary: may not be empty"},
      {"name = \"kvd\"\nname = \"again\"\n", "bad.toml:2: "},          // TOML syntax: redefinition
      {"name = \"kvd\n", "bad.toml:1: "},                                // unterminated string
  };
  for (const auto& bc : cases) {
    auto c = ParseConfig(bc.text, "bad.toml");
    ASSERT_FALSE(c) << bc.text;
    EXPECT_TRUE(c.error().Is(Errc::kInvalidArgument)) << bc.text;
    EXPECT_EQ(c.error().message.rfind(bc.expect, 0), 0u) << "got: " << c.error().message << "\nwant: " << bc.expect;
  }
}

TEST(ConfigTest, ValidateNeedsTheWholePicture) {
  ServiceConfig c;
  EXPECT_NE(ValidateConfig(c).error().message.find("no daemon binary"), std::string::npos);
  c.binary = "/bin/true";
  EXPECT_NE(ValidateConfig(c).error().message.find("no data dir"), std::string::npos);
  c.data_dir = "/tmp";
  EXPECT_NE(ValidateConfig(c).error().message.find("no listener"), std::string::npos);
  c.listeners.push_back(*ParseListener("http=tcp://127.0.0.1:0"));
  EXPECT_TRUE(ValidateConfig(c));
  c.heartbeat = seconds(10);
  EXPECT_NE(ValidateConfig(c).error().message.find("heartbeat must be shorter"), std::string::npos);
  c.heartbeat = seconds(1);
  c.restart_backoff_min = seconds(60);
  EXPECT_NE(ValidateConfig(c).error().message.find("backoff_min is larger"), std::string::npos);
  c.restart_backoff_min = milliseconds(100);
  c.allowed_binaries = {"relative/kvd"};
  EXPECT_NE(ValidateConfig(c).error().message.find("not an absolute path"), std::string::npos);
}

TEST(ConfigTest, LoadReportsAMissingFile) {
  auto c = LoadConfig("/nonexistent/baton.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("/nonexistent/baton.toml"), std::string::npos);
}

}  // namespace
}  // namespace baton::supervisor
