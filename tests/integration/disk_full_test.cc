// kvd on a full disk: writes are refused and /healthz says so, and an
// upgrade still hands over: the incumbent seals at its last durable
// revision and the successor replays exactly what was acknowledged.
#include <map>
#include <string>

#include "tests/integration/integration_util.h"
#include "tools/harness/http.h"

namespace baton::harness {
namespace {

std::string Healthz(const Cluster& c) { return HttpBody(HttpGet(c.port(), "/healthz")); }

TEST(DiskFullTest, AWriterThatFailedStillHandsOverEveryAcknowledgedWrite) {
  // 1 MiB of tmpfs for the data dir; 16 KiB values fill it within ~64 PUTs.
  Cluster c({.data_tmpfs_size = "1m"});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const std::string value(16 * 1024, 'v');
  std::map<std::string, std::string> acked;
  std::string refusal;
  for (int i = 0; i < 1000 && refusal.empty(); ++i) {
    const std::string key = "k" + std::to_string(i);
    const std::string v = std::to_string(i) + value;
    const std::string res = HttpRequest(c.port(), "PUT", "/kv/" + key, v);
    if (HttpStatus(res) == 200) {
      acked[key] = v;
    } else {
      refusal = res;
    }
  }
  ASSERT_FALSE(refusal.empty()) << "the 1 MiB data dir never filled up";
  ASSERT_GT(acked.size(), 10u);
  EXPECT_EQ(HttpStatus(refusal), 503) << refusal;
  EXPECT_NE(refusal.find("No space left on device"), std::string::npos) << refusal;
  // Refused from now on, and /healthz says so.
  EXPECT_EQ(HttpStatus(HttpRequest(c.port(), "PUT", "/kv/small", "x")), 503);
  EXPECT_NE(Healthz(c).find(R"("writable":false)"), std::string::npos) << Healthz(c);

  // The way out: an upgrade. The old generation seals what is durable.
  const pid_t old_pid = c.IncumbentPid();
  const auto up = c.Upgrade();
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err << "\n" << c.SupervisorLog();
  EXPECT_EQ(Outcome(up), "committed");
  EXPECT_NE(c.IncumbentPid(), old_pid);
  const std::string health = Healthz(c);
  EXPECT_NE(health.find(R"("revision":)" + std::to_string(acked.size()) + ","), std::string::npos) << health;
  for (const auto& [key, v] : acked) {
    const std::string res = HttpGet(c.port(), "/kv/" + key);
    ASSERT_EQ(HttpStatus(res), 200) << key << ": " << res;
    EXPECT_EQ(HttpBody(res), v) << key;
  }
}

}  // namespace
}  // namespace baton::harness
