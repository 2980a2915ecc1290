#include "tools/harness/cluster.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/json/src.hpp>  // header-only Boost.JSON, compiled once here

#include "tools/harness/http.h"
#include "tools/harness/reaper.h"
#include "tools/harness/slowdown.h"
#include "tools/harness/subprocess.h"

extern char** environ;

namespace baton::harness {

pid_t SpawnBackground(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                      const std::string& out_path, const std::string& err_path, bool append) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  for (const auto& e : extra_env) env.push_back(e);
  std::vector<char*> envp, args;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> a = argv;
  for (auto& s : a) args.push_back(s.data());
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    // Always O_APPEND: the processes of an earlier supervisor that still
    // write here must not overwrite what a later one appended.
    const int mode = O_APPEND | (append ? 0 : O_TRUNC);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | mode, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | mode, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    // Nothing of the test process leaks into the cluster.
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    ::setpgid(0, 0);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  if (pid > 0) {
    // Also here, so the group exists before we return (whoever runs first).
    ::setpgid(pid, pid);
    KillGroupOnExit(pid);
  }
  return pid;
}

int WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -2;
    if (std::chrono::steady_clock::now() >= end) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int CountFds(pid_t pid) {
  int n = 0;
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

namespace {
// How long baton-load may take to read back every acknowledged write: a
// sanitizer build serves the reads several times slower.
constexpr std::chrono::seconds kVerifyBudget{150 * kSanitizerSlowdown};

struct ProcStat {
  pid_t pid;
  char state;
  pid_t ppid;
  pid_t pgrp;
};
// Every process of the machine as /proc/<pid>/stat describes it.
std::vector<ProcStat> AllProcesses() {
  std::vector<ProcStat> out;
  DIR* d = ::opendir("/proc");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string stat = ReadAll(std::string("/proc/") + e->d_name + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos || close + 4 >= stat.size()) continue;
    std::istringstream rest(stat.substr(close + 4));
    int ppid = 0, pgrp = 0;
    rest >> ppid >> pgrp;
    out.push_back({static_cast<pid_t>(std::atoi(e->d_name)), stat[close + 2], ppid, pgrp});
  }
  ::closedir(d);
  return out;
}
}  // namespace

int CountZombieChildren(pid_t pid) {
  int zombies = 0;
  for (const auto& p : AllProcesses()) zombies += (p.ppid == pid && p.state == 'Z') ? 1 : 0;
  return zombies;
}

