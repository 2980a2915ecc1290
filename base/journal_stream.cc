#include "base/journal_stream.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace baton {
namespace {

constexpr const char* kJournalStdoutSocket = "/run/systemd/journal/stdout";

bool SameFile(int a, int b) {
  struct stat sa {}, sb {};
  if (::fstat(a, &sa) != 0 || ::fstat(b, &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace

bool IsJournalStream(int fd) {
  const char* e = std::getenv("JOURNAL_STREAM");
  if (e == nullptr || *e == '\0') return false;
  uintmax_t dev = 0, ino = 0;
  if (std::sscanf(e, "%" SCNuMAX ":%" SCNuMAX, &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<uintmax_t>(st.st_dev) == dev && static_cast<uintmax_t>(st.st_ino) == ino;
}

int JournalPriority(Level l) {
  switch (l) {
    case Level::kDebug: return 7;
    case Level::kInfo: return 6;
    case Level::kWarn: return 4;
    case Level::kError: return 3;
  }
  return 6;
}

Status ReopenStderrInJournal(std::string_view identifier) {
  if (!IsJournalStream(STDERR_FILENO)) return {};
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("journal stream: socket", errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, kJournalStdoutSocket, sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError(fmt::format("journal stream: connect {}", kJournalStdoutSocket), err);
  }
  ::shutdown(fd, SHUT_RD);
  // The header sd_journal_stream_fd(3) sends: identifier, unit id (empty:
  // journald finds the unit from our cgroup), default priority, level
  // prefix on, then no forwarding to syslog, kmsg or the console.
  const std::string header = fmt::format("{}\n\n6\n1\n0\n0\n0\n", identifier);
  if (::write(fd, header.data(), header.size()) != static_cast<ssize_t>(header.size())) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("journal stream: header", err);
  }
  const bool stdout_too = SameFile(STDOUT_FILENO, STDERR_FILENO);
  std::fflush(stderr);
  std::fflush(stdout);
  if (::dup2(fd, STDERR_FILENO) < 0 || (stdout_too && ::dup2(fd, STDOUT_FILENO) < 0)) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("journal stream: dup2", err);
  }
  ::close(fd);
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) == 0) {
    const std::string value = fmt::format("{}:{}", static_cast<uintmax_t>(st.st_dev), static_cast<uintmax_t>(st.st_ino));
    ::setenv("JOURNAL_STREAM", value.c_str(), 1);
  }
  return {};
}

}  // namespace baton
