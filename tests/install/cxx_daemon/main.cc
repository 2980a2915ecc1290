// cxx_daemon: a small HTTP key-value store with an append-only log, built
// outside baton's tree against the installed C++ API only (<baton/daemon.h>,
// find_package(baton), baton::baton) and upgradable in place by `baton
// supervise` / `baton upgrade`. It speaks kvd's HTTP interface.
//
//   cxx_daemon [--listen-name NAME] [--data-dir DIR] [--port PORT] [--build-id ID]
//
// --listen-name: the listener inherited from the supervisor (default http);
// --port: the loopback port to bind when run without a supervisor. Exit
// codes: 0 clean exit, 1 could not start or stop cleanly, 2 bad flags or
// environment.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <baton/daemon.h>

#include "hooks.h"
#include "server.h"
#include "store.h"

namespace {

struct Flags {
  std::string listen_name = "http";
  std::string data_dir;
  int port = -1;
  std::string build_id = "cxx_daemon";
};

int Usage(const std::string& why) {
  std::fprintf(stderr, "cxx_daemon: %s\nusage: cxx_daemon [--listen-name NAME] [--data-dir DIR] [--port PORT] "
                       "[--build-id ID]\n", why.c_str());
  return 2;
}

int Fail(int code, const std::string& what) {
  std::fprintf(stderr, "cxx_daemon: %s\n", what.c_str());
  return code;
}

// A loopback TCP listener of our own, for a run without a supervisor.
int BindLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 1024) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") return Usage("an upgradable key-value store (GET/PUT /kv/<key>, GET /healthz)");
    if (i + 1 >= argc) return Usage(arg + ": unknown flag, or missing its value");
    const std::string value = argv[++i];
    if (arg == "--listen-name") {
      f.listen_name = value;
    } else if (arg == "--data-dir") {
      f.data_dir = value;
    } else if (arg == "--build-id") {
      f.build_id = value;
    } else if (arg == "--port") {
      char* end = nullptr;
      const long p = std::strtol(value.c_str(), &end, 10);
      if (*end != '\0' || p < 0 || p > 65535) return Usage("--port " + value + ": not a port");
      f.port = static_cast<int>(p);
    } else {
      return Usage(arg + ": unknown flag");
    }
  }

  // Before any thread: reads and removes the supervisor's environment.
  baton::DaemonOptions options;
  options.build_id = f.build_id;
  options.data_dir = f.data_dir;  // "" = $BATON_DATA_DIR, which the supervisor sets
  // State schema 5: this daemon's kv.log format (no magic, FNV-1a records),
  // unlike kvd's (1), gokvd's and rustkvd's (2), pykvd's (3) and ckvd's (4).
  options.state_schema_min = 5;
  options.state_schema_max = 5;
  auto created = baton::Daemon::Create(std::move(options));
  if (!created) return Fail(2, "baton: " + created.error().message);
  baton::Daemon& daemon = **created;
  const baton::Role role = daemon.role();

  int listen_fd = -1;
  if (role == baton::Role::kStandalone) {
    if (f.port < 0) return Usage("run without a supervisor: --port is required");
    listen_fd = BindLoopback(f.port);
    if (listen_fd < 0) return Fail(1, "listen on 127.0.0.1:" + std::to_string(f.port) + ": " + std::strerror(errno));
  } else {
    auto fd = daemon.Listener(f.listen_name);
    if (!fd) return Fail(2, "listener: " + fd.error().message);
    listen_fd = *fd;
  }

  // SIGTERM/SIGINT (the supervisor stopping the service, or a user): a
  // thread of ours waits for them; the library installs no handlers.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread, so every thread inherits it
  ::signal(SIGPIPE, SIG_IGN);  // and send() uses MSG_NOSIGNAL
  // Detached: it may still wait in sigwait when main returns. The mutex
  // keeps it from touching the Daemon once main has started destroying it.
  static std::mutex daemon_mu;
  static baton::Daemon* live_daemon = &daemon;
  std::thread([stop_signals] {
    int sig = 0;
    while (sigwait(&stop_signals, &sig) == 0) {
      std::lock_guard<std::mutex> lock(daemon_mu);
      if (live_daemon != nullptr) live_daemon->RequestExit(0);
    }
  }).detach();

  const char* role_name = role == baton::Role::kSuccessor ? "successor"
                          : role == baton::Role::kColdStart ? "cold" : "standalone";
  cxxd::Store store(daemon.data_dir());
  cxxd::KvServer server(store, listen_fd, {.role = role_name});
  cxxd::KvHooks hooks(store, server);
  if (auto st = server.Start(); !st) return Fail(1, "server: " + st.error().message);

  // Cold start / standalone: takes the data-dir lock. Successor: Warm and
  // Begin run from here, and we serve once it returns.
  if (auto st = daemon.Start(hooks); !st) {
    std::fprintf(stderr, "cxx_daemon: start: %s\n", st.error().message.c_str());
    std::fflush(nullptr);
    std::_Exit(1);  // a hook may still wait on the library's thread; nothing is ours yet
  }
  if (role != baton::Role::kSuccessor) {
    if (auto st = hooks.StartServing(); !st) {
      server.Stop();
      return Fail(1, st.error().message);
    }
  }

  // After Retire (the successor serves now), SIGTERM, or the supervisor gone.
  int code = daemon.WaitForExit();
  if (auto st = hooks.Shutdown(std::chrono::milliseconds(5000)); !st) {
    code = Fail(code == 0 ? 1 : code, "shutdown: " + st.error().message);
  }
  server.Stop();
  std::fprintf(stderr, "cxx_daemon: exiting with %d at revision %llu\n", code,
               static_cast<unsigned long long>(store.revision()));
  {
    std::lock_guard<std::mutex> lock(daemon_mu);
    live_daemon = nullptr;
  }
  created->reset();
  return code;
}
