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
#include <climits>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "examples/kvd/wal.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/cluster.h"
#include "tools/harness/pg_server.h"

namespace baton::testing {

struct LeaderInterval {
  std::string holder;
  uint64_t epoch = 0;
  int64_t start_us = 0;
  int64_t end_us = LLONG_MAX;  // still leader
  bool open() const { return end_us == LLONG_MAX; }
};

// Every leader interval in a log of JSON lines, ordered by start.
inline std::vector<LeaderInterval> LeaderIntervals(const std::string& log) {
  std::vector<LeaderInterval> out;
  std::map<std::string, size_t> open;  // holder → index in out
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"lease.leader_") == std::string::npos) continue;
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    const std::string event(o.at("event").as_string());
    const std::string holder(o.at("holder").as_string());
    const int64_t at = o.at("mono_us").to_number<int64_t>();
    if (event == "lease.leader_start") {
      open[holder] = out.size();
      out.push_back({holder, o.at("epoch").to_number<uint64_t>(), at});
    } else if (event == "lease.leader_end" && open.count(holder)) {
      out[open[holder]].end_us = at;
      open.erase(holder);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.start_us < b.start_us; });
  return out;
}

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

// GET `path` from 127.0.0.1:`port`; the body ("" on failure).
inline std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string resp;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if (::write(fd, req.data(), req.size()) > 0) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const auto body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

inline int PortOf(const harness::Cluster& c) { return std::stoi(c.url().substr(c.url().rfind(':') + 1)); }

// The serving kvd's lease epoch (0: not the leader; -1: no answer).
inline int64_t ServingEpoch(const harness::Cluster& c) {
  const std::string body = HttpGet(PortOf(c), "/healthz");
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("lease_epoch")) return -1;
  return v.as_object().at("lease_epoch").to_number<int64_t>();
}

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
  auto rows = pg.Query("SELECT coalesce(holder, '<free>') || ' ' || epoch FROM baton_lease WHERE name = '" + name + "'");
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
