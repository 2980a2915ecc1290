// The C ABI of descriptor and state handover (ABI 1.2): argument checks and
// error paths in this process, on a standalone daemon; then real handoffs
// between capi_probe generations (tests/unit/capi/capi_probe.c), where the
// probe hands over socket pairs with unread bytes and a state of megabytes.
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "baton/baton.h"
#include "tests/unit/capi/accept_steps.h"
#include "tests/unit/capi/probe_cluster.h"
#include "tools/harness/slowdown.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

using std::chrono::seconds;

struct Err {
  baton_error* e = nullptr;
  ~Err() { baton_error_free(e); }
  baton_error** operator&() { return &e; }
  std::string message() const { return baton_error_message(e); }
};

class CapiHandoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("BATON_DATA_DIR");
    baton_options o{};
    o.size = sizeof o;
    o.data_dir = dir_.path().c_str();
    ASSERT_EQ(baton_create(&o, &d_, nullptr), BATON_OK);
  }
  void TearDown() override {
    int code = 0;
    baton_request_exit(d_, 0, nullptr);
    baton_wait_for_exit(d_, &code, nullptr);
    baton_destroy(d_);
  }
  TempDir dir_{"capi-handover"};
  baton_daemon* d_ = nullptr;
};

TEST_F(CapiHandoverTest, HandOverChecksItsArguments) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Err err;
  EXPECT_EQ(baton_hand_over(nullptr, BATON_HANDOVER_FILE, "x", p[0], nullptr, 0, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_hand_over: daemon is NULL");
  EXPECT_EQ(baton_hand_over(d_, BATON_HANDOVER_FILE, nullptr, p[0], nullptr, 0, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_hand_over: name is NULL");
  EXPECT_EQ(baton_hand_over(d_, BATON_HANDOVER_FILE, "x", p[0], nullptr, 3, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_hand_over: metadata is NULL");
  EXPECT_EQ(baton_hand_over(d_, 7, "x", p[0], nullptr, 0, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_hand_over: 7 is not a baton_handover_kind");
  // Well-formed, but a pipe is no connection: refused before anything else.
  EXPECT_EQ(baton_hand_over(d_, BATON_HANDOVER_CONNECTION, "x", p[0], "m", 1, &err), BATON_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("socket"), std::string::npos) << err.message();
  EXPECT_EQ(baton_hand_over(d_, BATON_HANDOVER_FILE, "", p[0], nullptr, 0, &err), BATON_INVALID_ARGUMENT);
  // Outside a drain or seal hook (here: standalone, no handoff at all).
  EXPECT_EQ(baton_hand_over(d_, BATON_HANDOVER_FILE, "x", p[0], "m", 1, &err), BATON_FAILED_PRECONDITION);
  EXPECT_NE(err.message().find("only from the Drain or Seal hook"), std::string::npos) << err.message();
  // Every refusal left the descriptor with the caller.
  EXPECT_GE(::fcntl(p[0], F_GETFD), 0);
  ::close(p[0]);
  ::close(p[1]);
}

TEST_F(CapiHandoverTest, SetStateChecksItsArguments) {
  Err err;
  EXPECT_EQ(baton_set_handover_state(nullptr, "x", 1, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_set_handover_state: daemon is NULL");
  EXPECT_EQ(baton_set_handover_state(d_, nullptr, 1, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_set_handover_state: data is NULL");
  EXPECT_EQ(baton_set_handover_state(d_, "x", 1, &err), BATON_FAILED_PRECONDITION);
  EXPECT_EQ(baton_set_handover_state(d_, nullptr, 0, nullptr), BATON_FAILED_PRECONDITION);
}

// Accepting is said before start (here a standalone daemon, never started
// by the fixture); outside a handoff no successor accepts anything.
TEST_F(CapiHandoverTest, AcceptHandoverChecksItsArguments) {
  Err err;
  EXPECT_EQ(baton_accept_handover(nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_accept_handover: daemon is NULL");
  EXPECT_EQ(baton_accept_handover(d_, &err), BATON_OK);
  EXPECT_EQ(baton_accept_handover(d_, nullptr), BATON_OK);  // saying it twice is saying it
  EXPECT_EQ(baton_successor_accepts_handover(nullptr), 0);
  EXPECT_EQ(baton_successor_accepts_handover(d_), 0);
}

TEST_F(CapiHandoverTest, TakeWithNothingHandedOver) {
  Err err;
  baton_handed_fd* h = reinterpret_cast<baton_handed_fd*>(this);
  EXPECT_EQ(baton_take_handed_over(nullptr, &h, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_take_handed_over: daemon is NULL");
  EXPECT_EQ(baton_take_handed_over(d_, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_take_handed_over: next is NULL");
  EXPECT_EQ(baton_take_handed_over(d_, &h, &err), BATON_OK);
  EXPECT_EQ(h, nullptr);

  void* data = this;
  size_t len = 9;
  EXPECT_EQ(baton_take_handover_state(nullptr, &data, &len, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(baton_take_handover_state(d_, nullptr, &len, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_take_handover_state: data is NULL");
  EXPECT_EQ(baton_take_handover_state(d_, &data, nullptr, &err), BATON_INVALID_ARGUMENT);
  EXPECT_EQ(err.message(), "baton_take_handover_state: len is NULL");
  EXPECT_EQ(baton_take_handover_state(d_, &data, &len, &err), BATON_OK);
  EXPECT_EQ(data, nullptr);
  EXPECT_EQ(len, 0u);
}

TEST(CapiHandoverBasicsTest, AccessorsAcceptNull) {
  EXPECT_STREQ(baton_handed_fd_name(nullptr), "");
  EXPECT_EQ(baton_handed_fd_kind(nullptr), -1);
  EXPECT_EQ(baton_handed_fd_fd(nullptr), -1);
  size_t len = 5;
  EXPECT_EQ(baton_handed_fd_metadata(nullptr, &len), nullptr);
  EXPECT_EQ(len, 0u);
  EXPECT_EQ(baton_handed_fd_metadata(nullptr, nullptr), nullptr);
  baton_handed_fd_free(nullptr);
  baton_free(nullptr);
  EXPECT_EQ(baton_abi_version() & 0xffffu, 3u);
}

// ---- real handoffs ---------------------------------------------------------

constexpr const char* kHandover = "3 2097152";  // 3 socket pairs, a 2 MiB state

// What a generation received in `hook` from the incumbent `from`.
void ExpectReceived(const std::string& t, const std::string& pid, const std::string& hook, const std::string& from) {
  for (int i = 0; i < 3; ++i) {
    const std::string n = std::to_string(i);
    EXPECT_NE(t.find(pid + " " + hook + " handed conn-" + n + " kind=0 meta=meta-" + from + "-" + n + " read=ping-" +
                     from + "-" + n + " cloexec=1\n"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find(pid + " " + hook + " handed peer-" + n + " kind=1 meta= read= cloexec=1\n"), std::string::npos)
        << t;
  }
  EXPECT_NE(t.find(pid + " " + hook + " state len=2097152 head=state-" + from + "xxxx"), std::string::npos) << t;
}

TEST(CapiHandoverHandoffTest, ConnectionsAndAStateOfMegabytesReachTheSuccessor) {
  ProbeCluster c;
  ASSERT_TRUE(c.Start()) << c.Log();
  const std::string inc = std::to_string(c.PidOf("serving"));
  EXPECT_TRUE(c.WaitForTrace(std::regex(inc + " outside=3\n"), seconds(5))) << c.Trace();
  c.Knob("handover", kHandover);
  auto r = c.Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.Log();
  const std::string suc = std::to_string(c.PidOf("warm"));
  ASSERT_TRUE(c.WaitForTrace(std::regex(suc + " serving\n"), seconds(20))) << c.Trace();
  const std::string t = c.Trace();
  EXPECT_NE(t.find(inc + " refused pipe=6 twice=6 open=1\n"), std::string::npos) << t;
  ExpectReceived(t, suc, "begin", inc);
  EXPECT_EQ(t.find(" resume "), std::string::npos) << t;
}

// A successor that did not call baton_accept_handover is handed nothing:
// the incumbent sees it in its drain, its baton_hand_over and
// baton_set_handover_state are refused (the descriptor still its own), and
// the successor's begin takes nothing. The next successor, accepting again,
// gets everything.
TEST(CapiHandoverHandoffTest, ASuccessorThatDoesNotAcceptIsHandedNothing) {
  ProbeCluster c;
  std::string inc, suc, next;
  ASSERT_NO_FATAL_FAILURE(UpgradeToASuccessorThatDoesNotAccept(c, kHandover, &inc, &suc));
  const std::string t = c.Trace();
  EXPECT_NE(t.find(inc + " set_state failed 3 "), std::string::npos) << t;
  EXPECT_EQ(t.find(suc + " begin state"), std::string::npos) << t;
  ASSERT_NO_FATAL_FAILURE(UpgradeToASuccessorThatAcceptsAgain(c, suc, &next));
  ExpectReceived(c.Trace(), next, "begin", suc);
}

TEST(CapiHandoverHandoffTest, ARollbackGivesEveryDescriptorBackToTheIncumbent) {
  ProbeCluster c;
  ASSERT_TRUE(c.Start()) << c.Log();
  const std::string inc = std::to_string(c.PidOf("serving"));
  c.Knob("handover", kHandover);
  // The successor received them all (and peeked at the bytes), then fails.
  c.Knob("fail-begin", "1 begin: refusing");
  auto r = c.Upgrade();
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << c.Log();
  ASSERT_TRUE(c.WaitForTrace(std::regex(inc + " resume state len=2097152"), seconds(20))) << c.Trace();
  const std::string t = c.Trace();
  const std::string suc = std::to_string(c.PidOf("warm"));
  ExpectReceived(t, suc, "begin", inc);
  // Back to the incumbent, unread bytes included: the successor only peeked.
  ExpectReceived(t, inc, "resume", inc);
}

int FdCount(int pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n - 2;
}

// What `pid`'s descriptors are, one "fd -> target" a line: a failure says
// which descriptor is one too many.
std::string FdList(int pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  std::string out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return "(gone)";
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[256] = "";
    const ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
    out += std::string(e->d_name) + " -> " + (n > 0 ? std::string(target, static_cast<size_t>(n)) : "?") + "\n";
  }
  ::closedir(d);
  return out;
}

// The descriptor count of `pid` once it is at most `want` (a generation
// that just retired may still be being reaped, and the baseline may have
// been taken while one was), or the last count seen after a generous bound.
int SettledFdCount(int pid, int want) {
  int n = FdCount(pid);
  for (int i = 0; i < 1000 && n > want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    n = FdCount(pid);
  }
  return n;
}

// The pid on the trace's last "PID serving" line, or 0. Scanned by hand:
// a regex with a lookahead over the whole trace recurses once per character
// in libstdc++ and overflows the stack (under ASan from a few KiB on).
int LastServing(const std::string& trace) {
  static const std::string kServing = " serving\n";
  for (size_t end = trace.rfind(kServing); end != std::string::npos && end > 0;
       end = trace.rfind(kServing, end - 1)) {
    const size_t start = trace.rfind('\n', end - 1);
    const std::string pid = trace.substr(start == std::string::npos ? 0 : start + 1,
                                         end - (start == std::string::npos ? 0 : start + 1));
    if (!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos) return std::stoi(pid);
  }
  return 0;
}

// The pid of the generation serving after `prev` did, once its "serving"
// line is in the trace (it comes right after the commit), or 0.
int NextServing(const ProbeCluster& c, int prev) {
  for (int i = 0; i < 1000; ++i) {
    const int pid = LastServing(c.Trace());
    if (pid > 0 && pid != prev) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

// Descriptors never leak: over 300 upgrades with descriptors and a state
// in flight, the supervisor holds as many as it did after the second, and
// every new generation, having taken and closed what it received, holds
// as many as the second one did.
TEST(CapiHandoverHandoffTest, NoDescriptorLeaksOverThreeHundredUpgrades) {
  // 300 in a plain build (about 60 s); under a sanitizer each upgrade is
  // several times slower (about 1.4 s under ASan on a busy machine), so a
  // quarter (ASan) or an eighth (TSan) keeps the test well inside ctest's
  // timeout.
  const int kUpgrades = kSanitizerSlowdown == 1 ? 300 : 300 / (2 * kSanitizerSlowdown);
  ProbeCluster c;
  ASSERT_TRUE(c.Start()) << c.Log();
  c.Knob("handover", kHandover);
  // `baton upgrade` returns at the commit, maybe before the new generation
  // said "serving": each is told by its pid differing from the one before.
  int gen = NextServing(c, 0);
  ASSERT_EQ(c.Upgrade().exit_code, 0) << c.Log();  // warm every path once
  gen = NextServing(c, gen);
  const int sup = c.supervisor_pid();
  ASSERT_EQ(c.Upgrade().exit_code, 0) << c.Log();  // a previous binary is pinned from now on
  gen = NextServing(c, gen);
  ASSERT_GT(gen, 0) << c.Trace();
  const int sup_fds = FdCount(sup);
  const int gen_fds = FdCount(gen);
  const std::string gen_list = FdList(gen);
  ASSERT_GT(sup_fds, 0);
  ASSERT_GT(gen_fds, 0);
  for (int i = 0; i < kUpgrades - 2; ++i) {
    ASSERT_EQ(c.Upgrade().exit_code, 0) << i << c.Log();
    const int next = NextServing(c, gen);
    ASSERT_GT(next, 0) << i << c.Trace().substr(0, 4000);
    gen = next;
    ASSERT_LE(SettledFdCount(gen, gen_fds), gen_fds)
        << "upgrade " << i + 3 << ", generation " << gen << " has\n"
        << FdList(gen) << "the second had\n"
        << gen_list;
    if (i % 25 == 0) {
      ASSERT_LE(SettledFdCount(sup, sup_fds), sup_fds) << "upgrade " << i + 3;
    }
  }
  EXPECT_LE(SettledFdCount(sup, sup_fds), sup_fds);
}

// ... and over rollbacks: an incumbent that gets its own descriptors back
// again and again holds as many as before, and so does the supervisor.
TEST(CapiHandoverHandoffTest, NoDescriptorLeaksOverRollbacks) {
  ProbeCluster c;
  ASSERT_TRUE(c.Start()) << c.Log();
  c.Knob("handover", kHandover);
  ASSERT_EQ(c.Upgrade().exit_code, 0) << c.Log();
  const int sup = c.supervisor_pid();
  ASSERT_EQ(c.Upgrade().exit_code, 0) << c.Log();
  const int sup_fds = FdCount(sup);
  ASSERT_GT(sup_fds, 0);
  c.Knob("fail-begin", "1 begin: refusing");
  ASSERT_EQ(c.Upgrade().exit_code, 3) << c.Log();
  // The incumbent now: the last generation that said "serving".
  const int inc = LastServing(c.Trace());
  ASSERT_GT(inc, 0) << c.Trace();
  ASSERT_TRUE(c.WaitForTrace(std::regex(std::to_string(inc) + " resume state"), seconds(20)));
  const int inc_fds = FdCount(inc);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(c.Upgrade().exit_code, 3) << i << c.Log();
    EXPECT_LE(SettledFdCount(inc, inc_fds), inc_fds) << i;
  }
  EXPECT_LE(SettledFdCount(sup, sup_fds), sup_fds);
}

}  // namespace
}  // namespace baton::harness
