// What the UDP listener tests share: a client that keeps datagrams flowing
// to a udp:// listener and checks every one is answered and none refused,
// and readers for where the listener is (baton status) and which socket it
// is (/proc/net/udp).
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tools/harness/cluster.h"

namespace baton::harness {

// Sends "seq=N" datagrams to 127.0.0.1:port from a *connected* UDP socket,
// continuously (every `pace`, at most `window` unanswered at once), and
// reads the answers ("pid=P seq=N"). A connected socket reports an ICMP
// port unreachable as ECONNREFUSED on its next send or receive: that is a
// refused datagram, and must never happen while the supervisor holds the
// port. A datagram unanswered for `lost_after` counts as lost.
class UdpPinger {
 public:
  struct Report {
    uint64_t sent = 0;
    uint64_t answered = 0;
    uint64_t refused = 0;     // ECONNREFUSED seen (ICMP port unreachable)
    uint64_t lost = 0;        // unanswered after lost_after (or at Stop)
    uint64_t other_errors = 0;
    std::set<long> pids;      // the generations that answered
    std::string first_error;
  };

  explicit UdpPinger(int port, int window = 8, std::chrono::milliseconds pace = std::chrono::milliseconds(2),
                     std::chrono::milliseconds lost_after = std::chrono::seconds(20))
      : window_(window), pace_(pace), lost_after_(lost_after) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0;
  }
  ~UdpPinger() {
    if (thread_.joinable()) Stop();
    ::close(fd_);
  }
  bool connected() const { return connected_; }

  void Start() { thread_ = std::thread([this] { Run(); }); }

  // Stops sending, waits (up to lost_after) for the answers still due.
  Report Stop() {
    stop_ = true;
    thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    report_.lost += outstanding_.size();
    outstanding_.clear();
    return report_;
  }

  // Whether `pid` answers a datagram within `timeout`.
  bool WaitForAnswerFrom(long pid, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (report_.pids.count(pid) > 0) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  Report Snapshot() {
    std::lock_guard<std::mutex> lock(mu_);
    return report_;
  }

 private:
  using Clock = std::chrono::steady_clock;

  void Fail(int err, const char* op) {
    std::lock_guard<std::mutex> lock(mu_);
    if (err == ECONNREFUSED) {
      ++report_.refused;
    } else {
      ++report_.other_errors;
    }
    if (report_.first_error.empty()) report_.first_error = std::string(op) + ": " + std::strerror(err);
  }

  void Run() {
    uint64_t seq = 0;
    auto next_send = Clock::now();
    auto draining_until = Clock::time_point::max();
    for (;;) {
      const auto now = Clock::now();
      size_t unanswered = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = outstanding_.begin(); it != outstanding_.end();) {
          if (now - it->second > lost_after_) {
            ++report_.lost;
            it = outstanding_.erase(it);
          } else {
            ++it;
          }
        }
        unanswered = outstanding_.size();
      }
      if (stop_) {
        if (draining_until == Clock::time_point::max()) draining_until = now + lost_after_;
        if (unanswered == 0 || now >= draining_until) return;
      } else if (now >= next_send && unanswered < static_cast<size_t>(window_)) {
        const std::string msg = "seq=" + std::to_string(++seq);
        {
          std::lock_guard<std::mutex> lock(mu_);
          outstanding_[seq] = now;
          ++report_.sent;
        }
        if (::send(fd_, msg.data(), msg.size(), MSG_DONTWAIT) < 0) Fail(errno, "send");
        next_send = now + pace_;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 1) != 1) continue;
      char buf[256];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf) - 1, MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN) Fail(errno, "recv");
        continue;
      }
      buf[n] = '\0';
      long pid = 0;
      unsigned long long got = 0;
      if (std::sscanf(buf, "pid=%ld seq=%llu", &pid, &got) != 2) {
        Fail(EBADMSG, "an answer that is not \"pid=P seq=N\"");
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (outstanding_.erase(got) > 0) ++report_.answered;
      report_.pids.insert(pid);
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  const int window_;
  const std::chrono::milliseconds pace_;
  const std::chrono::milliseconds lost_after_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  Report report_;                              // guarded by mu_
  std::map<uint64_t, Clock::time_point> outstanding_;  // guarded by mu_
};

// One line for a failed expectation.
inline std::string Describe(const UdpPinger::Report& r) {
  return "sent " + std::to_string(r.sent) + ", answered " + std::to_string(r.answered) + ", refused " +
         std::to_string(r.refused) + ", lost " + std::to_string(r.lost) + ", other errors " +
         std::to_string(r.other_errors) + ", generations " + std::to_string(r.pids.size()) +
         (r.first_error.empty() ? "" : ", first error: " + r.first_error);
}

// Every datagram sent was answered: none refused (ICMP port unreachable),
// lost or failed otherwise.
inline void ExpectEveryDatagramAnswered(const UdpPinger::Report& report) {
  EXPECT_EQ(report.refused, 0u) << Describe(report);
  EXPECT_EQ(report.lost, 0u) << Describe(report);
  EXPECT_EQ(report.other_errors, 0u) << Describe(report);
  EXPECT_EQ(report.answered, report.sent) << Describe(report);
}

// A UDP port nobody had bound a moment ago (for a listener a restarted
// supervisor must recognise: port 0 cannot be).
inline int FreeUdpPort() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// The port of listener `name` as `baton status --json` shows it
// ("NAME=udp://127.0.0.1:PORT"); 0 if it is not there.
inline int StatusListenerPort(Cluster& c, const std::string& name, const std::string& scheme) {
  auto s = c.Status();
  if (s.exit_code != 0 || !s.json.is_object() || !s.json.as_object().contains("listeners")) return 0;
  for (const auto& l : s.json.at("listeners").as_array()) {
    const std::string text(l.as_string());
    const std::string prefix = name + "=" + scheme + "://127.0.0.1:";
    if (text.rfind(prefix, 0) == 0) return std::stoi(text.substr(prefix.size()));
  }
  return 0;
}

// The inodes of the UDP sockets bound to local port `port`, from
// /proc/net/udp (the socket itself, whoever holds it).
inline std::set<unsigned long> UdpInodes(int port) {
  std::set<unsigned long> out;
  std::ifstream in("/proc/net/udp");
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, st, queues, timer, retr, uid, timeout;
    unsigned long inode = 0;
    if (!(f >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode)) continue;
    const auto colon = local.find(':');
    if (colon == std::string::npos) continue;
    if (std::stoi(local.substr(colon + 1), nullptr, 16) == port) out.insert(inode);
  }
  return out;
}

// Whether process `pid` holds the socket of inode `inode` (a link
// "socket:[inode]" in /proc/pid/fd).
inline bool HoldsSocket(pid_t pid, unsigned long inode) {
  const std::string want = "socket:[" + std::to_string(inode) + "]";
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (int fd = 0; fd < 4096; ++fd) {
    char target[128] = {0};
    const std::string link = dir + "/" + std::to_string(fd);
    const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
    if (n > 0 && want == target) return true;
  }
  return false;
}

}  // namespace baton::harness
