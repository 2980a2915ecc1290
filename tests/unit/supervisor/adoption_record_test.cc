#include "supervisor/adoption_record.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "supervisor/adoption.h"
#include "supervisor/child.h"
#include "tools/harness/subprocess.h"

namespace baton::supervisor {
namespace {

TEST(AdoptionRecordTest, RoundTripsAndRecognisesLiveProcesses) {
  const harness::TempDir tmp("jr");
  const std::string& dir = tmp.path();
  const std::string path = AdoptionRecordPath(dir);
  auto none = ReadAdoptionRecord(path);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none) << "no journal yet";

  auto self = EntryFor(::getpid(), "");
  ASSERT_TRUE(self);
  AdoptionRecord state{*self, {{*EntryFor(::getpid(), "cold")}}};
  ASSERT_TRUE(WriteAdoptionRecord(path, state));
  auto back = ReadAdoptionRecord(path);
  ASSERT_TRUE(back && *back);
  EXPECT_EQ((*back)->supervisor.pid, ::getpid());
  ASSERT_EQ((*back)->children.size(), 1u);
  EXPECT_EQ((*back)->children[0].role, "cold");
  EXPECT_TRUE(StillRunning((*back)->supervisor));

  // A recycled pid (same pid, other start time) is not ours.
  RecordedProcess other = *self;
  other.start_time += 1;
  EXPECT_FALSE(StillRunning(other));
}

TEST(AdoptionRecordTest, MalformedJournalNamesTheLine) {
  const harness::TempDir tmp("jr");
  const std::string& dir = tmp.path();
  const std::string path = AdoptionRecordPath(dir);
  std::ofstream(path) << "supervisor 12 34\nchild twelve 1 cold\n";
  auto r = ReadAdoptionRecord(path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
  std::ofstream(path) << "child 12 34 cold\n";
  auto r2 = ReadAdoptionRecord(path);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("no supervisor line"), std::string::npos) << r2.error().message;
}

TEST(AdoptionRecordTest, FindsOnlyOrphansThatStillRun) {
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  auto live = EntryFor(child, "cold");
  ASSERT_TRUE(live);
  RecordedProcess gone{::getpid(), live->start_time + 12345, "successor"};  // not this process any more
  AdoptionRecord state{*EntryFor(::getpid(), ""), {*live, gone}};
  auto orphans = FindOrphans(state);
  ASSERT_EQ(orphans.size(), 1u);
  EXPECT_EQ(orphans[0].pid(), child);
  EXPECT_TRUE(orphans[0].Running());
  ASSERT_TRUE(orphans[0].Signal(SIGKILL));
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(orphans[0].Running());
}

TEST(CrashRouteTest, DeliversOnceToTheTargetRole) {
  ::setenv("BATON_CRASH_AT", "incumbent.in_seal", 1);
  auto r = CrashRoute::FromEnvironment();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->TakeFor(ChildRole::kSuccessor), "");
  EXPECT_EQ(r->TakeFor(ChildRole::kCold), "incumbent.in_seal");
  EXPECT_EQ(r->TakeFor(ChildRole::kCold), "") << "a restarted generation must not inherit the fault";

  ::setenv("BATON_CRASH_AT", "kvd.in_begin_replay@successor", 1);
  r = CrashRoute::FromEnvironment();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->TakeFor(ChildRole::kCold), "");
  EXPECT_EQ(r->TakeFor(ChildRole::kSuccessor), "kvd.in_begin_replay@successor");

  ::setenv("BATON_CRASH_AT", "supervisor.after_send_seal", 1);
  r = CrashRoute::FromEnvironment();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->TakeFor(ChildRole::kCold), "");
  EXPECT_EQ(r->TakeFor(ChildRole::kSuccessor), "") << "the supervisor's own points stay in the supervisor";

  ::setenv("BATON_CRASH_AT", "incumbent.in_seal@successor", 1);
  EXPECT_FALSE(CrashRoute::FromEnvironment()) << "only daemon points take a role";
  ::setenv("BATON_CRASH_AT", "kvd.in_seal_fsync@elsewhere", 1);
  EXPECT_FALSE(CrashRoute::FromEnvironment());
  ::unsetenv("BATON_CRASH_AT");
}

}  // namespace
}  // namespace baton::supervisor
