// `kvd --prefill N`: an empty data dir gets a WAL of N records that a
// replay (and so kvd's cold start) takes as acknowledged.
#include <gtest/gtest.h>

#include "examples/kvd/wal.h"
#include "tests/unit/kvd/kvd_test_util.h"
#include "tools/harness/cluster.h"

namespace kvd {
namespace {

using baton::harness::BinPath;
using baton::harness::RunCommand;
using testing::TempDir;

TEST(PrefillTest, WritesRecordsAReplayAccepts) {
  const TempDir tmp;
  const auto r = RunCommand({BinPath("kvd"), "--prefill", "5000", "--prefill-value-bytes", "64", "--rotate-bytes",
                             "100000", "--data-dir", tmp.path()},
                            std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(r.json.is_object()) << r.out;
  EXPECT_EQ(r.json.at("records").to_number<uint64_t>(), 5000u);
  uint64_t n = 0;
  std::string first_key;
  auto replay = ReplayWal(
      tmp.path(), {}, ReplayMode::kReadOnly,
      [&](const WalRecord& rec) -> Status {
        if (n++ == 0) first_key = rec.key;
        EXPECT_EQ(rec.value.size(), 64u);
        return {};
      },
      nullptr);
  ASSERT_TRUE(replay) << replay.error().message;
  EXPECT_EQ(n, 5000u);
  EXPECT_EQ(replay->end.revision, 5000u);
  EXPECT_GT(replay->end.segment, 1u) << "--rotate-bytes is honoured";
  EXPECT_EQ(first_key, "prefill-000000001");
}

TEST(PrefillTest, RefusesADataDirThatHasAWal) {
  const TempDir tmp;
  const std::vector<std::string> argv = {BinPath("kvd"), "--prefill", "10", "--data-dir", tmp.path()};
  ASSERT_EQ(RunCommand(argv, std::chrono::seconds(30)).exit_code, 0);
  const auto again = RunCommand(argv, std::chrono::seconds(30));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("wal-000001.log"), std::string::npos) << again.err;
}

TEST(PrefillTest, NeedsADataDir) {
  const auto r = RunCommand({BinPath("kvd"), "--prefill", "10"}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs --data-dir"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvd
