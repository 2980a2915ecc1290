// A Unix-socket proxy in front of a PostgreSQL server that, once a client
// sends a message containing a marker (the first time only), swallows
// everything the server sends back on that connection: the statement commits, its answer never
// arrives, so the client sees an unknown outcome. For lease tests.
//
// Threads: an accept thread plus one pump thread per connection, all
// joined by the destructor.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace baton::testing {

class ReplyDroppingProxy {
 public:
  // Listens on `dir`/.s.PGSQL.5432 and forwards to `target_dir`/.s.PGSQL.5432.
  ReplyDroppingProxy(const std::string& dir, const std::string& target_dir, std::string marker)
      : target_(target_dir + "/.s.PGSQL.5432"), marker_(std::move(marker)) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_un a = Address(dir + "/.s.PGSQL.5432");
    ::unlink(a.sun_path);
    ok_ = ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0 && ::listen(listen_fd_, 16) == 0;
    accept_ = std::thread([this] { AcceptLoop(); });
  }
  ~ReplyDroppingProxy() {
    stop_ = true;
    accept_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : pumps_) t.join();
    ::close(listen_fd_);
  }
  bool ok() const { return ok_; }
  // How many replies were swallowed (bytes from the server after the marker).
  size_t dropped() const { return dropped_; }

 private:
  static sockaddr_un Address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof(a.sun_path) - 1);
    return a;
  }
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      const int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const sockaddr_un a = Address(target_);
      if (::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0) {
        ::close(c);
        ::close(s);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      pumps_.emplace_back([this, c, s] { Pump(c, s); });
    }
  }
  void Pump(int client, int server) {
    bool dropping = false;
    std::string seen;
    char buf[8192];
    while (!stop_) {
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(p, 2, 20) <= 0) continue;
      if (p[0].revents != 0) {
        const ssize_t n = ::read(client, buf, sizeof(buf));
        if (n <= 0) break;
        seen.append(buf, static_cast<size_t>(n));
        if (!dropping && seen.find(marker_) != std::string::npos) dropping = armed_.exchange(false);
        if (seen.size() > 65536) seen.erase(0, seen.size() - 4096);
        if (::write(server, buf, static_cast<size_t>(n)) != n) break;
      }
      if (p[1].revents != 0) {
        const ssize_t n = ::read(server, buf, sizeof(buf));
        if (n <= 0) break;
        if (dropping) {
          dropped_ += static_cast<size_t>(n);
        } else if (::write(client, buf, static_cast<size_t>(n)) != n) {
          break;
        }
      }
    }
    ::close(client);
    ::close(server);
  }

  std::string target_;
  std::string marker_;
  int listen_fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> armed_{true};  // only the first statement with the marker loses its answer
  std::atomic<size_t> dropped_{0};
  std::thread accept_;
  std::mutex mu_;
  std::vector<std::thread> pumps_;
};

}  // namespace baton::testing
