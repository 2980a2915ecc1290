// Shared checks for the integration tests.
#pragma once

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "tools/harness/cluster.h"
#include "tools/harness/http.h"

namespace baton::harness {

inline int64_t JInt(const boost::json::value& v, std::initializer_list<const char*> path) {
  const boost::json::value* cur = &v;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->as_object().contains(k)) return -999999;
    cur = &cur->as_object().at(k);
  }
  return cur->is_number() ? cur->to_number<int64_t>() : -999999;
}

// Zero errors of every kind and every acknowledged write read back.
// allow_resets: a process that dies while serving resets its connections;
// that is the only error such a fault may cause. allow_non2xx: answers
// like a 503 from a kvd that does not hold its lease (a write refused, not lost).
inline void ExpectCleanLoad(const CommandResult& load, bool allow_resets = false, bool allow_non2xx = false) {
  ASSERT_TRUE(load.json.is_object()) << load.out << load.err;
  EXPECT_EQ(JInt(load.json, {"errors", "refused"}), 0) << load.out;
  if (!allow_resets) {
    EXPECT_EQ(JInt(load.json, {"errors", "reset"}), 0) << load.out;
  }
  EXPECT_EQ(JInt(load.json, {"errors", "timeout"}), 0) << load.out;
  if (!allow_non2xx) {
    EXPECT_EQ(JInt(load.json, {"errors", "non2xx"}), 0) << load.out;
  }
  EXPECT_EQ(JInt(load.json, {"errors", "other"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"lost_writes"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"verify_errors"}), 0) << load.out;
  EXPECT_GT(JInt(load.json, {"writes_acked"}), 0) << load.out;
  if (!allow_resets && !allow_non2xx) {
    EXPECT_EQ(load.exit_code, 0) << load.err;
  }
}

// Zombies of `pid` after giving it up to 5 s to reap children that exited
// just now (an old generation exits right after acknowledging Commit).
inline int ZombiesAfterSettling(pid_t pid) {
  int z = 0;
  for (int i = 0; i < 250; ++i) {
    z = CountZombieChildren(pid);
    if (z == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return z;
}

// A crash point ("kvd.in_begin_replay@successor") as a test name's part.
inline std::string TestNameOf(std::string point) {
  for (auto& ch : point) ch = ch == '.' || ch == '@' ? '_' : ch;
  return point;
}

// Waits up to 30 s until kvd's revision, which counts acknowledged
// writes, reaches 100: the load is writing.
inline bool WaitUntilWriting(Cluster& c) {
  for (int i = 0; i < 1500; ++i) {
    boost::system::error_code ec;
    auto health = boost::json::parse(HttpBody(HttpGet(c.port(), "/healthz")), ec);
    if (!ec && health.is_object() && health.as_object().contains("revision") &&
        health.at("revision").to_number<int64_t>() >= 100) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Starts the cluster and a load of 8 connections (--close in `close_mode`)
// and waits until it writes; the serving generation's pid (-1 and a
// failure if it did not start).
inline pid_t StartLoaded(Cluster& c, bool close_mode = false) {
  if (!c.Start()) {
    ADD_FAILURE() << c.SupervisorLog();
    return -1;
  }
  const pid_t serving = c.IncumbentPid();
  EXPECT_GT(serving, 0);
  c.StartLoad(8, "600s", close_mode);
  EXPECT_TRUE(WaitUntilWriting(c)) << "the load does not write";
  return serving;
}

inline std::string Outcome(const CommandResult& r) {
  if (!r.json.is_object() || !r.json.as_object().contains("outcome")) return "<no json: " + r.out + r.err + ">";
  return std::string(r.json.at("outcome").as_string());
}

}  // namespace baton::harness
