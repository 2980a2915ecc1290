#include "supervisor/handoff_machine.h"

#include <signal.h>

#include <gtest/gtest.h>

#include "tests/support/fake_clock.h"

namespace baton::supervisor {
namespace {

using State = HandoffMachine::State;

template <class T>
const T* Find(const Actions& acts) {
  for (const auto& a : acts) {
    if (auto* p = std::get_if<T>(&a)) return p;
  }
  return nullptr;
}
template <class T>
std::vector<T> All(const Actions& acts) {
  std::vector<T> out;
  for (const auto& a : acts) {
    if (auto* p = std::get_if<T>(&a)) out.push_back(*p);
  }
  return out;
}

v1::Envelope Hello(uint32_t pmin = 1, uint32_t pmax = 1, uint32_t smin = 1, uint32_t smax = 1) {
  v1::Envelope e;
  auto* h = e.mutable_hello();
  h->mutable_protocol()->set_min(pmin);
  h->mutable_protocol()->set_max(pmax);
  h->mutable_state_schema()->set_min(smin);
  h->mutable_state_schema()->set_max(smax);
  h->set_pid(4242);
  h->set_lease_holder_id("n-holder");
  return e;
}
v1::Envelope M(const std::string& which, const std::string& id = "h1") {
  v1::Envelope e;
  if (which == "warmed") e.mutable_warmed()->set_handoff_id(id);
  if (which == "drained") e.mutable_drained()->set_handoff_id(id);
  if (which == "seal_complete") {
    e.mutable_seal_complete()->set_handoff_id(id);
    e.mutable_seal_complete()->set_revision(77);
    e.mutable_seal_complete()->set_fingerprint("fp77");
    e.mutable_seal_complete()->set_data_generation(3);
  }
  if (which == "seal_failed") {
    e.mutable_seal_failed()->set_handoff_id(id);
    e.mutable_seal_failed()->set_reason("disk full");
  }
  if (which == "ready") e.mutable_ready()->set_handoff_id(id);
  if (which == "commit_ack") e.mutable_commit_ack()->set_handoff_id(id);
  if (which == "resumed") e.mutable_resumed()->set_handoff_id(id);
  if (which == "abort") {
    e.mutable_abort()->set_handoff_id(id);
    e.mutable_abort()->set_reason("begin: fingerprint mismatch");
  }
  return e;
}

struct HandoffMachineTest : ::testing::Test {
  FakeClock clock;
  HandoffParams params() {
    HandoffParams p;
    p.handoff_id = "h1";
    p.incumbent_schema = protocol::VersionRange{1, 1};
    return p;
  }
  // Drives m to `target` along the happy path.
  void To(HandoffMachine& m, State target) {
    m.Start(clock.Now());
    m.OnSpawned(4242, clock.Now());
    if (target == State::kSpawning) return;
    m.OnSuccessorMessage(Hello(), clock.Now());
    if (target == State::kWarming) return;
    m.OnSuccessorMessage(M("warmed"), clock.Now());
    if (target == State::kDraining) return;
    m.OnIncumbentMessage(M("drained"), clock.Now());
    if (target == State::kSealing) return;
    m.OnIncumbentMessage(M("seal_complete"), clock.Now());
    if (target == State::kBeginning) return;
    m.OnSuccessorMessage(M("ready"), clock.Now());
    ASSERT_EQ(m.state(), State::kCommitting);
  }
};

// A successor whose Hello lists "handover" takes handed-over descriptors:
// Prepare tells the incumbent so.
TEST_F(HandoffMachineTest, PrepareSaysWhetherTheSuccessorAcceptsHandover) {
  HandoffMachine m(params());
  m.Start(clock.Now());
  m.OnSpawned(4242, clock.Now());
  EXPECT_FALSE(m.successor_accepts_handover());
  auto hello = Hello();
  hello.mutable_hello()->add_capabilities("lease");
  hello.mutable_hello()->add_capabilities("handover");
  m.OnSuccessorMessage(hello, clock.Now());
  EXPECT_TRUE(m.successor_accepts_handover());
  auto a = m.OnSuccessorMessage(M("warmed"), clock.Now());
  ASSERT_NE(Find<SendToIncumbent>(a), nullptr);
  EXPECT_TRUE(Find<SendToIncumbent>(a)->env.prepare().successor_accepts_handover());
}

TEST_F(HandoffMachineTest, HappyPathSendsEveryStepInOrderWithPhaseTimings) {
  HandoffMachine m(params());
  auto a = m.Start(clock.Now());
  ASSERT_NE(Find<SpawnSuccessor>(a), nullptr);
  EXPECT_EQ(m.state(), State::kSpawning);
  clock.Advance(milliseconds(3));
  a = m.OnSpawned(4242, clock.Now());
  EXPECT_EQ(Find<PhaseDone>(a)->phase, "spawn");
  EXPECT_EQ(Find<PhaseDone>(a)->duration, milliseconds(3));

  a = m.OnSuccessorMessage(Hello(), clock.Now());
  auto to_n = All<SendToSuccessor>(a);
  ASSERT_EQ(to_n.size(), 2u);
  EXPECT_TRUE(to_n[0].env.hello_ack().accepted());
  EXPECT_EQ(to_n[0].env.hello_ack().handoff_id(), "h1");
  EXPECT_EQ(to_n[0].env.hello_ack().protocol_version(), 1u);
  EXPECT_TRUE(to_n[1].env.has_warm());
  EXPECT_EQ(m.state(), State::kWarming);

  a = m.OnSuccessorMessage(M("warmed"), clock.Now());
  ASSERT_NE(Find<SendToIncumbent>(a), nullptr);
  const auto& prep = Find<SendToIncumbent>(a)->env.prepare();
  EXPECT_EQ(prep.handoff_id(), "h1");
  EXPECT_EQ(prep.successor_pid(), 4242u);
  EXPECT_EQ(prep.drain_deadline_ms(), 30000u);
  EXPECT_GT(prep.handoff_deadline_ms(), 300000u);  // ours plus slack
  EXPECT_FALSE(prep.successor_accepts_handover());  // its Hello did not say so
  EXPECT_FALSE(m.successor_accepts_handover());
  EXPECT_EQ(m.state(), State::kDraining);

  a = m.OnIncumbentMessage(M("drained"), clock.Now());
  ASSERT_NE(Find<SendToIncumbent>(a), nullptr);
  EXPECT_EQ(Find<SendToIncumbent>(a)->env.seal().successor_lease_holder_id(), "n-holder");
  EXPECT_EQ(m.state(), State::kSealing);

  a = m.OnIncumbentMessage(M("seal_complete"), clock.Now());
  ASSERT_NE(Find<SendToSuccessor>(a), nullptr);
  const auto& begin = Find<SendToSuccessor>(a)->env.begin();
  EXPECT_TRUE(begin.sealed());
  EXPECT_EQ(begin.revision(), 77u);
  EXPECT_EQ(begin.fingerprint(), "fp77");
  EXPECT_EQ(begin.data_generation(), 3u);
  EXPECT_EQ(m.state(), State::kBeginning);

  a = m.OnSuccessorMessage(M("ready"), clock.Now());
  ASSERT_NE(Find<PromoteSuccessor>(a), nullptr);
  ASSERT_NE(Find<SendToIncumbent>(a), nullptr);
  EXPECT_TRUE(Find<SendToIncumbent>(a)->env.has_commit());
  EXPECT_EQ(m.state(), State::kCommitting);

  a = m.OnIncumbentMessage(M("commit_ack"), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kCommitted);
  EXPECT_TRUE(m.done());
  EXPECT_FALSE(m.NextDeadline());
}

TEST_F(HandoffMachineTest, PhasesAreReportedInOrder) {
  HandoffMachine m(params());
  std::vector<std::string> phases;
  auto collect = [&](const Actions& a) {
    for (const auto& p : All<PhaseDone>(a)) phases.push_back(p.phase);
  };
  collect(m.Start(clock.Now()));
  collect(m.OnSpawned(1, clock.Now()));
  collect(m.OnSuccessorMessage(Hello(), clock.Now()));
  collect(m.OnSuccessorMessage(M("warmed"), clock.Now()));
  collect(m.OnIncumbentMessage(M("drained"), clock.Now()));
  collect(m.OnIncumbentMessage(M("seal_complete"), clock.Now()));
  collect(m.OnSuccessorMessage(M("ready"), clock.Now()));
  collect(m.OnIncumbentMessage(M("commit_ack"), clock.Now()));
  EXPECT_EQ(phases, (std::vector<std::string>{"spawn", "hello", "warm", "drain", "seal", "begin", "commit"}));
}

TEST_F(HandoffMachineTest, SpawnFailureIsARefusalWithNothingTouched) {
  HandoffMachine m(params());
  m.Start(clock.Now());
  auto a = m.OnSpawnFailed(Error(Errc::kNotFound, "binary /x: No such file"), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kRefused);
  EXPECT_EQ(Find<SendToIncumbent>(a), nullptr);
}

TEST_F(HandoffMachineTest, IncompatibleProtocolIsRefusedBeforeTouchingTheIncumbent) {
  HandoffMachine m(params());
  To(m, State::kSpawning);
  auto a = m.OnSuccessorMessage(Hello(2, 3), clock.Now());
  ASSERT_NE(Find<SendToSuccessor>(a), nullptr);
  EXPECT_FALSE(Find<SendToSuccessor>(a)->env.hello_ack().accepted());
  EXPECT_NE(Find<SendToSuccessor>(a)->env.hello_ack().refusal().find("supervisor speaks [1,1], successor speaks [2,3]"),
            std::string::npos);
  EXPECT_EQ(Find<SendToIncumbent>(a), nullptr);
  ASSERT_NE(Find<SignalSuccessor>(a), nullptr);
  a = m.OnSuccessorExited(ChildExit::Exited(1), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kRefused);
  EXPECT_EQ(Find<SendToIncumbent>(a), nullptr);  // no Resume: it was never prepared
}

TEST_F(HandoffMachineTest, IncompatibleStateSchemaIsRefused) {
  HandoffMachine m(params());
  To(m, State::kSpawning);
  auto a = m.OnSuccessorMessage(Hello(1, 1, 2, 2), clock.Now());
  EXPECT_NE(Find<SendToSuccessor>(a)->env.hello_ack().refusal().find("state schema"), std::string::npos);
  a = m.OnSuccessorExited(ChildExit::Exited(0), clock.Now());
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kRefused);
}

TEST_F(HandoffMachineTest, HelloTimeoutRollsBackWithoutResume) {
  HandoffMachine m(params());
  To(m, State::kSpawning);
  clock.Advance(seconds(5));
  auto a = m.OnTimer(clock.Now());
  ASSERT_NE(Find<SignalSuccessor>(a), nullptr);
  EXPECT_EQ(Find<SignalSuccessor>(a)->signal, SIGTERM);
  a = m.OnSuccessorExited(ChildExit::Signalled(15), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kRolledBack);
  EXPECT_NE(Find<Finished>(a)->reason.find("Hello"), std::string::npos);
  EXPECT_EQ(Find<SendToIncumbent>(a), nullptr);
}

TEST_F(HandoffMachineTest, SuccessorExitAtStartRollsBack) {
  HandoffMachine m(params());
  To(m, State::kSpawning);
  auto a = m.OnSuccessorExited(ChildExit::Exited(1), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kRolledBack);
  EXPECT_NE(Find<Finished>(a)->reason.find("exited with status 1"), std::string::npos);
}

TEST_F(HandoffMachineTest, WarmTimeoutTermsThenKillsTheSuccessor) {
  HandoffMachine m(params());
  To(m, State::kWarming);
  clock.Advance(seconds(120));
  auto a = m.OnTimer(clock.Now());
  ASSERT_NE(Find<SendToSuccessor>(a), nullptr);
  EXPECT_TRUE(Find<SendToSuccessor>(a)->env.has_abort());
  EXPECT_EQ(Find<SignalSuccessor>(a)->signal, SIGTERM);
  EXPECT_EQ(m.state(), State::kStoppingSuccessor);
  clock.Advance(seconds(5));
  a = m.OnTimer(clock.Now());
  ASSERT_NE(Find<SignalSuccessor>(a), nullptr);
  EXPECT_EQ(Find<SignalSuccessor>(a)->signal, SIGKILL);
  a = m.OnSuccessorExited(ChildExit::Signalled(9), clock.Now());
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kRolledBack);
}

