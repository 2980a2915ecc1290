// The unmodified daemon's handoff machine (supervisor/notify_handoff.h),
// driven with a fake clock: each strategy's success, rollback and deadline.
#include "supervisor/notify_handoff.h"

#include <signal.h>

#include <gtest/gtest.h>

#include "tests/support/fake_clock.h"

namespace baton::supervisor {
namespace {

using M = NotifyHandoffMachine;

// The actions, flattened to short strings: "spawn", "sig-old 15", "sig-new 9",
// "phase spawn", "promote", "restore", "finished committed".
std::vector<std::string> Names(const M::Acts& acts) {
  std::vector<std::string> out;
  for (const Action& a : acts) {
    if (std::holds_alternative<SpawnRestore>(a)) out.push_back("restore");
    if (std::holds_alternative<SpawnSuccessor>(a)) out.push_back("spawn");
    if (auto* s = std::get_if<SignalIncumbent>(&a)) out.push_back("sig-old " + std::to_string(s->signal));
    if (auto* s = std::get_if<SignalSuccessor>(&a)) out.push_back("sig-new " + std::to_string(s->signal));
    if (auto* p = std::get_if<PhaseDone>(&a)) out.push_back("phase " + p->phase);
    if (std::holds_alternative<PromoteSuccessor>(a)) out.push_back("promote");
    if (auto* f = std::get_if<Finished>(&a)) out.push_back("finished " + std::string(OutcomeName(f->outcome)));
  }
  return out;
}

std::string ReasonOf(const M::Acts& acts) {
  for (const Action& a : acts) {
    if (auto* f = std::get_if<Finished>(&a)) return f->reason;
  }
  return "";
}

using V = std::vector<std::string>;

class NotifyHandoffTest : public ::testing::Test {
 protected:
  M Make(NotifyStrategy s) {
    NotifyHandoffParams p;
    p.handoff_id = "h1";
    p.strategy = s;
    p.stop_signal = SIGINT;
    p.ready = seconds(10);
    p.drain = seconds(5);
    p.term_grace = seconds(2);
    return M(p);
  }
  TimePoint Now() const { return clock_.Now(); }
  FakeClock clock_;
};

TEST_F(NotifyHandoffTest, OverlapStartsNewThenStopsOld) {
  M m = Make(NotifyStrategy::kOverlap);
  EXPECT_EQ(Names(m.Start(Now())), V({"spawn"}));
  EXPECT_EQ(Names(m.OnSpawned(Now())), V({"phase spawn"}));
  clock_.Advance(milliseconds(300));
  EXPECT_EQ(Names(m.OnSuccessorReady(Now())), V({"phase ready", "promote", "sig-old 2"}));
  EXPECT_TRUE(m.promoted());
  clock_.Advance(milliseconds(100));
  EXPECT_EQ(Names(m.OnIncumbentExited(ChildExit::Exited(0), Now())), V({"phase stop", "finished committed"}));
  EXPECT_TRUE(m.done());
  EXPECT_EQ(m.not_ready(), Duration::zero());
}

TEST_F(NotifyHandoffTest, OverlapOldThatIgnoresItsStopSignalIsKilledAtTheDrainDeadline) {
  M m = Make(NotifyStrategy::kOverlap);
  m.Start(Now());
  m.OnSpawned(Now());
  m.OnSuccessorReady(Now());
  clock_.Advance(seconds(4));
  EXPECT_TRUE(Names(m.OnTimer(Now())).empty());
  clock_.Advance(seconds(1));
  EXPECT_EQ(Names(m.OnTimer(Now())), V({"sig-old 9"}));
  EXPECT_EQ(Names(m.OnIncumbentExited(ChildExit::Signalled(SIGKILL), Now())), V({"phase stop", "finished committed"}));
}

TEST_F(NotifyHandoffTest, OverlapNewThatExitsIsRolledBackWithoutTouchingOld) {
  M m = Make(NotifyStrategy::kOverlap);
  m.Start(Now());
  m.OnSpawned(Now());
  auto acts = m.OnSuccessorExited(ChildExit::Exited(1), Now());
  EXPECT_EQ(Names(acts), V({"finished rolled_back"}));
  EXPECT_NE(ReasonOf(acts).find("exited with status 1"), std::string::npos) << ReasonOf(acts);
}

TEST_F(NotifyHandoffTest, OverlapNewNeverReadyIsKilledThenRolledBack) {
  M m = Make(NotifyStrategy::kOverlap);
  m.Start(Now());
  m.OnSpawned(Now());
  clock_.Advance(seconds(10));
  EXPECT_EQ(Names(m.OnTimer(Now())), V({"sig-new 9"}));
  auto acts = m.OnSuccessorExited(ChildExit::Signalled(SIGKILL), Now());
  EXPECT_EQ(Names(acts), V({"finished rolled_back"}));
  EXPECT_NE(ReasonOf(acts).find("not ready within 10000 ms"), std::string::npos) << ReasonOf(acts);
}

TEST_F(NotifyHandoffTest, OverlapNewSayingErrnoIsKilled) {
  M m = Make(NotifyStrategy::kOverlap);
  m.Start(Now());
  m.OnSpawned(Now());
  EXPECT_EQ(Names(m.OnSuccessorFailed("ERRNO=5", Now())), V({"sig-new 9"}));
  EXPECT_EQ(Names(m.OnSuccessorExited(ChildExit::Signalled(SIGKILL), Now())), V({"finished rolled_back"}));
}

TEST_F(NotifyHandoffTest, OverlapAbortBeforeReadyRollsBack) {
  M m = Make(NotifyStrategy::kOverlap);
  m.Start(Now());
  m.OnSpawned(Now());
  EXPECT_EQ(Names(m.OnAbort("operator", Now())), V({"sig-new 9"}));
  auto acts = m.OnSuccessorExited(ChildExit::Signalled(SIGKILL), Now());
  EXPECT_EQ(ReasonOf(acts), "aborted: operator");
}

TEST_F(NotifyHandoffTest, SequentialStopsOldThenStartsNew) {
  M m = Make(NotifyStrategy::kSequential);
  EXPECT_EQ(Names(m.Start(Now())), V({"sig-old 2"}));
  clock_.Advance(milliseconds(200));
  EXPECT_EQ(Names(m.OnIncumbentExited(ChildExit::Exited(0), Now())), V({"phase stop", "spawn"}));
  EXPECT_EQ(Names(m.OnSpawned(Now())), V({"phase spawn"}));
  clock_.Advance(milliseconds(300));
  auto acts = m.OnSuccessorReady(Now());
  EXPECT_EQ(Names(acts), V({"phase ready", "promote", "finished committed"}));
  EXPECT_EQ(m.not_ready(), milliseconds(500));
  EXPECT_NE(ReasonOf(acts).find("not ready for 500 ms"), std::string::npos) << ReasonOf(acts);
}

TEST_F(NotifyHandoffTest, SequentialFailedNewBringsThePreviousBinaryBack) {
  M m = Make(NotifyStrategy::kSequential);
  m.Start(Now());
  m.OnIncumbentExited(ChildExit::Exited(0), Now());
  m.OnSpawned(Now());
  clock_.Advance(milliseconds(100));
  EXPECT_EQ(Names(m.OnSuccessorExited(ChildExit::Exited(3), Now())), V({"restore"}));
  EXPECT_TRUE(Names(m.OnRestoreSpawned(Now())).empty());
  clock_.Advance(milliseconds(400));
  auto acts = m.OnRestoreReady(Now());
  EXPECT_EQ(Names(acts), V({"phase restore", "finished rolled_back"}));
  EXPECT_EQ(m.not_ready(), milliseconds(500));
  EXPECT_FALSE(m.promoted());
  EXPECT_NE(ReasonOf(acts).find("exited with status 3"), std::string::npos) << ReasonOf(acts);
}

TEST_F(NotifyHandoffTest, SequentialRestoreThatFailsTooIsFailed) {
  M m = Make(NotifyStrategy::kSequential);
  m.Start(Now());
  m.OnIncumbentExited(ChildExit::Exited(0), Now());
  m.OnSpawned(Now());
  clock_.Advance(seconds(10));
  EXPECT_EQ(Names(m.OnTimer(Now())), V({"sig-new 9"}));
  EXPECT_EQ(Names(m.OnSuccessorExited(ChildExit::Signalled(SIGKILL), Now())), V({"restore"}));
  clock_.Advance(seconds(10));
  EXPECT_EQ(Names(m.OnTimer(Now())), V({"finished failed"}));
}

TEST_F(NotifyHandoffTest, SequentialOldThatNeverExitsIsFailedAndNewNeverStarts) {
  M m = Make(NotifyStrategy::kSequential);
  m.Start(Now());
  clock_.Advance(seconds(5));
  EXPECT_EQ(Names(m.OnTimer(Now())), V({"sig-old 9"}));
  clock_.Advance(seconds(2));
  EXPECT_EQ(Names(m.OnTimer(Now())), V({"finished failed"}));
}

TEST_F(NotifyHandoffTest, SequentialAbortWhileStoppingRestoresOnceOldIsGone) {
  M m = Make(NotifyStrategy::kSequential);
  m.Start(Now());
  EXPECT_TRUE(Names(m.OnAbort("operator", Now())).empty());
  EXPECT_EQ(Names(m.OnIncumbentExited(ChildExit::Exited(0), Now())), V({"phase stop", "restore"}));
  auto acts = m.OnRestoreReady(Now());
  EXPECT_EQ(Names(acts), V({"phase restore", "finished rolled_back"}));
}

TEST_F(NotifyHandoffTest, ExtendTimeoutMovesTheReadyDeadline) {
  M m = Make(NotifyStrategy::kOverlap);
  m.Start(Now());
  m.OnSpawned(Now());
  clock_.Advance(seconds(9));
  m.OnExtend(seconds(5), Now());
  clock_.Advance(seconds(2));
  EXPECT_TRUE(Names(m.OnTimer(Now())).empty());
  clock_.Advance(seconds(3));
  EXPECT_EQ(Names(m.OnTimer(Now())), V({"sig-new 9"}));
}

TEST_F(NotifyHandoffTest, DeadlineAlwaysExistsUntilDoneAndNothingAfter) {
  M m = Make(NotifyStrategy::kOverlap);
  EXPECT_FALSE(m.NextDeadline());
  m.Start(Now());
  EXPECT_TRUE(m.NextDeadline());
  m.OnSpawned(Now());
  m.OnSuccessorExited(ChildExit::Exited(1), Now());
  EXPECT_TRUE(m.done());
  EXPECT_FALSE(m.NextDeadline());
  EXPECT_TRUE(m.OnSuccessorReady(Now()).empty());
  EXPECT_TRUE(m.OnTimer(Now() + seconds(1000)).empty());
}

}  // namespace
}  // namespace baton::supervisor
