// The WAL format, replay and recovery rules (examples/kvd/wal.h).
#include "examples/kvd/wal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/log.h"
#include "examples/kvd/store.h"
#include "tests/unit/kvd/kvd_test_util.h"

namespace kvd {
namespace {

using testing::TempDir;

struct Rec {
  uint64_t revision;
  std::string key, value;
  bool operator==(const Rec&) const = default;
};

// Writes records rev first..first+n-1 as key kN=vN, one batch each.
WalPosition Write(const std::string& dir, const WalPosition& from, int n, uint64_t rotate = 1 << 20) {
  auto w = WalWriter::Open(dir, from, rotate);
  EXPECT_TRUE(w) << w.error().message;
  for (int i = 0; i < n; ++i) {
    const uint64_t rev = w->position().revision + 1;
    const std::string key = fmt::format("k{}", rev);
    const std::string value = fmt::format("v{}", rev);
    EXPECT_TRUE(w->Append(EncodeRecord({rev, key, value}), rev));
  }
  EXPECT_TRUE(w->Close());
  return w->position();
}

Result<ReplayResult> Replay(const std::string& dir, const WalPosition& from, ReplayMode mode,
                            std::vector<Rec>* out, baton::LogSink* log = nullptr) {
  return ReplayWal(
      dir, from, mode,
      [out](const WalRecord& r) -> Status {
        out->push_back({r.revision, std::string(r.key), std::string(r.value)});
        return {};
      },
      log);
}

uint64_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

void PatchByte(const std::string& path, uint64_t offset, char xor_with) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c ^= xor_with;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

void AppendBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::app | std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(KvdCrc32cTest, FastPathAgreesWithTheTableAtEveryLengthAndAlignment) {
  std::string data(1000, '\0');
  uint32_t x = 12345;
  for (auto& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  for (size_t off = 0; off < 9; ++off) {
    for (size_t len = 0; len + off <= 300; ++len) {
      const std::string_view v(data.data() + off, len);
      ASSERT_EQ(Crc32c(v), Crc32cPortable(v)) << "offset " << off << " length " << len;
      ASSERT_EQ(Crc32c(v, 0xdeadbeef), Crc32cPortable(v, 0xdeadbeef)) << "offset " << off << " length " << len;
    }
  }
}

TEST(KvdCrc32cTest, KnownVector) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c("6789", Crc32c("12345")), 0xE3069283u);
  EXPECT_EQ(Crc32cPortable("123456789"), 0xE3069283u);
}

TEST(KvdWalTest, AppendThenReplayReturnsEveryRecordInOrder) {
  TempDir dir;
  const WalPosition end = Write(dir.path(), {}, 5);
  EXPECT_EQ(end.segment, 1u);
  EXPECT_EQ(end.revision, 5u);
  std::vector<Rec> got;
  auto r = Replay(dir.path(), {}, ReplayMode::kRepair, &got);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->records, 5u);
  EXPECT_EQ(r->end, end);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], (Rec{1, "k1", "v1"}));
  EXPECT_EQ(got[4], (Rec{5, "k5", "v5"}));
}

TEST(KvdWalTest, EmptyDirectoryReplaysNothingAndTheWriterStartsSegmentOne) {
  TempDir dir;
  std::vector<Rec> got;
  auto r = Replay(dir.path(), {}, ReplayMode::kRepair, &got);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->end, WalPosition{});
  auto w = WalWriter::Open(dir.path(), r->end, 1 << 20);
  ASSERT_TRUE(w);
  EXPECT_TRUE(std::filesystem::exists(dir.file("wal-000001.log")));
}

TEST(KvdWalTest, AppendContinuesAfterAReopen) {
  TempDir dir;
  WalPosition end = Write(dir.path(), {}, 3);
  end = Write(dir.path(), end, 2);
  std::vector<Rec> got;
  auto r = Replay(dir.path(), {}, ReplayMode::kRepair, &got);
  ASSERT_TRUE(r);
  EXPECT_EQ(got.size(), 5u);
  EXPECT_EQ(r->end, end);
}

