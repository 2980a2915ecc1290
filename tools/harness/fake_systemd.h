// A fake systemd notify socket: a bound AF_UNIX datagram socket that keeps
// every message a service sends to it ($NOTIFY_SOCKET = path()) and every
// fd passed along (FDSTORE=1), for the notify and systemd tests.
//
// Threading: one thread. Owns its socket and the fds it received.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace baton::harness {

class FakeSystemd {
 public:
  // Binds `path` (a socket file in a test's temp dir).
  explicit FakeSystemd(std::string path);
  ~FakeSystemd();  // closes the socket and every fd received
  FakeSystemd(const FakeSystemd&) = delete;
  FakeSystemd& operator=(const FakeSystemd&) = delete;

  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

  // The next datagram within `timeout` (nullopt if none came); it is kept
  // in messages(), its fds in fds().
  std::optional<std::string> Receive(std::chrono::milliseconds timeout);
  // Reads datagrams until one contains `needle` (true) or `timeout` passes;
  // messages already read but not yet matched count first.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout);

  const std::vector<std::string>& messages() const { return messages_; }
  const std::vector<int>& fds() const { return fds_; }
  std::string All() const;  // every message, "[...]" a line

 private:
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::vector<std::string> messages_;
  size_t seen_ = 0;  // messages_ before this have been matched by WaitFor
  std::vector<int> fds_;
};

}  // namespace baton::harness
