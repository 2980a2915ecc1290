// kvd's checkpoints (examples/kvd/snapshot.h): a snapshot reads back as the
// Store it was taken of, a damaged one is skipped for the next older one,
// and removing obsolete files never takes a WAL segment that a kept
// snapshot still needs.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "examples/kvd/snapshot.h"
#include "tests/unit/kvd/kvd_test_util.h"

namespace kvd {
namespace {

using testing::TempDir;

// A WAL of `n` records over `keys` keys in segments of `rotate` bytes;
// `store` gets every record. Returns the end position.
WalPosition WriteWal(const std::string& dir, Store& store, uint64_t from, uint64_t n, uint64_t keys,
                     uint64_t rotate, WalPosition end = {}) {
  auto w = WalWriter::Open(dir, end, rotate);
  EXPECT_TRUE(w) << w.error().message;
  for (uint64_t rev = from; rev < from + n; ++rev) {
    const std::string key = "k" + std::to_string(rev % keys);
    const std::string value = "value-" + std::to_string(rev);
    EXPECT_TRUE(w->Append(EncodeRecord({rev, key, value}), rev));
    store.Apply(rev, key, value);
  }
  EXPECT_TRUE(w->Close());
  return w->position();
}

// What a recovery builds: the latest good snapshot, then the WAL after it.
Store Recover(const std::string& dir) {
  Store s;
  WalPosition pos;
  auto snap = LoadLatestSnapshot(dir, nullptr);
  EXPECT_TRUE(snap) << snap.error().message;
  if (snap && snap->has_value()) {
    pos = (*snap)->position;
    s.Restore(std::move((*snap)->map), (*snap)->revision, (*snap)->history);
  }
  auto r = ReplayWal(
      dir, pos, ReplayMode::kReadOnly,
      [&](const WalRecord& rec) -> Status {
        s.Apply(rec.revision, rec.key, rec.value);
        return {};
      },
      nullptr);
  EXPECT_TRUE(r) << r.error().message;
  return s;
}

void Snapshot(const std::string& dir, const Store& store, const WalPosition& pos) {
  ASSERT_EQ(pos.revision, store.revision());
  SnapshotWriter w(dir, pos);
  ASSERT_EQ(w.Write(store), 0);
  EXPECT_TRUE(std::filesystem::exists(w.path()));
}

void FlipByte(const std::string& path, off_t at) {
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, at), 1);
  c ^= 0x5a;
  ASSERT_EQ(::pwrite(fd, &c, 1, at), 1);
  ::close(fd);
}

TEST(SnapshotTest, ReadsBackAsTheStoreItWasTakenOf) {
  const TempDir tmp;
  Store store;
  const WalPosition end = WriteWal(tmp.path(), store, 1, 500, 37, 1 << 20);
  Snapshot(tmp.path(), store, end);
  auto back = ReadSnapshot(tmp.path() + "/" + SnapshotName(500));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->revision, 500u);
  EXPECT_EQ(back->position, end);
  EXPECT_EQ(back->map, store.map());
  Store restored;
  restored.Restore(back->map, back->revision, back->history);
  EXPECT_EQ(restored.fingerprint(), store.fingerprint());
  // And the records after it continue the same history.
  Store more = store;
  WriteWal(tmp.path(), more, 501, 100, 37, 1 << 20, end);
  const Store recovered = Recover(tmp.path());
  EXPECT_EQ(recovered.revision(), 600u);
  EXPECT_EQ(recovered.fingerprint(), more.fingerprint());
}

TEST(SnapshotTest, ADamagedSnapshotIsRefusedWithItsPath) {
  const TempDir tmp;
  Store store;
  const WalPosition end = WriteWal(tmp.path(), store, 1, 50, 10, 1 << 20);
  Snapshot(tmp.path(), store, end);
  const std::string path = tmp.path() + "/" + SnapshotName(50);
  FlipByte(path, 60);
  auto r = ReadSnapshot(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, baton::Errc::kFailedPrecondition);
  EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("checksum"), std::string::npos) << r.error().message;
  ASSERT_EQ(::truncate(path.c_str(), 20), 0);
  EXPECT_FALSE(ReadSnapshot(path));
}

