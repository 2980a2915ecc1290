// kvd's baton hooks on real WAL files: Warm + Begin tail replay and seal
// verification, Seal, Resume after a rollback.
#include "examples/kvd/kvd_hooks.h"

#include <fstream>

#include <gtest/gtest.h>

#include "examples/kvd/store.h"
#include "examples/kvd/wal.h"
#include "tests/unit/kvd/kvd_test_util.h"

namespace kvd {
namespace {

using testing::Client;
using testing::Instance;
using testing::TempDir;

// The incumbent's side, simulated: appends records to the WAL directly.
class Incumbent {
 public:
  explicit Incumbent(const std::string& dir) : dir_(dir) {
    auto r = ReplayWal(dir, {}, ReplayMode::kRepair, [](const WalRecord&) -> Status { return {}; }, nullptr);
    EXPECT_TRUE(r);
    auto w = WalWriter::Open(dir, r->end, 1 << 20);
    EXPECT_TRUE(w);
    writer_.emplace(std::move(*w));
  }
  void Put(int n) {
    for (int i = 0; i < n; ++i) {
      const uint64_t rev = writer_->position().revision + 1;
      ASSERT_TRUE(writer_->Append(Encode(rev), rev));
    }
    ASSERT_TRUE(writer_->Sync());
  }
  static std::string Encode(uint64_t rev) {
    return EncodeRecord({rev, fmt::format("k{}", rev), fmt::format("v{}", rev)});
  }
  // What a seal reports: the state a full replay of the WAL gives.
  baton::SealedState Seal() {
    EXPECT_TRUE(writer_->Close());
    Store s;
    auto r = ReplayWal(
        dir_, {}, ReplayMode::kReadOnly,
        [&s](const WalRecord& rec) -> Status {
          s.Apply(rec.revision, rec.key, rec.value);
          return {};
        },
        nullptr);
    EXPECT_TRUE(r);
    return {.revision = s.revision(), .fingerprint = s.fingerprint(), .data_generation = 2};
  }
  WalWriter& writer() { return *writer_; }

 private:
  std::string dir_;
  std::optional<WalWriter> writer_;
};

uint64_t LastReplayCount(const baton::RecordingSink& log) {
  uint64_t n = 0;
  for (const auto& e : log.Events()) {
    if (e.name == "kvd.replay") n = std::get<uint64_t>(*e.Get("records"));
  }
  return n;
}

TEST(KvdHooksTest, WarmReplaysReadOnlyAndBeginReplaysOnlyTheTail) {
  TempDir dir;
  Incumbent inc(dir.path());
  inc.Put(5);
  Instance succ(dir.path());
  ASSERT_TRUE(succ.Bind());
  ASSERT_TRUE(succ.hooks().Warm());
  EXPECT_EQ(succ.revision(), 5u);
  EXPECT_EQ(LastReplayCount(succ.log()), 5u);

  inc.Put(3);  // written while the successor is warm
  const auto sealed = inc.Seal();
  ASSERT_TRUE(succ.hooks().Begin(sealed));
  EXPECT_EQ(LastReplayCount(succ.log()), 3u);
  EXPECT_EQ(succ.revision(), 8u);
  EXPECT_EQ(succ.fingerprint(), sealed.fingerprint);

  Client c(succ.port());
  EXPECT_EQ(c.Get("k7").body(), "v7");
  auto put = c.Put("new", "value");
  EXPECT_EQ(put.result_int(), 200);
  EXPECT_EQ(put.body(), "9\n");
}

TEST(KvdHooksTest, WarmStopsBeforeARecordBeingWrittenAndBeginPicksItUp) {
  TempDir dir;
  Incumbent inc(dir.path());
  inc.Put(5);
  const std::string rec6 = Incumbent::Encode(6);
  const std::string seg = dir.file("wal-000001.log");
  {
    std::ofstream f(seg, std::ios::app | std::ios::binary);
    f.write(rec6.data(), 7);  // the incumbent is in the middle of a write()
  }
  Instance succ(dir.path());
  ASSERT_TRUE(succ.Bind());
  ASSERT_TRUE(succ.hooks().Warm());
  EXPECT_EQ(succ.revision(), 5u);
  {
    std::ofstream f(seg, std::ios::app | std::ios::binary);
    f.write(rec6.data() + 7, static_cast<std::streamsize>(rec6.size() - 7));
  }
  baton::SealedState sealed;
  {
    Store s;
    for (uint64_t rev = 1; rev <= 6; ++rev) s.Apply(rev, fmt::format("k{}", rev), fmt::format("v{}", rev));
    sealed = {.revision = 6, .fingerprint = s.fingerprint()};
  }
  ASSERT_TRUE(succ.hooks().Begin(sealed));
  EXPECT_EQ(succ.revision(), 6u);
}

TEST(KvdHooksTest, BeginRefusesARevisionMismatch) {
  TempDir dir;
  Incumbent inc(dir.path());
  inc.Put(5);
  auto sealed = inc.Seal();
  sealed.revision = 6;  // the incumbent acknowledged a write we cannot see
  Instance succ(dir.path());
  ASSERT_TRUE(succ.Bind());
  ASSERT_TRUE(succ.hooks().Warm());
  auto st = succ.hooks().Begin(sealed);
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(baton::Errc::kFailedPrecondition));
  EXPECT_FALSE(succ.OnIo([&] { return succ.service().writable(); }));
}

TEST(KvdHooksTest, BeginRefusesAFingerprintMismatch) {
  TempDir dir;
  Incumbent inc(dir.path());
  inc.Put(5);
  auto sealed = inc.Seal();
  sealed.fingerprint = "0123456789abcdef";
  Instance succ(dir.path());
  ASSERT_TRUE(succ.Bind());
  ASSERT_TRUE(succ.hooks().Warm());
  auto st = succ.hooks().Begin(sealed);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("fingerprint"), std::string::npos);
}

