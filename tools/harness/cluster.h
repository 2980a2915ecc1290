// A real `baton supervise` running kvd, baton-load against it, and `baton
// upgrade` / `baton status` calls, all as real processes in a private temp
// dir, for the integration tests, the demo and the benchmarks.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "tools/harness/subprocess.h"

namespace baton::harness {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  boost::json::value json;  // stdout parsed, when it is JSON
};

// fork+exec with stdout/stderr to files, in a process group of its own that
// is SIGKILLed if this process dies first (see reaper.h); returns the pid.
pid_t SpawnBackground(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                      const std::string& out_path, const std::string& err_path, bool append = false);
// Waits for `pid`; returns the raw wait status, or -1 on timeout.
int WaitFor(pid_t pid, std::chrono::milliseconds timeout);
int FreePort();
std::string ReadAll(const std::string& path);
int CountFds(pid_t pid);
// Children of `pid` that are zombies.
int CountZombieChildren(pid_t pid);
// `pid` exists and is not a zombie.
bool ProcessRunning(pid_t pid);
// Live (non-zombie) processes in process group `pgid`.
std::vector<pid_t> ProcessesInGroup(pid_t pgid);
// Resident set size of `pid` in KiB, -1 if it is gone.
long RssKib(pid_t pid);

class Cluster {
 public:
  struct Options {
    std::vector<std::string> kvd_args{};        // after the kvd binary
    std::vector<std::string> supervise_args{};  // e.g. --timeout hello=1s
    std::vector<std::string> env{};             // for the supervisor (and so its children)
    std::string binary{};                       // the daemon; "" = kvd
    // When set (e.g. "1m"): the data dir is a tmpfs of this size, mounted in
    // a mount namespace of the supervisor's own (unshare -m; needs root), so
    // a test can fill the disk. The namespace and the tmpfs go away with
    // the last process in it. A restarted supervisor gets a fresh, empty one.
    std::string data_tmpfs_size{};
    // How long Start waits for /healthz (a cold start replays the WAL).
    std::chrono::seconds start_timeout{20};
  };
  explicit Cluster(Options opts);
  // Stops everything it started and removes its temp dir (set
  // BATON_KEEP_DIRS=1 or BATON_KEEP_TEST_DIRS=1 to keep it for a
  // post-mortem).
  ~Cluster();

  // Starts the supervisor and waits until kvd answers /healthz. false on failure.
  bool Start();
  CommandResult Upgrade(const std::string& binary = "", std::vector<std::string> extra = {});
  CommandResult Status();
  // Starts baton-load; FinishLoad ends its load phase (SIGINT), waits for
  // its verification and returns its JSON.
  void StartLoad(int connections, const std::string& duration, bool close_mode = false,
                 double write_ratio = 0.5, std::vector<std::string> extra = {});
  CommandResult FinishLoad();
  // A wrapper script in the temp dir: `#!/bin/sh\n<body>`; returns its path.
  std::string Script(const std::string& name, const std::string& body);
  bool Healthy();
  pid_t supervisor_pid() const { return sup_pid_; }
  pid_t IncumbentPid();
  const std::string& dir() const { return dir_.path(); }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string SupervisorLog() const;
  // Waits until the supervisor's log (which holds its children's stderr
  // too) contains `text`; false on timeout.
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout) const;
  // Sends SIGTERM and waits for the supervisor; returns its wait status.
  int Stop();

  // Supervisor faults. The generations it started stay in its process group
  // (they are cleaned up with the cluster).
  // Waits for the supervisor to exit by itself (e.g. at a crash point); its
  // raw wait status, or -1 on timeout.
  int WaitSupervisorExit(std::chrono::milliseconds timeout);
  // SIGKILLs the supervisor (e.g. a hung one) and waits for it.
  void KillSupervisor();
  // Starts a new supervisor with the same arguments and environment minus
  // BATON_CRASH_AT; true once a generation serves under it: one it started
  // itself (adoption), or the orphan it re-attached to (its log says so).
  bool RestartSupervisor(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Only starts it (keeping BATON_CRASH_AT when asked); false if it could not.
  bool RespawnSupervisor(bool keep_crash_env = false);
  // The socket a generation whose supervisor is gone listens at for the next
  // one (docs/design.md §15), and waiting for it to be there.
  std::string ReattachSocket(pid_t generation) const;
  bool WaitForReattachSocket(pid_t generation, std::chrono::milliseconds timeout) const;
  // Every process group this cluster's supervisors ever had.
  const std::vector<pid_t>& groups() const { return groups_; }

 private:
  Options opts_;
  TempDir dir_;
  int port_ = 0;
  pid_t sup_pid_ = -1;
  pid_t load_pid_ = -1;
  std::vector<pid_t> groups_;
  bool SpawnSupervisor(const std::vector<std::string>& env);
};

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::vector<std::string>& env = {});

}  // namespace baton::harness