TEST(KvdWalTest, RotatesSegmentsAndReplaysAcrossThem) {
  TempDir dir;
  const WalPosition end = Write(dir.path(), {}, 20, /*rotate=*/64);
  EXPECT_GT(end.segment, 3u);
  std::vector<Rec> got;
  auto r = Replay(dir.path(), {}, ReplayMode::kRepair, &got);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(got.size(), 20u);
  EXPECT_EQ(r->end, end);
}

TEST(KvdWalTest, TornTailIsLeftAloneReadOnlyAndTruncatedOnRepair) {
  TempDir dir;
  const WalPosition end = Write(dir.path(), {}, 3);
  const std::string seg = dir.file("wal-000001.log");
  // Half of a fourth record: a write cut short by a crash.
  const std::string rec4 = EncodeRecord({4, "k4", "a longer value"});
  AppendBytes(seg, rec4.substr(0, rec4.size() / 2));
  const uint64_t torn_size = FileSize(seg);

  std::vector<Rec> got;
  auto ro = Replay(dir.path(), {}, ReplayMode::kReadOnly, &got);
  ASSERT_TRUE(ro) << ro.error().message;
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(ro->end, end);
  EXPECT_EQ(ro->tail_bytes, rec4.size() / 2);
  EXPECT_EQ(FileSize(seg), torn_size) << "a read-only replay must not modify the WAL";

  baton::RecordingSink log;
  got.clear();
  auto rp = Replay(dir.path(), {}, ReplayMode::kRepair, &got, &log);
  ASSERT_TRUE(rp) << rp.error().message;
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(rp->end, end);
  EXPECT_EQ(FileSize(seg), end.offset);
  EXPECT_TRUE(log.Has("kvd.wal.truncated"));

  // The writer continues where the good records end.
  const WalPosition after = Write(dir.path(), rp->end, 1);
  got.clear();
  ASSERT_TRUE(Replay(dir.path(), {}, ReplayMode::kRepair, &got));
  EXPECT_EQ(got.back(), (Rec{4, "k4", "v4"}));
  EXPECT_EQ(after.revision, 4u);
}

TEST(KvdWalTest, DamagedLastRecordIsATornTail) {
  TempDir dir;
  const WalPosition two = Write(dir.path(), {}, 2);
  const WalPosition three = Write(dir.path(), two, 1);
  PatchByte(dir.file("wal-000001.log"), three.offset - 1, 0x5a);  // last byte of record 3
  std::vector<Rec> got;
  auto r = Replay(dir.path(), {}, ReplayMode::kRepair, &got);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(r->end, two);
}

TEST(KvdWalTest, ZeroFilledTailIsATornTail) {
  TempDir dir;
  const WalPosition end = Write(dir.path(), {}, 2);
  AppendBytes(dir.file("wal-000001.log"), std::string(4096, '\0'));
  std::vector<Rec> got;
  auto r = Replay(dir.path(), {}, ReplayMode::kRepair, &got);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->end, end);
  EXPECT_EQ(FileSize(dir.file("wal-000001.log")), end.offset);
}

TEST(KvdWalTest, CorruptionInTheMiddleIsAnErrorAndModifiesNothing) {
  TempDir dir;
  Write(dir.path(), {}, 3);
  const std::string seg = dir.file("wal-000001.log");
  const uint64_t size = FileSize(seg);
  PatchByte(seg, kRecordHeaderBytes + 9, 0x01);  // inside record 1's key length
  for (auto mode : {ReplayMode::kReadOnly, ReplayMode::kRepair}) {
    std::vector<Rec> got;
    auto r = Replay(dir.path(), {}, mode, &got);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().Is(baton::Errc::kFailedPrecondition));
    EXPECT_THAT(r.error().message, ::testing::HasSubstr("wal-000001.log at offset 0"));
    EXPECT_TRUE(got.empty());
  }
  EXPECT_EQ(FileSize(seg), size);
}

