// kvd's GET /watch?from=REV (examples/kvd/service.h): a standalone kvd
// streams every committed write, refuses compacted and bad revisions, and
// ends its streams cleanly when it stops; a supervised kvd hands its streams
// to the next generation between two chunks, so across upgrades (and a
// rollback after the descriptors moved) every watcher sees one unbroken
// chunked response with every revision exactly once.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "tests/integration/integration_util.h"
#include "tests/integration/watch_util.h"
#include "tools/harness/subprocess.h"

extern char** environ;

namespace baton::harness {
namespace {

const std::string kKvd = BinPath("kvd");

int64_t JsonInt(const std::string& body, const char* key) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object() || !v.as_object().contains(key)) return -1;
  return v.at(key).to_number<int64_t>();
}

// PUT key=value; the revision acknowledged, or 0.
uint64_t Put(int port, const std::string& key, const std::string& value) {
  const std::string res = HttpRequest(port, "PUT", "/kv/" + key, value);
  if (HttpStatus(res) != 200) return 0;
  try {
    return std::stoull(HttpBody(res));
  } catch (const std::exception&) {
    return 0;
  }
}

// A kvd without a supervisor (--standalone-listen on any port); SIGKILLed
// if still running when destroyed.
class StandaloneKvd {
 public:
  StandaloneKvd(const std::string& dir, const std::string& name, std::vector<std::string> extra) {
    port_file_ = dir + "/" + name + ".port";
    std::filesystem::create_directories(dir + "/data");
    std::vector<std::string> args = {kKvd, "--data-dir", dir + "/data", "--standalone-listen", "127.0.0.1:0",
                                     "--port-file", port_file_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // No supervisor's contract may leak in from the test's environment.
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view v(*e);
      if (!v.starts_with("LISTEN_") && !v.starts_with("BATON_")) env.emplace_back(v);
    }
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string log = dir + "/" + name + ".log";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~StandaloneKvd() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The port once it serves (0: it did not within 30 s).
  int Port() {
    for (int i = 0; i < 3000; ++i) {
      std::ifstream f(port_file_);
      int port = 0;
      if (f >> port && port > 0) return port;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }
  // SIGTERM and wait: the exit code.
  int Stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::string port_file_;
  pid_t pid_ = -1;
};

TEST(WatchTest, StandaloneStreamsEveryWriteAndRefusesCompactedAndBadRevisions) {
  TempDir dir("watch");
  uint64_t last = 0;
  {
    // Small checkpoints: the WAL below is removed behind a snapshot.
    StandaloneKvd kvd(dir.path(), "first", {"--checkpoint-bytes", "4096"});
    const int port = kvd.Port();
    ASSERT_GT(port, 0);
    WatchClient all(port, "?from=1");
    const std::string value(100, 'v');
    for (int i = 1; i <= 200; ++i) {
      last = Put(port, "k" + std::to_string(i), value + "\"\\\n" + std::to_string(i));
      ASSERT_EQ(last, static_cast<uint64_t>(i));
    }
    auto p = all.WaitFor([&](const WatchParse& w) { return !w.revs.empty() && w.revs.back() >= last; });
    EXPECT_EQ(p.status, 200) << all.raw().substr(0, 500);
    EXPECT_TRUE(p.chunked);
    EXPECT_EQ(all.raw().find("Content-Type: application/x-ndjson"), all.raw().find("\r\n") + 2) << all.raw().substr(0, 300);
    EXPECT_EQ(p.bad, "");
    EXPECT_EQ(CheckConsecutive(p.revs, 1, last), "");
    EXPECT_EQ(p.body.find(R"({"rev":1,"key":"k1","value":")" + value + R"(\"\\\u000a1"})"), 0u) << p.body.substr(0, 300);
    EXPECT_FALSE(p.ended);

    // Bad revisions: 400; the next revision is fine (the stream waits).
    for (const char* bad : {"?from=0", "?from=abc", "?from=-1", "?from=", "?from=1x", "?from=99999999999999999999"}) {
      EXPECT_EQ(HttpStatus(HttpGet(port, std::string("/watch") + bad)), 400) << bad;
    }
    EXPECT_EQ(HttpStatus(HttpGet(port, "/watch?from=" + std::to_string(last + 2))), 400);
    WatchClient next(port, "?from=" + std::to_string(last + 1));
    WatchClient current(port, "");
    EXPECT_EQ(next.WaitFor([](const WatchParse& w) { return w.status != 0; }).status, 200);
    EXPECT_EQ(current.WaitFor([](const WatchParse& w) { return w.status != 0; }).status, 200);
    ASSERT_EQ(Put(port, "after", "x"), last + 1);
    ++last;
    for (auto* w : {&next, &current}) {
      auto q = w->WaitFor([&](const WatchParse& x) { return !x.revs.empty(); });
      EXPECT_EQ(CheckConsecutive(q.revs, last, last), "") << w->raw();
    }

    // The writer checkpoints by itself; wait for one past the start.
    bool checkpointed = false;
    for (int i = 0; i < 1500 && !checkpointed; ++i) {
      checkpointed = JsonInt(HttpBody(HttpGet(port, "/stats")), "snapshot_revision") > 1;
      if (!checkpointed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(checkpointed) << HttpBody(HttpGet(port, "/stats"));
    // A tail after the snapshot, for the next process to replay.
    for (int i = 0; i < 20; ++i) {
      const uint64_t rev = Put(port, "tail" + std::to_string(i), "t");
      ASSERT_EQ(rev, last + 1);
      last = rev;
    }
    auto tail = all.WaitFor([&](const WatchParse& w) { return !w.revs.empty() && w.revs.back() >= last; });
    EXPECT_EQ(CheckConsecutive(tail.revs, 1, last), "");

    // Stopping (a drain without handover) ends every stream after a
    // complete line with the terminating chunk.
    EXPECT_EQ(kvd.Stop(), 0);
    for (auto* w : {&all, &next, &current}) {
      auto q = w->WaitFor([](const WatchParse& x) { return x.ended; });
      EXPECT_TRUE(q.ended) << w->raw().substr(0, 300);
      EXPECT_EQ(q.bad, "");
      EXPECT_TRUE(q.errors.empty());
    }
    EXPECT_EQ(CheckConsecutive(all.Parse().revs, 1, last), "");
  }

  // Writes after the newest snapshot, from a process that never
  // checkpoints: the first one may have checkpointed up to its very last
  // write (its checkpoints run on their own), so the tail that the next
  // process replays is written here.
  {
    StandaloneKvd writer(dir.path(), "tail", {"--checkpoint-bytes", "0"});
    const int port = writer.Port();
    ASSERT_GT(port, 0);
    for (int i = 0; i < 20; ++i) {
      const uint64_t rev = Put(port, "more" + std::to_string(i), "m");
      ASSERT_EQ(rev, last + 1);
      last = rev;
    }
    EXPECT_EQ(writer.Stop(), 0);
  }

  // A new process starts from the newest snapshot: what came before it is
  // compacted for watchers; what it replayed after it is not.
  StandaloneKvd kvd(dir.path(), "second", {"--checkpoint-bytes", "0"});
  const int port = kvd.Port();
  ASSERT_GT(port, 0);
  const int64_t snap = JsonInt(HttpBody(HttpGet(port, "/stats")), "snapshot_revision");
  ASSERT_GT(snap, 1);
  ASSERT_LT(static_cast<uint64_t>(snap), last);
  const std::string gone = HttpGet(port, "/watch?from=1");
  EXPECT_EQ(HttpStatus(gone), 410) << gone;
  EXPECT_EQ(HttpBody(gone), R"({"error":"compacted","oldest":)" + std::to_string(snap + 1) + "}\n");
  EXPECT_EQ(HttpStatus(HttpGet(port, "/watch?from=" + std::to_string(snap))), 410);
  WatchClient tail(port, "?from=" + std::to_string(snap + 1));
  auto p = tail.WaitFor([&](const WatchParse& w) { return !w.revs.empty() && w.revs.back() >= last; });
  EXPECT_EQ(CheckConsecutive(p.revs, static_cast<uint64_t>(snap + 1), last), "") << tail.raw().substr(0, 300);

  // A history of (almost) nothing: even the last revision is compacted.
  EXPECT_EQ(kvd.Stop(), 0);
  StandaloneKvd tiny(dir.path(), "third", {"--watch-history-bytes", "1"});
  const int tiny_port = tiny.Port();
  ASSERT_GT(tiny_port, 0);
  EXPECT_EQ(HttpStatus(HttpGet(tiny_port, "/watch?from=" + std::to_string(last))), 410);
}

// Writes on a thread of their own until stopped; the highest revision
// acknowledged.
class Writer {
 public:
  explicit Writer(int port)
      : thread_([this, port] {
          for (int i = 0; !stop_; ++i) {
            const uint64_t rev = Put(port, "w" + std::to_string(i % 500), "value-" + std::to_string(i));
            if (rev > last_) last_ = rev;
          }
        }) {}
  ~Writer() { Stop(); }
  uint64_t Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return last_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> last_{0};
  std::thread thread_;
};

// Every stream is one unbroken chunked response with every revision from
// `from` up to `last` exactly once, and the server never closed it.
void ExpectUnbroken(const WatchClient& w, uint64_t from, uint64_t last) {
  auto p = w.WaitFor([&](const WatchParse& x) { return x.ended || (!x.revs.empty() && x.revs.back() >= last); });
  EXPECT_EQ(p.status, 200);
  EXPECT_TRUE(p.chunked);
  EXPECT_EQ(p.bad, "");
  EXPECT_FALSE(p.ended);
  EXPECT_TRUE(p.errors.empty()) << p.errors.front();
  EXPECT_FALSE(w.closed());
  EXPECT_EQ(CheckConsecutive(p.revs, from, last), "") << "from " << from;
}

TEST(WatchTest, StreamsSurviveUpgradesWithoutGapOrDuplicate) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t first = c.IncumbentPid();
  for (int i = 0; i < 50; ++i) ASSERT_GT(Put(c.port(), "pre" + std::to_string(i), "x"), 0u);
  WatchClient from1(c.port(), "?from=1");
  WatchClient from25(c.port(), "?from=25");
  WatchClient now(c.port(), "");  // from 51
  Writer writer(c.port());
  for (int i = 0; i < 20; ++i) {
    auto r = c.Upgrade();
    ASSERT_EQ(r.exit_code, 0) << i << r.out << r.err << c.SupervisorLog().substr(0, 6000);
  }
  const uint64_t last = writer.Stop();
  ASSERT_GT(last, 50u);
  EXPECT_NE(c.IncumbentPid(), first);
  ExpectUnbroken(from1, 1, last);
  ExpectUnbroken(from25, 25, last);
  ExpectUnbroken(now, 51, last);
  // Each upgrade handed the three streams over between two chunks.
  EXPECT_TRUE(c.WaitForLog(R"("streams":3)", std::chrono::seconds(5)));
}

// The successor received the streams and crashed before Ready: the
// incumbent gets them back and continues them.
TEST(WatchTest, RollbackAfterTheDescriptorsMovedGivesTheStreamBack) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t before = c.IncumbentPid();
  for (int i = 0; i < 10; ++i) ASSERT_GT(Put(c.port(), "pre" + std::to_string(i), "x"), 0u);
  WatchClient w(c.port(), "?from=1");
  Writer writer(c.port());
  auto r = c.Upgrade(c.Script("crash", "BATON_CRASH_AT=successor.after_recv_handover exec " + kKvd + " \"$@\""));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << c.SupervisorLog().substr(0, 6000);
  EXPECT_EQ(c.IncumbentPid(), before);
  EXPECT_TRUE(c.WaitForLog("handover.returned", std::chrono::seconds(5))) << c.SupervisorLog().substr(0, 6000);
  EXPECT_TRUE(c.WaitForLog("kvd.adopted", std::chrono::seconds(5)));
  // Writes after the rollback reach the same stream.
  const uint64_t mid = Put(c.port(), "after-rollback", "y");
  ASSERT_GT(mid, 0u);
  auto p = w.WaitFor([&](const WatchParse& x) { return !x.revs.empty() && x.revs.back() >= mid; });
  ASSERT_FALSE(p.revs.empty());
  EXPECT_GE(p.revs.back(), mid);
  // And the next upgrade still moves it.
  auto next = c.Upgrade();
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  const uint64_t last = writer.Stop();
  ExpectUnbroken(w, 1, last);
}

// Without handover the drain ends the stream after a complete line with
// the terminating chunk; the client picks up at last+1 from the next
// generation, which has the rest.
TEST(WatchTest, WithoutHandoverTheStreamEndsCleanlyAndResumesFromTheNextRevision) {
  Cluster c({{"--no-hand-over"}, {}, {}});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  for (int i = 0; i < 10; ++i) ASSERT_GT(Put(c.port(), "pre" + std::to_string(i), "x"), 0u);
  WatchClient w(c.port(), "?from=1");
  Writer writer(c.port());
  auto r = c.Upgrade(c.Script("plain", "exec " + kKvd + " \"$@\" --no-hand-over"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto p = w.WaitFor([](const WatchParse& x) { return x.ended; });
  EXPECT_TRUE(p.ended) << w.raw().substr(0, 300);
  EXPECT_EQ(p.bad, "");
  EXPECT_TRUE(p.errors.empty());
  ASSERT_FALSE(p.revs.empty());
  EXPECT_EQ(CheckConsecutive(p.revs, 1, p.revs.back()), "");
  WatchClient again(c.port(), "?from=" + std::to_string(p.revs.back() + 1));
  const uint64_t last = writer.Stop();
  ExpectUnbroken(again, p.revs.back() + 1, last);
}

}  // namespace
}  // namespace baton::harness