TEST(KvdHooksTest, BeginWithoutWarmReplaysEverything) {
  TempDir dir;
  Incumbent inc(dir.path());
  inc.Put(4);
  const auto sealed = inc.Seal();
  Instance succ(dir.path());
  ASSERT_TRUE(succ.Bind());
  ASSERT_TRUE(succ.hooks().Begin(sealed));
  EXPECT_EQ(succ.revision(), 4u);
}

// The incumbent's life cycle through a rollback.
class KvdIncumbentHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kvd_.Bind());
    ASSERT_TRUE(kvd_.hooks().StartServing());
  }
  TempDir dir_;
  Instance kvd_{dir_.path()};
};

TEST_F(KvdIncumbentHooksTest, SealReportsWhatAFreshReplaySees) {
  {
    Client c(kvd_.port());
    for (int i = 0; i < 10; ++i) ASSERT_EQ(c.Put(fmt::format("key{}", i), fmt::format("val{}", i)).result_int(), 200);
  }
  ASSERT_TRUE(kvd_.hooks().Drain(kvd::testing::InMs(5000)));
  auto report = kvd_.hooks().Seal();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->revision, 10u);

  Instance fresh(dir_.path());
  ASSERT_TRUE(fresh.Bind());
  ASSERT_TRUE(fresh.hooks().Begin({.revision = report->revision, .fingerprint = report->fingerprint}));
  Client c(fresh.port());
  EXPECT_EQ(c.Get("key9").body(), "val9");
}

TEST_F(KvdIncumbentHooksTest, ResumeWithUnchangedDataKeepsMemoryAndWritesAgain) {
  {
    Client c(kvd_.port());
    ASSERT_EQ(c.Put("x", "1").result_int(), 200);
  }
  ASSERT_TRUE(kvd_.hooks().Drain(kvd::testing::InMs(5000)));
  ASSERT_TRUE(kvd_.hooks().Seal());
  ASSERT_TRUE(kvd_.hooks().Resume(false));
  Client c2(kvd_.port());
  EXPECT_EQ(c2.Put("y", "2").body(), "2\n");
  EXPECT_EQ(c2.Get("x").body(), "1");
}

TEST_F(KvdIncumbentHooksTest, ResumeWithChangedDataReloadsFromDisk) {
  {
    Client c(kvd_.port());
    ASSERT_EQ(c.Put("x", "1").result_int(), 200);
  }
  ASSERT_TRUE(kvd_.hooks().Drain(kvd::testing::InMs(5000)));
  ASSERT_TRUE(kvd_.hooks().Seal());
  {
    Incumbent other(dir_.path());  // a successor that began and wrote before failing
    other.Put(1);
    other.Seal();
  }
  ASSERT_TRUE(kvd_.hooks().Resume(true));
  EXPECT_EQ(kvd_.revision(), 2u);
  Client c(kvd_.port());
  EXPECT_EQ(c.Get("k2").body(), "v2");
  EXPECT_EQ(c.Put("z", "3").body(), "3\n");
}

TEST_F(KvdIncumbentHooksTest, ResumeAfterDrainWithoutSealJustAcceptsAgain) {
  ASSERT_TRUE(kvd_.hooks().Drain(kvd::testing::InMs(5000)));
  ASSERT_TRUE(kvd_.hooks().Resume(false));
  Client c(kvd_.port());
  EXPECT_EQ(c.Put("a", "b").result_int(), 200);
}

TEST(KvdHooksTest, FailSealKnobFailsAndResumeServesOn) {
  TempDir dir;
  Instance kvd(dir.path(), {}, {.fail_seal = true});
  ASSERT_TRUE(kvd.Bind());
  ASSERT_TRUE(kvd.hooks().StartServing());
  ASSERT_TRUE(kvd.hooks().Drain(kvd::testing::InMs(5000)));
  EXPECT_FALSE(kvd.hooks().Seal());
  ASSERT_TRUE(kvd.hooks().Resume(false));
  Client c(kvd.port());
  EXPECT_EQ(c.Put("a", "b").result_int(), 200);
}

}  // namespace
}  // namespace kvd
