// Helpers for the operator-surface tests: config files, the `baton` binary,
// a pty, a raw HTTP GET (the fake systemd is tools/harness/fake_systemd.h).
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/integration_util.h"
#include "tools/harness/fake_systemd.h"
#include "tools/harness/http.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {

inline CommandResult Baton(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  args.insert(args.begin(), BinPath("baton"));
  return RunCommand(args, timeout);
}

inline std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.push_back(l);
  }
  return out;
}

// Runs argv with stdout and stderr on a pseudo-terminal; returns what the
// terminal showed and the exit code.
inline CommandResult RunOnPty(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  CommandResult r;
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) return r;
  const std::string slave_path = ::ptsname(master);
  std::vector<std::string> a = argv;
  std::vector<char*> args;
  for (auto& s : a) args.push_back(s.data());
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    int slave = ::open(slave_path.c_str(), O_RDWR);
    if (slave < 0) ::_exit(126);
    ::dup2(slave, 1);
    ::dup2(slave, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  const auto end = std::chrono::steady_clock::now() + timeout;
  int status = -1;
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char buf[4096];
      ssize_t n = ::read(master, buf, sizeof(buf));
      if (n > 0) r.out.append(buf, static_cast<size_t>(n));
    }
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      status = st;
      // Drain what is left.
      for (;;) {
        pollfd q{master, POLLIN, 0};
        if (::poll(&q, 1, 100) <= 0) break;
        char buf[4096];
        ssize_t n = ::read(master, buf, sizeof(buf));
        if (n <= 0) break;
        r.out.append(buf, static_cast<size_t>(n));
      }
      break;
    }
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      break;
    }
  }
  ::close(master);
  r.exit_code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string ProcEnviron(pid_t pid) {
  std::string env = ReadAll("/proc/" + std::to_string(pid) + "/environ");
  for (char& c : env) {
    if (c == '\0') c = '\n';
  }
  return env;
}

}  // namespace baton::harness
