// A raw-socket client for kvd's GET /watch (examples/kvd/service.h): it
// reads the chunked response on a thread of its own as fast as it comes,
// and Parse checks its framing and collects the revisions, so a test can
// tell one unbroken response (no close, no terminating chunk) from a
// stream that ended or broke.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

namespace baton::harness {

// What a watch response's bytes say so far (complete chunks only).
struct WatchParse {
  int status = 0;
  bool chunked = false;          // Transfer-Encoding: chunked
  std::vector<uint64_t> revs;    // of every {"rev":…} line, in order
  std::vector<std::string> errors;  // every {"error":…} line
  bool ended = false;            // the terminating chunk arrived
  std::string bad;               // what was malformed ("" = nothing)
  std::string body;              // the whole response after the head (head only: non-chunked)
};

inline WatchParse ParseWatch(const std::string& raw) {
  WatchParse p;
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return p;
  const std::string head = raw.substr(0, head_end);
  if (head.rfind("HTTP/1.1 ", 0) == 0) p.status = std::atoi(head.c_str() + 9);
  p.chunked = head.find("\r\nTransfer-Encoding: chunked") != std::string::npos;
  size_t pos = head_end + 4;
  if (!p.chunked) {
    p.body = raw.substr(pos);
    return p;
  }
  std::string payloads;
  while (true) {
    const auto eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) break;
    size_t size = 0;
    try {
      size = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
    } catch (const std::exception&) {
      p.bad = "bad chunk size at byte " + std::to_string(pos);
      break;
    }
    const size_t data = eol + 2;
    if (raw.size() < data + size + 2) break;  // not complete yet
    if (raw.compare(data + size, 2, "\r\n") != 0) {
      p.bad = "chunk not followed by CRLF at byte " + std::to_string(data + size);
      break;
    }
    if (size == 0) {
      p.ended = true;
      break;
    }
    const std::string chunk = raw.substr(data, size);
    if (chunk.back() != '\n') {
      p.bad = "a chunk that does not end with a complete line at byte " + std::to_string(data);
      break;
    }
    payloads += chunk;
    pos = data + size + 2;
  }
  p.body = payloads;
  size_t start = 0;
  while (start < payloads.size()) {
    const auto nl = payloads.find('\n', start);
    const std::string line = payloads.substr(start, nl - start);
    start = nl + 1;
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) {
      p.bad = "not a JSON object: " + line;
      break;
    }
    const auto& o = v.as_object();
    if (o.contains("rev") && o.contains("key") && o.contains("value")) {
      p.revs.push_back(o.at("rev").to_number<uint64_t>());
    } else if (o.contains("error")) {
      p.errors.push_back(line);
    } else {
      p.bad = "unexpected line: " + line;
      break;
    }
  }
  return p;
}

// "" when `revs` is exactly from, from+1, …, last; otherwise what is wrong.
inline std::string CheckConsecutive(const std::vector<uint64_t>& revs, uint64_t from, uint64_t last) {
  uint64_t want = from;
  for (size_t i = 0; i < revs.size(); ++i, ++want) {
    if (revs[i] != want) {
      return "line " + std::to_string(i) + ": rev " + std::to_string(revs[i]) + ", expected " + std::to_string(want);
    }
  }
  if (want != last + 1) return "the last rev is " + std::to_string(want - 1) + ", expected " + std::to_string(last);
  return "";
}

// One GET /watch on 127.0.0.1:port, read on a thread of its own.
class WatchClient {
 public:
  WatchClient(int port, const std::string& query) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      closed_ = true;
      return;
    }
    const std::string req = "GET /watch" + query + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) closed_ = true;
    timeval tv{0, 200000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    reader_ = std::thread([this] { Read(); });
  }
  ~WatchClient() {
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  WatchClient(const WatchClient&) = delete;
  WatchClient& operator=(const WatchClient&) = delete;

  std::string raw() const {
    std::lock_guard lock(mu_);
    return raw_;
  }
  WatchParse Parse() const { return ParseWatch(raw()); }
  // The server closed the connection (or reset it).
  bool closed() const { return closed_; }
  // Waits (up to `bound`) until `cond(Parse())` holds; returns the last parse.
  template <class F>
  WatchParse WaitFor(F cond, std::chrono::seconds bound = std::chrono::seconds(30)) const {
    const auto until = std::chrono::steady_clock::now() + bound;
    WatchParse p = Parse();
    while (!cond(p) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      p = Parse();
    }
    return p;
  }

 private:
  void Read() {
    char buf[16384];
    while (!stop_) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        std::lock_guard lock(mu_);
        raw_.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        closed_ = true;
        return;
      }
    }
  }

  int fd_ = -1;
  std::thread reader_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> closed_{false};
  mutable std::mutex mu_;
  std::string raw_;
};

}  // namespace baton::harness
