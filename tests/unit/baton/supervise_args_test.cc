#include "tools/baton/supervise.h"

#include <gtest/gtest.h>

#include "tools/baton/event_format.h"

namespace baton::cli {
namespace {

supervisor::ServiceConfig FromFile() {
  auto c = supervisor::ParseConfig(R"(
binary = "/opt/kvd/kvd"
args = ["--a"]
data_dir = "/var/lib/kvd"
[listeners]
http = "tcp://127.0.0.1:8080"
[timeouts]
warm = "2m"
drain = "10s"
)",
                                   "f.toml");
  EXPECT_TRUE(c);
  return *c;
}

TEST(MergeFlagsTest, NoFlagsKeepsTheFile) {
  auto c = MergeFlags(FromFile(), {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->binary, "/opt/kvd/kvd");
  EXPECT_EQ(c->args, std::vector<std::string>{"--a"});
  EXPECT_EQ(c->timeouts.warm, seconds(120));
  EXPECT_EQ(c->listeners.at(0).port, 8080);
}

TEST(MergeFlagsTest, FlagsOverrideTheFile) {
  SuperviseArgs a;
  a.listeners = {"web=tcp://127.0.0.1:9090"};
  a.data_dir = "/srv/kvd";
  a.runtime_dir = "/run/x";
  a.timeouts = {"drain=3s", "term-grace=1s"};
  a.allowed_binaries = {"/opt/kvd/*"};
  a.metrics_listen = "127.0.0.1:0";
  a.fd_store = true;
  a.command = {"/usr/bin/kvd2", "--b", "--c"};
  auto c = MergeFlags(FromFile(), a);
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->listeners.size(), 1u);
  EXPECT_EQ(c->listeners[0].name, "web");
  EXPECT_EQ(c->data_dir, "/srv/kvd");
  EXPECT_EQ(c->runtime_dir, "/run/x");
  EXPECT_EQ(c->timeouts.drain, seconds(3));
  EXPECT_EQ(c->timeouts.warm, seconds(120));  // untouched by the flags
  EXPECT_EQ(c->timeouts.term_grace, seconds(1));
  EXPECT_EQ(c->allowed_binaries, std::vector<std::string>{"/opt/kvd/*"});
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:0");
  EXPECT_TRUE(c->fd_store);
  EXPECT_EQ(c->binary, "/usr/bin/kvd2");
  EXPECT_EQ(c->args, (std::vector<std::string>{"--b", "--c"}));
}

TEST(MergeFlagsTest, BadFlagsAndIncompleteResultsAreErrors) {
  SuperviseArgs a;
  a.timeouts = {"warm=soon"};
  auto bad = MergeFlags(FromFile(), a);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("warm=soon"), std::string::npos);
  a.timeouts = {"nap=1s"};
  EXPECT_NE(MergeFlags(FromFile(), a).error().message.find("unknown timeout 'nap'"), std::string::npos);
  auto empty = MergeFlags({}, {});
  ASSERT_TRUE(empty);
  auto st = supervisor::ValidateConfig(*empty);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("no daemon binary"), std::string::npos);
}

TEST(EventFormatTest, HumanLinesAndGarbageKept) {
  EXPECT_EQ(HumanEventLine(R"({"ts_ms":1700000000123,"level":"warn","event":"handoff.end","msg":"rolled_back: x"})"),
            "2023-11-14T22:13:20.123Z warn  handoff.end            rolled_back: x");
  EXPECT_EQ(HumanEventLine("not json"), "not json");
}

}  // namespace
}  // namespace baton::cli
