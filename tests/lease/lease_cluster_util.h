// Helpers for the lease tests with real processes: a supervised kvd holding
// a lease on the test's own PostgreSQL, the leader intervals every process
// logs (monotonic clock, comparable across processes of one host), the
// lease row, and the epochs stamped in kvd's WAL.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "examples/kvd/wal.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/cluster.h"
#include "tools/harness/lease_probe.h"
#include "tools/harness/pg_server.h"

namespace baton::testing {

using harness::LeaderInterval;
using harness::LeaderIntervals;
using harness::HttpGet;

// No two intervals overlap; returns the gaps between consecutive ones (µs).
inline std::vector<int64_t> ExpectNoOverlap(const std::vector<LeaderInterval>& iv) {
  std::vector<int64_t> gaps;
  for (size_t i = 1; i < iv.size(); ++i) {
    EXPECT_LE(iv[i - 1].end_us, iv[i].start_us)
        << iv[i - 1].holder << " (epoch " << iv[i - 1].epoch << ") still leader when " << iv[i].holder
        << " (epoch " << iv[i].epoch << ") started";
    if (!iv[i - 1].open()) gaps.push_back(iv[i].start_us - iv[i - 1].end_us);
  }
  for (size_t i = 0; i + 1 < iv.size(); ++i) EXPECT_FALSE(iv[i].open()) << iv[i].holder << " never ended";
  return gaps;
}

// PUT `body` to 127.0.0.1:`port``path`; the HTTP status (0 on failure).
inline int HttpPut(int port, const std::string& path, const std::string& body) {
  return harness::HttpStatus(harness::HttpRequest(port, "PUT", path, body, std::chrono::seconds(2)));
}

inline int PortOf(const harness::Cluster& c) { return std::stoi(c.url().substr(c.url().rfind(':') + 1)); }

// The serving kvd's lease epoch (0: not the leader; -1: no answer).
inline int64_t ServingEpoch(const harness::Cluster& c) { return harness::ServingEpoch(PortOf(c)); }

inline bool WaitForLeader(const harness::Cluster& c, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ServingEpoch(c) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// "holder epoch" of the lease row.
inline std::string LeaseRow(harness::PgServer& pg, const std::string& name) {
  auto rows =
      pg.Query("SELECT coalesce(holder, '<free>') || ' ' || epoch FROM baton_lease WHERE name = '" + name + "'");
  return rows.empty() ? "<none>" : rows[0];
}

// The epochs stamped in the WAL, in log order.
inline std::vector<uint64_t> WalEpochs(const std::string& data_dir) {
  std::vector<uint64_t> epochs;
  auto r = kvd::ReplayWal(
      data_dir, {}, kvd::ReplayMode::kReadOnly,
      [&](const kvd::WalRecord& rec) -> Status {
        epochs.push_back(rec.epoch);
        return {};
      },
      nullptr);
  EXPECT_TRUE(r.has_value()) << r.error().message;
  return epochs;
}

// The holder whose interval is still open, per the log ("" if none).
inline std::string CurrentHolder(const std::string& log) {
  for (const auto& i : LeaderIntervals(log)) {
    if (i.open()) return i.holder;
  }
  return "";
}

inline std::vector<std::string> LeaseKvdArgs(harness::PgServer& pg, const std::string& name,
                                             std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"--lease-name", name, "--lease-dsn", pg.dsn()};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

}  // namespace baton::testing
