// udp_echo_daemon: the smallest daemon that serves a udp:// listener through
// the public C++ API (include/baton/ only), for the UDP integration tests.
//
//   listener "udp"   every datagram is answered to its sender with
//                    "pid=<pid> " + the datagram
//   listener "http"  GET anything: 200 "pid=<pid>", then close (the test
//                    harness waits for it)
//
// Serves from Start() (cold start) or Begin (successor) until Drain or
// Retire, and again after Resume. No state: Seal reports revision 0. It
// needs a supervisor (exits 2 standalone). SIGTERM/SIGINT: exit 0.
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "baton/daemon.h"

namespace {

// Whether this generation serves now. Every answer is given holding `mu`
// and only while `serving`: once Drain has taken `mu` after clearing it,
// no datagram is read by this generation any more.
struct Gate {
  std::mutex mu;
  bool serving = false;  // guarded by mu
  std::atomic<bool> stop{false};
  void Set(bool on) {
    std::lock_guard<std::mutex> lock(mu);
    serving = on;
  }
};

class EchoHooks final : public baton::Hooks {
 public:
  explicit EchoHooks(Gate& gate) : gate_(gate) {}
  baton::Status Warm() override { return {}; }
  baton::Status Drain(Deadline) override {
    gate_.Set(false);
    return {};
  }
  baton::Result<baton::SealReport> Seal() override { return baton::SealReport{}; }
  baton::Status Begin(const baton::SealedState&) override {
    gate_.Set(true);
    return {};
  }
  baton::Status Resume(bool) override {
    gate_.Set(true);
    return {};
  }
  void Retire() override { gate_.Set(false); }

 private:
  Gate& gate_;
};

// Waits up to 50 ms for `fd` to be readable.
bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 50) == 1 && (p.revents & POLLIN) != 0;
}

void ServeUdp(Gate& gate, int fd) {
  const std::string prefix = "pid=" + std::to_string(::getpid()) + " ";
  while (!gate.stop) {
    if (!Readable(fd)) continue;
    std::lock_guard<std::mutex> lock(gate.mu);
    if (!gate.serving) continue;
    for (;;) {
      char in[2048];
      sockaddr_storage from{};
      socklen_t len = sizeof(from);
      // MSG_DONTWAIT, not O_NONBLOCK: the socket's file flags are shared
      // with the supervisor and the other generation.
      const ssize_t n = ::recvfrom(fd, in, sizeof(in), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) break;
      const std::string out = prefix + std::string(in, static_cast<size_t>(n));
      (void)::sendto(fd, out.data(), out.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
}

void ServeHttp(Gate& gate, int fd) {
  const std::string body = "pid=" + std::to_string(::getpid());
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  while (!gate.stop) {
    if (!Readable(fd)) continue;
    std::lock_guard<std::mutex> lock(gate.mu);
    if (!gate.serving) continue;
    const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) continue;
    // The request is small and comes at once: wait for its end briefly.
    std::string req;
    for (int i = 0; i < 40 && req.find("\r\n\r\n") == std::string::npos; ++i) {
      if (!Readable(c)) continue;
      char buf[1024];
      const ssize_t n = ::read(c, buf, sizeof(buf));
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    (void)::send(c, response.data(), response.size(), MSG_NOSIGNAL);
    ::close(c);
  }
}

}  // namespace

int main() {
  // Blocked before any thread starts (the library's too), taken by sigwait.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::signal(SIGHUP, SIG_IGN);

  auto daemon = baton::Daemon::Create({.build_id = "udp-echo"});
  if (!daemon) {
    std::fprintf(stderr, "udp_echo_daemon: %s\n", daemon.error().message.c_str());
    return 2;
  }
  auto& d = **daemon;
  if (d.role() == baton::Role::kStandalone) {
    std::fprintf(stderr, "udp_echo_daemon: needs a supervisor (baton supervise)\n");
    return 2;
  }
  auto udp = d.Listener("udp");
  auto http = d.Listener("http");
  if (!udp || !http) {
    std::fprintf(stderr, "udp_echo_daemon: needs the listeners udp and http\n");
    return 2;
  }
  std::thread([&d, sigs] {
    int sig = 0;
    if (sigwait(&sigs, &sig) == 0) d.RequestExit(0);
  }).detach();

  Gate gate;
  EchoHooks hooks(gate);
  std::thread udp_thread(ServeUdp, std::ref(gate), *udp);
  std::thread http_thread(ServeHttp, std::ref(gate), *http);
  int code = 1;
  if (auto st = d.Start(hooks); !st) {
    std::fprintf(stderr, "udp_echo_daemon: start: %s\n", st.error().message.c_str());
  } else {
    gate.Set(true);
    code = d.WaitForExit();
  }
  gate.stop = true;
  udp_thread.join();
  http_thread.join();
  return code;
}