bool ProcessRunning(pid_t pid) {
  const std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

std::vector<pid_t> ProcessesInGroup(pid_t pgid) {
  std::vector<pid_t> out;
  for (const auto& p : AllProcesses()) {
    if (p.pgrp == pgid && p.state != 'Z') out.push_back(p.pid);
  }
  return out;
}

long RssKib(pid_t pid) {
  std::istringstream in(ReadAll("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::vector<std::string>& env) {
  RunOptions opts;
  opts.timeout = timeout;
  opts.env = env;
  auto r = RunProgram(argv, opts);
  CommandResult c;
  c.exit_code = r.exited ? r.exit_code : (r.timed_out ? -1 : 128 + r.signal);
  c.out = r.out;
  c.err = r.err;
  boost::system::error_code ec;
  auto first = c.out.find('{');
  if (first != std::string::npos) c.json = boost::json::parse(c.out.substr(first), ec);
  if (ec) c.json = nullptr;
  return c;
}

Cluster::Cluster(Options opts) : opts_(std::move(opts)), dir_("cl") {
  ::mkdir((dir() + "/data").c_str(), 0755);
  port_ = FreePort();
}

Cluster::~Cluster() {
  if (load_pid_ > 0) {
    ::kill(load_pid_, SIGKILL);
    WaitFor(load_pid_, std::chrono::seconds(5));
    ForgetGroup(load_pid_);
  }
  if (sup_pid_ > 0) Stop();
  // Anything left in the clusters' process groups is a leak of ours (or an
  // orphan of a killed supervisor); end it.
  for (pid_t g : groups_) {
    ::kill(-g, SIGKILL);
    ForgetGroup(g);
  }
  // The data dirs can hold many MB of WAL; keep them only when asked (dir_
  // removes itself after this, once everything above is dead).
  if (std::getenv("BATON_KEEP_DIRS") != nullptr) dir_.Keep();
}

std::string Cluster::SupervisorLog() const { return ReadAll(dir() + "/supervise.err"); }

bool Cluster::WaitForLog(const std::string& text, std::chrono::milliseconds timeout) const {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (SupervisorLog().find(text) != std::string::npos) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool Cluster::Start() {
  if (!SpawnSupervisor(opts_.env)) return false;
  const auto end = std::chrono::steady_clock::now() + opts_.start_timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (Healthy()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool Cluster::SpawnSupervisor(const std::vector<std::string>& env) {
  std::vector<std::string> argv;
  if (!opts_.data_tmpfs_size.empty()) {
    // unshare and sh exec in place: the pid stays the supervisor's.
    argv = {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
            "mount -t tmpfs -o size=\"$1\" baton-data \"$2\" && shift 2 && exec \"$@\"", "sh",
            opts_.data_tmpfs_size, dir() + "/data"};
  }
  argv.insert(argv.end(), {BinPath("baton"), "supervise", "--listen", "http=tcp://127.0.0.1:" + std::to_string(port_),
                           "--data-dir", dir() + "/data", "--runtime-dir", dir() + "/run"});
  if (kSanitizerSlowdown > 1) {
    // A sanitizer build starts every process several times slower (TSan
    // maps its shadow memory before main), and on a loaded machine a
    // successor linked with libpq missed the 5 s Hello deadline meant for
    // plain builds. A test's own --timeout hello=... comes later and wins.
    argv.insert(argv.end(), {"--timeout", "hello=" + std::to_string(5 * kSanitizerSlowdown) + "s"});
  }
  for (const auto& a : opts_.supervise_args) argv.push_back(a);
  argv.push_back("--");
  argv.push_back(opts_.binary.empty() ? BinPath("kvd") : opts_.binary);
  for (const auto& a : opts_.kvd_args) argv.push_back(a);
  // Appends, so the log of a supervisor that crashed stays readable.
  sup_pid_ = SpawnBackground(argv, env, dir() + "/supervise.out", dir() + "/supervise.err", !groups_.empty());
  if (sup_pid_ > 0) groups_.push_back(sup_pid_);
  return sup_pid_ > 0;
}

int Cluster::WaitSupervisorExit(std::chrono::milliseconds timeout) {
  const int status = WaitFor(sup_pid_, timeout);
  if (status != -1) sup_pid_ = -1;
  return status;
}

void Cluster::KillSupervisor() {
  if (sup_pid_ <= 0) return;
  ::kill(sup_pid_, SIGKILL);
  WaitFor(sup_pid_, std::chrono::seconds(10));
  sup_pid_ = -1;
}

bool Cluster::RespawnSupervisor(bool keep_crash_env) {
  std::vector<std::string> env;
  for (const auto& e : opts_.env) {
    if (keep_crash_env || (e.rfind("BATON_CRASH_AT=", 0) != 0 && e.rfind("BATON_CRASH_ACTION=", 0) != 0)) {
      env.push_back(e);
    }
  }
  return SpawnSupervisor(env);
}

bool Cluster::RestartSupervisor(std::chrono::milliseconds timeout) {
  const size_t log_before = SupervisorLog().size();
  if (!RespawnSupervisor()) return false;
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    const pid_t serving = IncumbentPid();
    // Serving, and by a child of the new supervisor or by the orphan it
    // re-attached to.
    const bool ours = serving > 0 && (::getpgid(serving) == sup_pid_ ||
                                      SupervisorLog().find("\"event\":\"supervisor.reattach\"", log_before) !=
                                          std::string::npos);
    if (ours && Healthy()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string Cluster::ReattachSocket(pid_t generation) const {
  return dir() + "/run/gen-" + std::to_string(generation) + ".sock";
}

bool Cluster::WaitForReattachSocket(pid_t generation, std::chrono::milliseconds timeout) const {
  const auto end = std::chrono::steady_clock::now() + timeout;
  struct stat st {};
  while (::stat(ReattachSocket(generation).c_str(), &st) != 0) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool Cluster::Healthy() {
  return HttpStatus(HttpRequest(port_, "GET", "/healthz", "", std::chrono::seconds(2))) == 200;
}

CommandResult Cluster::Upgrade(const std::string& binary, std::vector<std::string> extra) {
  std::vector<std::string> argv = {BinPath("baton"), "upgrade", "--runtime-dir", dir() + "/run", "--json"};
  if (!binary.empty()) {
    argv.push_back("--binary");
    argv.push_back(binary);
  }
  for (auto& e : extra) argv.push_back(std::move(e));
  return RunCommand(argv, std::chrono::seconds(120));
}

CommandResult Cluster::Status() {
  return RunCommand({BinPath("baton"), "status", "--runtime-dir", dir() + "/run", "--json"}, std::chrono::seconds(20));
}

pid_t Cluster::IncumbentPid() {
  auto s = Status();
  if (s.exit_code != 0 || !s.json.is_object()) return -1;
  return static_cast<pid_t>(s.json.at("incumbent_pid").to_number<int64_t>());
}

void Cluster::StartLoad(int connections, const std::string& duration, bool close_mode, double write_ratio,
                        std::vector<std::string> extra) {
  std::vector<std::string> argv = {BinPath("baton-load"), "--target", url(), "--connections",
                                   std::to_string(connections), "--duration", duration, "--json", "--write-ratio",
                                   std::to_string(write_ratio),
                                   // Every acknowledged write is read back afterwards; a long run on a busy
                                   // machine acknowledges many (430k in one 280 s run that took 60 s to
                                   // verify half). Bounded below FinishLoad's wait.
                                   "--verify-timeout", std::to_string(kVerifyBudget.count()) + "s"};
  if (close_mode) argv.push_back("--close");
  for (auto& a : extra) argv.push_back(std::move(a));
  load_pid_ = SpawnBackground(argv, {}, dir() + "/load.json", dir() + "/load.err");
}

CommandResult Cluster::FinishLoad() {
  CommandResult c;
  ::kill(load_pid_, SIGINT);
  const int status = WaitFor(load_pid_, kVerifyBudget + std::chrono::seconds(30));
  if (status != -1) ForgetGroup(load_pid_);
  load_pid_ = -1;
  c.exit_code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  c.out = ReadAll(dir() + "/load.json");
  c.err = ReadAll(dir() + "/load.err");
  boost::system::error_code ec;
  c.json = boost::json::parse(c.out, ec);
  if (ec) c.json = nullptr;
  return c;
}

std::string Cluster::Script(const std::string& name, const std::string& body) {
  const std::string path = dir() + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

int Cluster::Stop() {
  if (sup_pid_ <= 0) return -1;
  ::kill(sup_pid_, SIGTERM);
  int status = WaitFor(sup_pid_, std::chrono::seconds(30));
  if (status == -1) {
    ::kill(-sup_pid_, SIGKILL);
    status = WaitFor(sup_pid_, std::chrono::seconds(5));
  }
  ::kill(-sup_pid_, SIGKILL);  // stragglers in the group, if any
  sup_pid_ = -1;
  return status;
}

}  // namespace baton::harness