TEST_F(HandoffMachineTest, UnreapableSuccessorFailsAfterKill) {
  HandoffMachine m(params());
  To(m, State::kWarming);
  clock.Advance(seconds(120));
  m.OnTimer(clock.Now());
  clock.Advance(seconds(5));
  m.OnTimer(clock.Now());
  clock.Advance(seconds(5));
  auto a = m.OnTimer(clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kFailed);
}

TEST_F(HandoffMachineTest, FailureAfterPrepareResumesTheIncumbentAfterReaping) {
  HandoffMachine m(params());
  To(m, State::kDraining);
  auto a = m.OnSuccessorChannelClosed(Error(Errc::kUnavailable, "peer closed"), clock.Now());
  EXPECT_EQ(Find<SendToIncumbent>(a), nullptr);  // not before the successor is reaped
  a = m.OnSuccessorExited(ChildExit::Exited(86), clock.Now());
  ASSERT_NE(Find<SendToIncumbent>(a), nullptr);
  EXPECT_TRUE(Find<SendToIncumbent>(a)->env.has_resume());
  EXPECT_EQ(m.state(), State::kResuming);
  a = m.OnIncumbentMessage(M("resumed"), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kRolledBack);
}

TEST_F(HandoffMachineTest, SuccessorCrashAfterBeginRollsBackWithResume) {
  HandoffMachine m(params());
  To(m, State::kBeginning);
  auto a = m.OnSuccessorExited(ChildExit::Exited(86), clock.Now());
  ASSERT_NE(Find<SendToIncumbent>(a), nullptr);
  EXPECT_TRUE(Find<SendToIncumbent>(a)->env.has_resume());
  a = m.OnIncumbentMessage(M("resumed"), clock.Now());
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kRolledBack);
}

