// Lease epochs in kvd's WAL: records written under a lease carry the
// writer's epoch; records without one (no lease, older logs) still replay;
// a stamped record too short to hold its epoch is corruption.
#include <gtest/gtest.h>

#include "examples/kvd/wal.h"
#include "tests/unit/kvd/kvd_test_util.h"

namespace kvd {
namespace {

using testing::TempDir;

struct Seen {
  uint64_t revision;
  std::string key, value;
  uint64_t epoch;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> ReplayAll(const std::string& dir) {
  std::vector<Seen> out;
  auto r = ReplayWal(
      dir, {}, ReplayMode::kReadOnly,
      [&](const WalRecord& rec) -> Status {
        out.push_back({rec.revision, std::string(rec.key), std::string(rec.value), rec.epoch});
        return {};
      },
      nullptr);
  EXPECT_TRUE(r) << r.error().message;
  return out;
}

TEST(KvdWalEpochTest, StampedAndPlainRecordsReplayWithTheirEpochs) {
  TempDir dir;
  auto w = WalWriter::Open(dir.path(), {}, 1 << 20);
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_TRUE(w->Append(EncodeRecord({1, "a", "plain"}), 1));  // written before the lease was configured
  ASSERT_TRUE(w->Append(EncodeRecord({2, "b", "x", 7}) + EncodeRecord({3, "", "", 8}), 3));
  ASSERT_TRUE(w->Close());
  EXPECT_EQ(ReplayAll(dir.path()),
            (std::vector<Seen>{{1, "a", "plain", 0}, {2, "b", "x", 7}, {3, "", "", 8}}));
}

TEST(KvdWalEpochTest, AStampedRecordIsEightBytesLongerAndFlagsItsKeyLength) {
  const std::string plain = EncodeRecord({5, "key", "value"});
  const std::string stamped = EncodeRecord({5, "key", "value", 1});
  EXPECT_EQ(stamped.size(), plain.size() + 8);
  // The key length field (after the 8-byte header and the revision) has its top bit set.
  EXPECT_NE(static_cast<unsigned char>(stamped[kRecordHeaderBytes + 8 + 3]) & 0x80, 0);
  EXPECT_EQ(static_cast<unsigned char>(plain[kRecordHeaderBytes + 8 + 3]) & 0x80, 0);
}

TEST(KvdWalEpochTest, AFlaggedRecordTooShortForItsEpochIsCorrupt) {
  TempDir dir;
  // A 12-byte payload whose key length claims an epoch follows: valid CRC,
  // but no room for the epoch. In the middle of the log this is corruption.
  std::string payload(12, '\0');
  payload[0] = 1;                         // revision 1
  payload[11] = static_cast<char>(0x80);  // key length 0 | flag
  std::string rec(8, '\0');
  const uint32_t len = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) rec[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  const uint32_t crc = Crc32c(payload, Crc32c(rec.substr(0, 4)));
  for (int i = 0; i < 4; ++i) rec[4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  rec += payload;
  auto w = WalWriter::Open(dir.path(), {}, 1 << 20);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Append(rec + EncodeRecord({2, "k", "v", 3}), 2));
  ASSERT_TRUE(w->Close());
  auto r = ReplayWal(dir.path(), {}, ReplayMode::kReadOnly, [](const WalRecord&) -> Status { return {}; }, nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("corrupt record"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace kvd