TEST(SnapshotTest, ADamagedNewestSnapshotFallsBackToTheOlderOne) {
  const TempDir tmp;
  Store store;
  WalPosition end = WriteWal(tmp.path(), store, 1, 200, 20, 4096);
  Snapshot(tmp.path(), store, end);
  end = WriteWal(tmp.path(), store, 201, 200, 20, 4096, end);
  Snapshot(tmp.path(), store, end);
  end = WriteWal(tmp.path(), store, 401, 50, 20, 4096, end);
  FlipByte(tmp.path() + "/" + SnapshotName(400), 100);
  auto latest = LoadLatestSnapshot(tmp.path(), nullptr);
  ASSERT_TRUE(latest && latest->has_value());
  EXPECT_EQ((*latest)->revision, 200u);
  const Store recovered = Recover(tmp.path());
  EXPECT_EQ(recovered.revision(), 450u);
  EXPECT_EQ(recovered.fingerprint(), store.fingerprint());
}

TEST(SnapshotTest, RemovingObsoleteFilesKeepsWhatTheOlderKeptSnapshotNeeds) {
  const TempDir tmp;
  Store store;
  // Segments of ~4 KiB: a few hundred records span many of them.
  WalPosition end = WriteWal(tmp.path(), store, 1, 300, 25, 4096);
  Snapshot(tmp.path(), store, end);  // revision 300
  end = WriteWal(tmp.path(), store, 301, 300, 25, 4096, end);
  Snapshot(tmp.path(), store, end);  // 600
  const WalPosition at600 = end;
  end = WriteWal(tmp.path(), store, 601, 300, 25, 4096, end);
  Snapshot(tmp.path(), store, end);  // 900
  end = WriteWal(tmp.path(), store, 901, 100, 25, 4096, end);
  // A leftover from a checkpoint that died before its rename.
  std::FILE* leftover = std::fopen((tmp.path() + "/snap-00000000000000000450.tmp").c_str(), "w");
  ASSERT_NE(leftover, nullptr);
  std::fclose(leftover);
  auto before = ListSegments(tmp.path());
  ASSERT_TRUE(before);
  ASSERT_GT(at600.segment, 2u);

  auto gc = RemoveObsolete(tmp.path());
  ASSERT_TRUE(gc) << gc.error().message;
  EXPECT_EQ(gc->snapshots_removed, 1u);
  EXPECT_EQ(gc->kept_from_segment, at600.segment);
  EXPECT_EQ(gc->segments_removed, at600.segment - 1);
  auto segs = ListSegments(tmp.path());
  ASSERT_TRUE(segs);
  EXPECT_EQ(segs->front(), at600.segment);
  EXPECT_EQ(segs->back(), before->back());
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/" + SnapshotName(300)));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/snap-00000000000000000450.tmp"));
  EXPECT_EQ(Recover(tmp.path()).fingerprint(), store.fingerprint());

  // Even with the newest snapshot damaged, nothing acknowledged is lost.
  FlipByte(tmp.path() + "/" + SnapshotName(900), 80);
  const Store recovered = Recover(tmp.path());
  EXPECT_EQ(recovered.revision(), 1000u);
  EXPECT_EQ(recovered.fingerprint(), store.fingerprint());
}

TEST(SnapshotTest, WithOneSnapshotNothingIsRemoved) {
  const TempDir tmp;
  Store store;
  const WalPosition end = WriteWal(tmp.path(), store, 1, 300, 25, 4096);
  Snapshot(tmp.path(), store, end);
  auto before = ListSegments(tmp.path());
  auto gc = RemoveObsolete(tmp.path());
  ASSERT_TRUE(gc);
  EXPECT_EQ(gc->segments_removed, 0u);
  EXPECT_EQ(ListSegments(tmp.path())->size(), before->size());
}

TEST(SnapshotTest, AnUnwritableDirIsAnErrnoNotACrash) {
  Store store;
  store.Apply(1, "k", "v");
  SnapshotWriter w("/nonexistent-kvd-dir", {1, 20, 1});
  EXPECT_EQ(w.Write(store), ENOENT);
}

}  // namespace
}  // namespace kvd
