// WalWriter::Rewind: after a failed write or fsync the log is cut back to
// the last durable record, so a replay finds exactly what was acknowledged.
#include <filesystem>
#include <vector>

#include <gtest/gtest.h>

#include "examples/kvd/wal.h"
#include "tests/unit/kvd/kvd_test_util.h"

namespace kvd {
namespace {

using testing::TempDir;

Status AppendOne(WalWriter& w) {
  const uint64_t rev = w.position().revision + 1;
  return w.Append(EncodeRecord({rev, "k" + std::to_string(rev), std::string(100, 'v')}), rev);
}

uint64_t Replayed(const std::string& dir) {
  auto r = ReplayWal(dir, {}, ReplayMode::kReadOnly, [](const WalRecord&) -> Status { return {}; }, nullptr);
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return 0;
  }
  EXPECT_EQ(r->tail_bytes, 0u) << "a rewound log has no tail";
  return r->end.revision;
}

TEST(WalRewindTest, CutsWhatWasWrittenAfterTheLastSync) {
  const TempDir tmp;
  auto w = WalWriter::Open(tmp.path(), {}, 1 << 20);
  ASSERT_TRUE(w) << w.error().message;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(AppendOne(*w));
  ASSERT_TRUE(w->Sync());
  const WalPosition durable = w->position();
  // Appended but never synced: as if the fsync had failed.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(AppendOne(*w));
  ASSERT_TRUE(w->Rewind(durable));
  EXPECT_EQ(w->position(), durable);
  EXPECT_EQ(std::filesystem::file_size(tmp.path() + "/" + SegmentName(durable.segment)), durable.offset);
  ASSERT_TRUE(w->Close());
  EXPECT_EQ(Replayed(tmp.path()), 3u);
  // A writer continues where the rewind left the log.
  auto again = WalWriter::Open(tmp.path(), durable, 1 << 20);
  EXPECT_TRUE(again) << again.error().message;
}

TEST(WalRewindTest, EmptiesASegmentTheFailedAppendRotatedInto) {
  const TempDir tmp;
  // Rotates before any append once the segment holds 150 bytes.
  auto w = WalWriter::Open(tmp.path(), {}, 150);
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_TRUE(AppendOne(*w));
  ASSERT_TRUE(AppendOne(*w));
  ASSERT_TRUE(w->Sync());
  const WalPosition durable = w->position();
  ASSERT_TRUE(AppendOne(*w));  // rotated into segment 2 first
  ASSERT_EQ(w->position().segment, durable.segment + 1);
  ASSERT_TRUE(w->Rewind(durable));
  EXPECT_EQ(w->position().segment, durable.segment + 1);
  EXPECT_EQ(w->position().offset, 0u);
  EXPECT_EQ(w->position().revision, durable.revision);
  ASSERT_TRUE(w->Close());
  EXPECT_EQ(Replayed(tmp.path()), 2u);
}

TEST(WalRewindTest, RefusesAPositionItNeverReached) {
  const TempDir tmp;
  auto w = WalWriter::Open(tmp.path(), {}, 1 << 20);
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_TRUE(AppendOne(*w));
  auto st = w->Rewind(WalPosition{w->position().segment + 5, 0, 0});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("cannot rewind"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace kvd