TEST(KvdWalTest, BadTailOfAnEarlierSegmentIsCorruption) {
  TempDir dir;
  Write(dir.path(), {}, 20, /*rotate=*/64);
  AppendBytes(dir.file("wal-000001.log"), "\x07\x00");
  std::vector<Rec> got;
  auto r = Replay(dir.path(), {}, ReplayMode::kRepair, &got);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(baton::Errc::kFailedPrecondition));
}

TEST(KvdWalTest, MissingSegmentIsDetectedByTheRevisionGap) {
  TempDir dir;
  Write(dir.path(), {}, 20, /*rotate=*/64);
  std::filesystem::remove(dir.file("wal-000002.log"));
  std::vector<Rec> got;
  auto r = Replay(dir.path(), {}, ReplayMode::kReadOnly, &got);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, ::testing::HasSubstr("missing"));
}

TEST(KvdWalTest, WriterRefusesAPositionThatDoesNotMatchTheFile) {
  TempDir dir;
  WalPosition end = Write(dir.path(), {}, 2);
  end.offset -= 1;
  auto w = WalWriter::Open(dir.path(), end, 1 << 20);
  ASSERT_FALSE(w);
  EXPECT_TRUE(w.error().Is(baton::Errc::kFailedPrecondition));
}

Store Replayed(const std::string& dir) {
  Store s;
  auto r = ReplayWal(
      dir, {}, ReplayMode::kReadOnly,
      [&s](const WalRecord& rec) -> Status {
        s.Apply(rec.revision, rec.key, rec.value);
        return {};
      },
      nullptr);
  EXPECT_TRUE(r);
  return s;
}

TEST(KvdWalTest, TwoReplaysAgreeOnTheFingerprint) {
  TempDir dir;
  Write(dir.path(), {}, 30, /*rotate=*/200);
  Store a = Replayed(dir.path());
  Store b = Replayed(dir.path());
  EXPECT_EQ(a.revision(), 30u);
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  EXPECT_EQ(a.fingerprint().size(), 16u);

  // The same records applied while writing give the same fingerprint too.
  Store live;
  for (uint64_t rev = 1; rev <= 30; ++rev) live.Apply(rev, fmt::format("k{}", rev), fmt::format("v{}", rev));
  EXPECT_EQ(live.fingerprint(), a.fingerprint());

  TempDir other;
  WalPosition p = Write(other.path(), {}, 29, 200);
  auto w = WalWriter::Open(other.path(), p, 200);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Append(EncodeRecord({30, "k30", "different"}), 30));
  ASSERT_TRUE(w->Close());
  EXPECT_NE(Replayed(other.path()).fingerprint(), a.fingerprint());
}

TEST(KvdWalTest, ReplayFromAPositionReadsOnlyTheTail) {
  TempDir dir;
  const WalPosition warm_end = Write(dir.path(), {}, 10, /*rotate=*/100);
  std::vector<Rec> head;
  auto warm = Replay(dir.path(), {}, ReplayMode::kReadOnly, &head);
  ASSERT_TRUE(warm);
  EXPECT_EQ(warm->end, warm_end);
  Write(dir.path(), warm_end, 10, /*rotate=*/100);
  std::vector<Rec> tail;
  auto rest = Replay(dir.path(), warm->end, ReplayMode::kRepair, &tail);
  ASSERT_TRUE(rest) << rest.error().message;
  ASSERT_EQ(tail.size(), 10u);
  EXPECT_EQ(tail.front().revision, 11u);
  EXPECT_EQ(rest->end.revision, 20u);
}

TEST(KvdWalTest, ReplayFromAVanishedSegmentIsAnError) {
  TempDir dir;
  WalPosition end = Write(dir.path(), {}, 2);
  end.segment = 9;
  std::vector<Rec> got;
  auto r = Replay(dir.path(), end, ReplayMode::kRepair, &got);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(baton::Errc::kFailedPrecondition));
}

}  // namespace
}  // namespace kvd
