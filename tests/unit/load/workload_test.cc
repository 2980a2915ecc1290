#include "tools/load/workload.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>
#include <vector>

namespace baton::load {
namespace {

TEST(LoadWorkload, KeysAreUniqueAndValuesDeterministic) {
  Workload w(0xabcdef12345ULL, 4, 64, 1.0, 0);
  Rng rng(1);
  std::set<std::string> keys;
  for (int i = 0; i < 1000; ++i) {
    const auto op = w.Next(static_cast<uint32_t>(i % 4), rng);
    ASSERT_TRUE(op.write);
    EXPECT_TRUE(keys.insert(w.Key(op.id)).second) << w.Key(op.id);
  }
  const uint64_t id = Workload::MakeId(3, 17);
  EXPECT_EQ(w.Key(id), "rdef12345-c3-17");
  EXPECT_EQ(w.Value(id).size(), 64u);
  EXPECT_EQ(w.Value(id), w.Value(id));
  EXPECT_NE(w.Value(id), w.Value(Workload::MakeId(3, 18)));
  // Another run (nonce) writes other keys and values.
  Workload other(7, 4, 64, 1.0, 0);
  EXPECT_NE(other.Key(id), w.Key(id));
  EXPECT_NE(other.Value(id), w.Value(id));
  for (char c : w.Value(id)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << c;
}

TEST(LoadWorkload, WritesFirstThenReadsOnlyAckedKeys) {
  Workload w(1, 1, 8, 0.0, 0);  // reads only, once something is acked
  Rng rng(2);
  auto op = w.Next(0, rng);
  ASSERT_TRUE(op.write) << "nothing acked yet: must write";
  op = w.Next(0, rng);
  ASSERT_TRUE(op.write) << "still nothing acked";
  w.Acked(op.id);
  for (int i = 0; i < 100; ++i) {
    const auto r = w.Next(0, rng);
    ASSERT_FALSE(r.write);
    EXPECT_EQ(r.id, op.id);
  }
}

TEST(LoadWorkload, WriteRatioIsRoughlyHonoured) {
  Workload w(1, 1, 8, 0.3, 0);
  Rng rng(3);
  w.Acked(w.Next(0, rng).id);
  int writes = 0;
  for (int i = 0; i < 10000; ++i) writes += w.Next(0, rng).write ? 1 : 0;
  EXPECT_GT(writes, 2500);
  EXPECT_LT(writes, 3500);
}

TEST(LoadWorkload, KeySpaceLimitsReadsToRecentWrites) {
  Workload w(1, 1, 8, 0.0, 3);
  Rng rng(4);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(Workload::MakeId(0, static_cast<uint64_t>(i)));
    w.Acked(ids.back());
  }
  std::set<uint64_t> read;
  for (int i = 0; i < 1000; ++i) read.insert(w.Next(0, rng).id);
  EXPECT_EQ(read, (std::set<uint64_t>{ids[7], ids[8], ids[9]}));
}

TEST(LoadWorkload, MaxWritesBoundsTheKeysCreated) {
  Workload w(1, 1, 8, 1.0, 0, 5);  // writes only, until 5 are acknowledged
  Rng rng(5);
  std::set<uint64_t> written;
  for (int i = 0; i < 1000; ++i) {
    const auto op = w.Next(0, rng);
    if (op.write) {
      written.insert(op.id);
      w.Acked(op.id);
    } else {
      EXPECT_TRUE(written.count(op.id)) << "reads only acknowledged keys";
    }
  }
  EXPECT_EQ(written.size(), 5u);
  EXPECT_EQ(w.AckedIds().size(), 5u);
}

TEST(LoadPacer, UnlimitedReturnsNow) {
  Pacer p(0);
  EXPECT_TRUE(p.Unlimited());
  const TimePoint now{seconds(5)};
  EXPECT_EQ(p.Reserve(now), now);
}

TEST(LoadPacer, SpacesSlotsAndDoesNotCatchUp) {
  Pacer p(100);  // 10 ms apart
  const TimePoint t0{seconds(5)};
  EXPECT_EQ(p.Reserve(t0), t0);
  EXPECT_EQ(p.Reserve(t0), t0 + milliseconds(10));
  EXPECT_EQ(p.Reserve(t0 + milliseconds(1)), t0 + milliseconds(20));
  // After a stall, the next slot is "now", not a burst of missed slots.
  const TimePoint late = t0 + seconds(1);
  EXPECT_EQ(p.Reserve(late), late);
  EXPECT_EQ(p.Reserve(late), late + milliseconds(10));
}

TEST(LoadIdleConnections, FractionIsSpreadEvenly) {
  auto idle = [](int n, double f) {
    std::vector<int> out;
    for (int i = 0; i < n; ++i) {
      if (IdlesBetweenBursts(static_cast<uint32_t>(i), n, f)) out.push_back(i);
    }
    return out;
  };
  EXPECT_EQ(idle(4, 0.5), (std::vector<int>{0, 2}));
  EXPECT_EQ(idle(256, 0.5).size(), 128u);
  EXPECT_EQ(idle(10, 0.25).size(), 3u);  // round(2.5)
  EXPECT_TRUE(idle(8, 0).empty());
  EXPECT_EQ(idle(3, 1.0).size(), 3u);
}

TEST(LoadIdleConnections, BurstCycle) {
  const TimePoint t0{seconds(100)};
  // Bursts of 100 ms, idles of 300 ms, starting 40 ms into the first burst.
  BurstCycle c(t0, milliseconds(100), milliseconds(300), milliseconds(40));
  EXPECT_FALSE(c.IdleUntil(t0));
  EXPECT_FALSE(c.IdleUntil(t0 + milliseconds(59)));
  EXPECT_EQ(c.IdleUntil(t0 + milliseconds(60)), t0 + milliseconds(360));
  EXPECT_EQ(c.IdleUntil(t0 + milliseconds(359)), t0 + milliseconds(360));
  EXPECT_FALSE(c.IdleUntil(t0 + milliseconds(360)));
  EXPECT_FALSE(c.IdleUntil(t0 + milliseconds(459)));
  EXPECT_EQ(c.IdleUntil(t0 + milliseconds(460)), t0 + milliseconds(760));
}

}  // namespace
}  // namespace baton::load
