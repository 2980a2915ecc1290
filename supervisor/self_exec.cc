#include "supervisor/self_exec.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include <fmt/format.h>

#include "supervisor/self_state.pb.h"

extern char** environ;

namespace baton::supervisor {
namespace {

constexpr unsigned kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
constexpr int kReattachWaitSteps = 500;  // x 20 ms: the watchdog's bound on the socket's appearance

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

bool IsResumeFlag(const std::string& a) { return a == kResumeStateFlag || a == kResumePreviousFlag; }

}  // namespace

StateFormats SelfStateVersionsRead() {
  const char* v = std::getenv("BATON_TEST_SELF_STATE_VERSION");
  if (v != nullptr && *v != '\0') {
    const auto n = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    return {n, n};
  }
  return {kSelfStateVersionMin, kSelfStateVersion};
}

std::string OwnBinaryPath() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() && path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
    path.resize(path.size() - kDeleted.size());
  }
  return path;
}

Result<std::vector<std::string>> OwnArgv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (all.empty()) return Error(Errc::kFailedPrecondition, "cannot read /proc/self/cmdline");
  std::vector<std::string> argv;
  size_t at = 0;
  while (at < all.size()) {
    const size_t end = all.find('\0', at);
    argv.push_back(all.substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  // The resume flags (each with its value) come before any "--".
  std::vector<std::string> out;
  bool after_dashes = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (!after_dashes && IsResumeFlag(argv[i])) {
      ++i;
      continue;
    }
    after_dashes = after_dashes || argv[i] == "--";
    out.push_back(argv[i]);
  }
  return out;
}

Result<std::vector<std::string>> ResumeArgv(std::vector<std::string> argv, int state_fd, int previous_fd) {
  for (size_t i = 1; i < argv.size() && argv[i] != "--"; ++i) {
    if (argv[i] != "supervise") continue;
    argv.insert(argv.begin() + static_cast<long>(i) + 1,
                {kResumeStateFlag, std::to_string(state_fd), kResumePreviousFlag, std::to_string(previous_fd)});
    return argv;
  }
  return Error(Errc::kFailedPrecondition, "this process was not started as `baton supervise`: cannot re-execute it");
}

std::vector<std::string> CleanEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view s(*e);
    bool drop = false;
    for (std::string_view v : {"BATON_CRASH_AT=", "BATON_TEST_SELF_STATE_VERSION="}) drop = drop || s.rfind(v, 0) == 0;
    drop = drop || s.rfind(std::string(kFallbackEnv) + "=", 0) == 0;
    if (!drop) env.emplace_back(s);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

sigset_t SupervisorSignals() {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&s, sig);
  return s;
}

Status SetCloexec(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return ErrnoError(fmt::format("fcntl(F_GETFD, {})", fd), errno);
  if (::fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC)) != 0) {
    return ErrnoError(fmt::format("fcntl(F_SETFD, {})", fd), errno);
  }
  return {};
}

Result<OwnedFd> SealedMemfd(const std::string& bytes) {
  OwnedFd fd(::memfd_create("baton-self-state", MFD_ALLOW_SEALING));
  if (fd.get() < 0) return ErrnoError("memfd_create", errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError("write(memfd)", errno);
    done += static_cast<size_t>(n);
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, kSeals) != 0) return ErrnoError("F_ADD_SEALS", errno);
  return fd;
}

