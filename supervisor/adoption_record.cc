#include "supervisor/adoption_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace baton::supervisor {

std::string AdoptionRecordPath(const std::string& runtime_dir) { return runtime_dir + "/supervisor.journal"; }

Result<std::optional<AdoptionRecord>> ReadAdoptionRecord(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return std::optional<AdoptionRecord>{};
    return ErrnoError(fmt::format("journal {}", path), errno);
  }
  AdoptionRecord state;
  std::string line;
  int n = 0;
  bool have_supervisor = false;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    std::istringstream words(line);
    std::string kind;
    RecordedProcess e;
    words >> kind >> e.pid >> e.start_time;
    if (kind == "child") words >> e.role;
    if (!words || e.pid <= 0 || (kind != "supervisor" && kind != "child")) {
      return Error(Errc::kInvalidArgument, fmt::format("journal {} line {}: malformed: '{}'", path, n, line));
    }
    if (kind == "supervisor") {
      state.supervisor = e;
      have_supervisor = true;
    } else {
      state.children.push_back(std::move(e));
    }
  }
  if (!have_supervisor) return Error(Errc::kInvalidArgument, fmt::format("journal {}: no supervisor line", path));
  return std::optional<AdoptionRecord>{std::move(state)};
}

Status WriteAdoptionRecord(const std::string& path, const AdoptionRecord& state) {
  std::string text = fmt::format("supervisor {} {}\n", state.supervisor.pid, state.supervisor.start_time);
  for (const auto& c : state.children) text += fmt::format("child {} {} {}\n", c.pid, c.start_time, c.role);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(fmt::format("journal {}", tmp), errno);
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t w = ::write(fd, text.data() + off, text.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoError(fmt::format("journal {}: write", tmp), err);
    }
    off += static_cast<size_t>(w);
  }
  // No fsync: the journal guards against a supervisor crash, not a host
  // crash (after a reboot no orphan survives to be adopted).
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError(fmt::format("journal {}: rename", path), errno);
  return {};
}

namespace {
// Fields of /proc/<pid>/stat after the command name (which may hold spaces
// and parentheses, so split at the last ')'): state is [0], starttime [19].
Result<std::vector<std::string>> StatFields(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!in || !std::getline(in, text)) return Error(Errc::kNotFound, fmt::format("no process {}", pid));
  const auto close = text.rfind(')');
  if (close == std::string::npos) return Error(Errc::kInternal, fmt::format("/proc/{}/stat: unexpected format", pid));
  std::istringstream words(text.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string w; words >> w;) fields.push_back(w);
  if (fields.size() < 20) return Error(Errc::kInternal, fmt::format("/proc/{}/stat: too few fields", pid));
  return fields;
}
}  // namespace

Result<uint64_t> ProcessStartTime(pid_t pid) {
  auto fields = StatFields(pid);
  if (!fields) return fields.error();
  return std::stoull((*fields)[19]);
}

bool StillRunning(const RecordedProcess& e) {
  auto fields = StatFields(e.pid);
  if (!fields) return false;
  return (*fields)[0] != "Z" && std::stoull((*fields)[19]) == e.start_time;
}

Result<RecordedProcess> EntryFor(pid_t pid, std::string role) {
  auto t = ProcessStartTime(pid);
  if (!t) return t.error();
  return RecordedProcess{pid, *t, std::move(role)};
}

}  // namespace baton::supervisor
