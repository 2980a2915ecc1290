// `baton supervise` running capi_probe (tests/unit/capi/capi_probe.c), a C
// daemon using only baton.h, in a temporary directory: upgrades, the
// probes' trace and their knobs. The SDKs' handover probes
// (tests/sdk/handover_test.cc) follow the same conventions and run here too.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <utility>

#include "tools/harness/cluster.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {

using std::chrono::milliseconds;
using std::chrono::seconds;

class ProbeCluster {
 public:
  // `daemon`: the executable the supervisor runs, with the directory as its
  // only argument.
  explicit ProbeCluster(std::string daemon = HelperPath("capi_probe")) : dir_("capi"), daemon_(std::move(daemon)) {
    ::mkdir((dir() + "/data").c_str(), 0755);
  }
  ~ProbeCluster() {
    if (pid_ > 0) Stop();
  }

  const std::string& dir() const { return dir_.path(); }
  pid_t supervisor_pid() const { return pid_; }

  // Starts the supervisor; true once a first generation serves.
  bool Start() {
    pid_ = SpawnBackground(
        {BinPath("baton"), "supervise", "--listen", "http=tcp://127.0.0.1:" + std::to_string(FreePort()), "--data-dir",
         dir() + "/data", "--runtime-dir", dir() + "/run", "--", daemon_, dir()},
        {}, dir() + "/supervise.out", dir() + "/supervise.err");
    return WaitForTrace(std::regex(R"((\d+) serving)"), seconds(20));
  }

  CommandResult Upgrade() {
    return RunCommand({BinPath("baton"), "upgrade", "--runtime-dir", dir() + "/run", "--json"}, seconds(60));
  }

  // SIGTERM to the supervisor; its wait status.
  int Stop() {
    ::kill(pid_, SIGTERM);
    int status = WaitFor(pid_, seconds(30));
    if (status == -1) {
      ::kill(-pid_, SIGKILL);
      status = WaitFor(pid_, seconds(5));
    }
    ::kill(-pid_, SIGKILL);
    pid_ = -1;
    return status;
  }

  std::string Trace() const { return ReadAll(dir() + "/trace"); }
  std::string Log() const { return ReadAll(dir() + "/supervise.err"); }

  // Waits until the trace matches `re`.
  bool WaitForTrace(const std::regex& re, milliseconds timeout) const {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      const std::string t = Trace();
      if (std::regex_search(t, re)) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  // The pid of the line matching `re` (its first group), 0 if none.
  int PidOf(const std::string& re) const {
    std::smatch m;
    const std::string t = Trace();
    if (!std::regex_search(t, m, std::regex("(\\d+) " + re))) return 0;
    return std::stoi(m[1]);
  }
  // Like PidOf, the last generation to trace it (0: none).
  int LastPidOf(const std::string& re) const {
    const std::string t = Trace();
    const std::regex line("(\\d+) " + re);
    int pid = 0;
    for (std::sregex_iterator it(t.begin(), t.end(), line), end; it != end; ++it) pid = std::stoi((*it)[1]);
    return pid;
  }

  void Knob(const std::string& name, const std::string& content) const {
    std::ofstream(dir() + "/" + name) << content << "\n";
  }
  void ClearKnob(const std::string& name) const { ::unlink((dir() + "/" + name).c_str()); }

 private:
  TempDir dir_;
  std::string daemon_;
  pid_t pid_ = -1;
};

}  // namespace baton::harness