TEST_F(HandoffMachineTest, SuccessorAbortAfterBeginRollsBack) {
  HandoffMachine m(params());
  To(m, State::kBeginning);
  auto a = m.OnSuccessorMessage(M("abort"), clock.Now());
  ASSERT_NE(Find<SignalSuccessor>(a), nullptr);
  a = m.OnSuccessorExited(ChildExit::Exited(1), clock.Now());
  a = m.OnIncumbentMessage(M("resumed"), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_NE(Find<Finished>(a)->reason.find("fingerprint mismatch"), std::string::npos);
}

TEST_F(HandoffMachineTest, SealFailedMeansTheIncumbentResumedByItself) {
  HandoffMachine m(params());
  To(m, State::kSealing);
  auto a = m.OnIncumbentMessage(M("seal_failed"), clock.Now());
  ASSERT_NE(Find<SignalSuccessor>(a), nullptr);
  a = m.OnSuccessorExited(ChildExit::Signalled(15), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kRolledBack);
  EXPECT_NE(Find<Finished>(a)->reason.find("disk full"), std::string::npos);
  EXPECT_EQ(Find<SendToIncumbent>(a), nullptr);  // no Resume: it already did
}

TEST_F(HandoffMachineTest, DrainAndSealAndBeginTimeouts) {
  for (State s : {State::kDraining, State::kSealing, State::kBeginning}) {
    HandoffMachine m(params());
    To(m, s);
    ASSERT_TRUE(m.NextDeadline());
    clock.Set(*m.NextDeadline() - milliseconds(1));
    EXPECT_TRUE(m.OnTimer(clock.Now()).empty());
    clock.Advance(milliseconds(1));
    auto a = m.OnTimer(clock.Now());
    ASSERT_NE(Find<SignalSuccessor>(a), nullptr) << StateName(s);
    EXPECT_EQ(m.state(), State::kStoppingSuccessor);
  }
}

TEST_F(HandoffMachineTest, IncumbentDeathDuringDrainProceedsToTheWarmSuccessor) {
  HandoffMachine m(params());
  To(m, State::kDraining);
  auto a = m.OnIncumbentExited(ChildExit::Signalled(9), clock.Now());
  ASSERT_NE(Find<SendToSuccessor>(a), nullptr);
  EXPECT_TRUE(Find<SendToSuccessor>(a)->env.has_begin());
  EXPECT_FALSE(Find<SendToSuccessor>(a)->env.begin().sealed());
  a = m.OnSuccessorMessage(M("ready"), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kCommitted);
  EXPECT_NE(Find<PromoteSuccessor>(a), nullptr);
}

TEST_F(HandoffMachineTest, HungIncumbentIsKilledThenTheHandoffProceeds) {
  HandoffMachine m(params());
  To(m, State::kSealing);
  auto a = m.OnIncumbentChannelClosed(Error(Errc::kDeadlineExceeded, "silent"), clock.Now());
  ASSERT_NE(Find<SignalIncumbent>(a), nullptr);
  EXPECT_EQ(Find<SignalIncumbent>(a)->signal, SIGKILL);
  a = m.OnIncumbentExited(ChildExit::Signalled(9), clock.Now());
  EXPECT_TRUE(Find<SendToSuccessor>(a)->env.has_begin());
}

TEST_F(HandoffMachineTest, IncumbentDeathBeforePrepareGoesStraightToBegin) {
  HandoffMachine m(params());
  To(m, State::kWarming);
  EXPECT_TRUE(m.OnIncumbentExited(ChildExit::Exited(1), clock.Now()).empty());
  auto a = m.OnSuccessorMessage(M("warmed"), clock.Now());
  EXPECT_EQ(Find<SendToIncumbent>(a), nullptr);
  ASSERT_NE(Find<SendToSuccessor>(a), nullptr);
  EXPECT_FALSE(Find<SendToSuccessor>(a)->env.begin().sealed());
}

TEST_F(HandoffMachineTest, IncumbentDeathAfterSealCompleteStillCommits) {
  HandoffMachine m(params());
  To(m, State::kBeginning);
  EXPECT_TRUE(m.OnIncumbentExited(ChildExit::Exited(0), clock.Now()).empty());
  auto a = m.OnSuccessorMessage(M("ready"), clock.Now());
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kCommitted);
}