Result<std::string> ReadSealedMemfd(int fd) {
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return ErrnoError(fmt::format("state fd {}: F_GET_SEALS (not a memfd?)", fd), errno);
  if ((static_cast<unsigned>(seals) & kSeals) != kSeals) {
    return Error(Errc::kFailedPrecondition, fmt::format("state fd {}: not sealed", fd));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError(fmt::format("state fd {}: fstat", fd), errno);
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  if (::pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
    return ErrnoError(fmt::format("state fd {}: pread", fd), errno);
  }
  return bytes;
}

Result<pid_t> ForkWatchdog(const WatchdogPlan& plan) {
  // Everything the child needs is prepared here: after fork it only makes
  // async-signal-safe calls.
  auto argv = CStrings(plan.argv);
  auto env = CStrings(plan.env);
  const char* socket_path = plan.reattach_socket.c_str();
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork (self-upgrade watchdog)", errno);
  if (pid > 0) return pid;
  // The watchdog. The supervisor's signal handlers are not ours.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::close(plan.resumed_write);
  char c = 0;
  ssize_t n;
  do {
    n = ::read(plan.resumed_read, &c, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1 && c == 'R') ::_exit(0);
  // The image died before it resumed: let go of everything it held so the
  // serving generation's channel closes, then start the previous binary.
  for (int fd = 3; fd < 65536; ++fd) {
    if (fd != plan.previous_fd) ::close(fd);
  }
  // (A generation of protocol notify never listens: no socket to wait for.)
  struct stat st {};
  for (int i = 0; i < kReattachWaitSteps && *socket_path != '\0' && ::stat(socket_path, &st) != 0; ++i) {
    const timespec step{0, 20 * 1000 * 1000};
    ::nanosleep(&step, nullptr);
  }
  ::syscall(SYS_execveat, plan.previous_fd, "", argv.data(), env.data(), AT_EMPTY_PATH);
  ::_exit(127);
}

Error ExecImage(const std::string& path, int fd, const std::vector<std::string>& argv,
                const std::vector<std::string>& env) {
  auto a = CStrings(argv);
  auto e = CStrings(env);
  if (fd >= 0) {
    ::syscall(SYS_execveat, fd, "", a.data(), e.data(), AT_EMPTY_PATH);
  } else {
    ::execve(path.c_str(), a.data(), e.data());
  }
  return ErrnoError(fmt::format("exec {}", fd >= 0 ? fmt::format("fd {} ({})", fd, path) : path), errno);
}

Error ReexecPrevious(int state_fd, int previous_fd, const std::string& why, const std::vector<std::string>& extra) {
  if (std::getenv(kFallbackEnv) != nullptr) {
    return Error(Errc::kFailedPrecondition, fmt::format("the previous binary cannot resume either: {}", why));
  }
  if (state_fd < 0 || previous_fd < 0) return Error(Errc::kFailedPrecondition, "no previous binary handed over");
  // The previous image's own command line when the state still says it
  // (the new binary may have been started through a wrapper that changed
  // it), else ours.
  auto own = OwnArgv();
  if (auto bytes = ReadSealedMemfd(state_fd); bytes) {
    selfstate::v1::SelfState s;
    if (s.ParseFromString(*bytes) && s.argv_size() > 0) own = std::vector<std::string>(s.argv().begin(), s.argv().end());
  }
  if (!own) return own.error();
  auto argv = ResumeArgv(*own, state_fd, previous_fd);
  if (!argv) return argv.error();
  std::string reason = why;
  for (char& c : reason) c = c == '\n' ? ' ' : c;
  std::vector<std::string> env = extra;
  env.push_back(std::string(kFallbackEnv) + "=" + reason);
  return ExecImage("previous binary", previous_fd, *argv, CleanEnvironment(env));
}

std::optional<std::pair<int, int>> ResumeFdsIn(int argc, char** argv) {
  int state = -1, previous = -1;
  for (int i = 1; i + 1 < argc && std::string_view(argv[i]) != "--"; ++i) {
    if (std::string_view(argv[i]) == kResumeStateFlag) state = std::atoi(argv[i + 1]);
    if (std::string_view(argv[i]) == kResumePreviousFlag) previous = std::atoi(argv[i + 1]);
  }
  if (state < 0 || previous < 0) return std::nullopt;
  return std::make_pair(state, previous);
}

std::vector<std::string> ActivationEnvironment() {
  std::vector<std::string> out;
  for (const char* name : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) {
    if (const char* v = std::getenv(name); v != nullptr) out.push_back(std::string(name) + "=" + v);
  }
  return out;
}

std::string FormatSelfCheck(const SelfCheck& c) {
  return fmt::format("baton-self-check state_version={} state_min={} protocol={}-{} version={}\n", c.state_version,
                     c.state_min, c.protocol_min, c.protocol_max, c.version);
}

Result<SelfCheck> ParseSelfCheck(const std::string& out) {
  const size_t at = out.find("baton-self-check ");
  if (at == std::string::npos) {
    return Error(Errc::kFailedPrecondition,
                 fmt::format("it printed no self-check line (not a baton that can be re-executed in place?): {:.200}",
                             out));
  }
  std::istringstream line(out.substr(at, out.find('\n', at) - at));
  std::string word;
  SelfCheck c;
  bool state = false, protocol = false, state_min = false;
  while (line >> word) {
    if (word.rfind("state_version=", 0) == 0) {
      c.state_version = static_cast<uint32_t>(std::strtoul(word.c_str() + 14, nullptr, 10));
      state = true;
    } else if (word.rfind("state_min=", 0) == 0) {
      c.state_min = static_cast<uint32_t>(std::strtoul(word.c_str() + 10, nullptr, 10));
      state_min = true;
    } else if (word.rfind("protocol=", 0) == 0) {
      protocol = std::sscanf(word.c_str() + 9, "%u-%u", &c.protocol_min, &c.protocol_max) == 2;
    } else if (word.rfind("version=", 0) == 0) {
      c.version = word.substr(8);
    }
  }
  if (!state || !protocol || (state_min && c.state_min > c.state_version)) {
    return Error(Errc::kFailedPrecondition, fmt::format("bad self-check line: {:.200}", out));
  }
  if (!state_min) c.state_min = c.state_version;
  return c;
}

}  // namespace baton::supervisor
