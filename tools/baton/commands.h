// The `baton` subcommands, one function each; main.cc only parses.
#pragma once

#include <string>
#include <vector>

namespace baton::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUnreachable = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitRolledBack = 3;
inline constexpr int kExitRefused = 4;
inline constexpr int kExitFailed = 5;
inline constexpr int kExitReverted = 6;  // committed, failed its probation, the previous binary serves

// Flags of `baton supervise`; each one given overrides the config file.
struct SuperviseArgs {
  std::string config;
  std::vector<std::string> listeners;
  std::string data_dir;
  std::string runtime_dir;
  std::vector<std::string> timeouts;
  std::vector<std::string> allowed_binaries;
  std::string metrics_listen;
  bool fd_store = false;
  std::string protocol;  // "" = the config's (default baton)
  std::string strategy;
  bool subreaper = false;
  // Set by a self-upgrade's exec (docs/design.md §15), never by hand.
  int resume_state_fd = -1;
  int resume_previous_fd = -1;
  std::vector<std::string> command;
};
struct UpgradeArgs {
  std::string runtime_dir;
  std::string binary;
  bool json = false;
  bool quiet = false;
  bool plain = false;  // no live lines even on a terminal
  std::string probation;  // "" = the supervisor's configured window, answered at commit; "0" = none
  bool rollback = false;  // `baton rollback`: back to the previous pinned binary
  bool self = false;      // `baton upgrade --self`: re-execute the supervisor itself
};
struct StatusArgs {
  std::string runtime_dir;
  bool json = false;
};
struct EventsArgs {
  std::string runtime_dir;
  bool follow = false;
  bool json = false;
};

int RunVersion(bool json);
// `baton self-check`: the supervisor state format and protocol range this
// binary reads (a self-upgrade's pre-flight runs it).
int RunSelfCheck();
int RunCrashpoints(const std::string& role_filter, bool names_only);
int RunSupervise(const SuperviseArgs& args);
int RunCheckConfig(const std::string& path);
int RunMetrics(const std::string& runtime_dir);
int RunUpgrade(const UpgradeArgs& args);
int RunStatus(const StatusArgs& args);
int RunAbort(const std::string& runtime_dir);
int RunEvents(const EventsArgs& args);

// The default runtime dir: $BATON_RUNTIME_DIR, else /run/baton as root,
// else $XDG_RUNTIME_DIR/baton, else /tmp/baton-<uid>.
std::string DefaultRuntimeDir();

}  // namespace baton::cli