TEST_F(HandoffMachineTest, BothGenerationsGoneIsAFailure) {
  HandoffMachine m(params());
  To(m, State::kBeginning);
  m.OnIncumbentExited(ChildExit::Exited(0), clock.Now());
  auto a = m.OnSuccessorExited(ChildExit::Exited(86), clock.Now());
  ASSERT_NE(Find<Finished>(a), nullptr);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kFailed);
}

TEST_F(HandoffMachineTest, CommitEndsWhenTheOldGenerationExitsWithoutAck) {
  HandoffMachine m(params());
  To(m, State::kCommitting);
  auto a = m.OnIncumbentExited(ChildExit::Exited(0), clock.Now());
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kCommitted);
}

TEST_F(HandoffMachineTest, CommitTimeoutKillsTheOldGenerationAndCommits) {
  HandoffMachine m(params());
  To(m, State::kCommitting);
  clock.Advance(seconds(10));
  auto a = m.OnTimer(clock.Now());
  EXPECT_EQ(Find<SignalIncumbent>(a)->signal, SIGKILL);
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kCommitted);
}

TEST_F(HandoffMachineTest, SuccessorDeathAfterReadyIsAFailure) {
  HandoffMachine m(params());
  To(m, State::kCommitting);
  auto a = m.OnSuccessorExited(ChildExit::Exited(86), clock.Now());
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kFailed);
}

TEST_F(HandoffMachineTest, ResumeTimeoutIsAFailure) {
  HandoffMachine m(params());
  To(m, State::kDraining);
  m.OnSuccessorExited(ChildExit::Exited(0), clock.Now());
  ASSERT_EQ(m.state(), State::kResuming);
  clock.Advance(seconds(30));
  auto a = m.OnTimer(clock.Now());
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kFailed);
  // A hung incumbent is ended so the supervisor restarts a generation.
  ASSERT_NE(Find<SignalIncumbent>(a), nullptr);
  EXPECT_EQ(Find<SignalIncumbent>(a)->signal, SIGKILL);
}

TEST_F(HandoffMachineTest, AbortRollsBackBeforeReadyOnly) {
  HandoffMachine m(params());
  To(m, State::kWarming);
  auto a = m.OnAbort("operator", clock.Now());
  ASSERT_NE(Find<SignalSuccessor>(a), nullptr);
  HandoffMachine late(params());
  To(late, State::kCommitting);
  EXPECT_TRUE(late.OnAbort("operator", clock.Now()).empty());
}

TEST_F(HandoffMachineTest, HandoffDeadlineBoundsEverything) {
  HandoffParams p = params();
  p.timeouts.warm = seconds(1000);
  p.timeouts.handoff = seconds(60);
  HandoffMachine m(p);
  To(m, State::kWarming);
  EXPECT_EQ(*m.NextDeadline(), clock.Now() + seconds(60));
  clock.Advance(seconds(60));
  auto a = m.OnTimer(clock.Now());
  ASSERT_NE(Find<SignalSuccessor>(a), nullptr);
}

TEST_F(HandoffMachineTest, UnexpectedSuccessorMessageRollsBack) {
  HandoffMachine m(params());
  To(m, State::kWarming);
  auto a = m.OnSuccessorMessage(M("ready"), clock.Now());  // Ready before Warmed
  ASSERT_NE(Find<SignalSuccessor>(a), nullptr);
  HandoffMachine w(params());
  To(w, State::kWarming);
  a = w.OnSuccessorMessage(M("warmed", "other"), clock.Now());  // wrong handoff id
  ASSERT_NE(Find<SignalSuccessor>(a), nullptr);
}

TEST_F(HandoffMachineTest, NoIncumbentMeansBeginRightAfterWarm) {
  HandoffParams p = params();
  p.incumbent_schema.reset();
  HandoffMachine m(p);
  m.Start(clock.Now());
  m.OnSpawned(1, clock.Now());
  m.OnSuccessorMessage(Hello(1, 1, 7, 9), clock.Now());  // no schema to match
  auto a = m.OnSuccessorMessage(M("warmed"), clock.Now());
  EXPECT_TRUE(Find<SendToSuccessor>(a)->env.has_begin());
  a = m.OnSuccessorMessage(M("ready"), clock.Now());
  EXPECT_EQ(Find<Finished>(a)->outcome, Outcome::kCommitted);
}

}  // namespace
}  // namespace baton::supervisor
