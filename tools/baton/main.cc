// The `baton` command line. Thin: parse with CLI11, call the library, print.
// Exit codes are documented in `baton --help`, `baton upgrade --help` and
// docs/operations.md.
#include <unistd.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "supervisor/self_exec.h"
#include "tools/baton/commands.h"
#include "tools/baton/lease_cmd.h"

namespace {
constexpr const char* kExitCodes =
    "Exit codes:\n"
    "  0  ok (upgrade: committed, the new generation serves)\n"
    "  1  the supervisor is unreachable\n"
    "  2  usage error (bad flag, bad config file)\n"
    "  3  upgrade rolled back: the old generation is still serving\n"
    "  4  upgrade refused, nothing changed (busy, incompatible, bad or not allowed binary)\n"
    "  5  upgrade failed, state uncertain (see `baton status`); or failed its probation and was not reverted\n"
    "  6  upgrade --probation: committed, then failed its probation and was reverted (the previous binary serves)";
}  // namespace

int main(int argc, char** argv) {
  using namespace baton::cli;
  CLI::App app{"baton: zero-downtime binary upgrades of stateful daemons."};
  app.footer(kExitCodes);
  app.require_subcommand(1);
  app.set_version_flag("--version", BATON_VERSION);

  bool version_json = false;
  auto* version = app.add_subcommand("version", "Print the version and the control protocol range");
  version->add_flag("--json", version_json, "One JSON object");

  std::string role;
  bool names_only = false;
  auto* crash = app.add_subcommand("crashpoints", "List every named crash point (BATON_CRASH_AT=<name>)");
  crash->add_option("--role", role, "Only the points of this role")
      ->check(CLI::IsMember({"supervisor", "incumbent", "successor", "daemon", "test"}));
  crash->add_flag("--names", names_only, "Names only, one per line");

  SuperviseArgs sup;
  auto* supervise = app.add_subcommand("supervise", "Own the listeners and run the daemon, upgradable without downtime");
  supervise->add_option("--config,-c", sup.config, "TOML config file (docs/operations.md); flags override it");
  // Repeatable options take one value per occurrence: otherwise the last of
  // them before `--` swallows the separator and the daemon's own flags are
  // parsed as ours.
  supervise->add_option("--listen", sup.listeners, "NAME=tcp://HOST:PORT, NAME=udp://HOST:PORT or NAME=unix:PATH (repeatable; [::1] for IPv6, port 0 = any free port)")
      ->allow_extra_args(false);
  supervise->add_option("--data-dir", sup.data_dir, "The daemon's data directory (BATON_DATA_DIR)");
  supervise->add_option("--runtime-dir", sup.runtime_dir, "Where baton.sock lives (default: " + DefaultRuntimeDir() + ")");
  supervise->add_option("--timeout", sup.timeouts,
                        "NAME=DURATION, e.g. warm=2m, drain=10s (hello, warm, drain, seal, begin, commit, resume, "
                        "term-grace, handoff, heartbeat, liveness; repeatable)")
      ->allow_extra_args(false);
  supervise->add_option("--allow-binary", sup.allowed_binaries,
                        "Upgrades may only exec this canonical path or fnmatch pattern (repeatable; default: any)")
      ->allow_extra_args(false);
  supervise->add_option("--metrics-listen", sup.metrics_listen, "Serve GET /metrics (Prometheus) on HOST:PORT");
  supervise->add_flag("--fd-store", sup.fd_store, "Park the listeners in systemd's FD store (FileDescriptorStoreMax=)");
  supervise->add_option("--protocol", sup.protocol,
                        "baton (the daemon links libbaton) or notify (an unmodified daemon: LISTEN_FDS + sd_notify; "
                        "docs/unmodified.md)");
  supervise->add_option("--strategy", sup.strategy, "protocol notify: overlap (new ready, then stop old) or sequential");
  supervise->add_flag("--subreaper", sup.subreaper,
                     "Reap every orphaned process below the supervisor (PR_SET_CHILD_SUBREAPER); always on as PID 1");
  supervise->add_option("command", sup.command, "-- BINARY [ARGS...] (or 'binary' and 'args' in the config)");
  supervise->footer(
      "Example: baton supervise --listen http=tcp://127.0.0.1:8080 --data-dir /var/lib/kvd -- /usr/bin/kvd\n"
      "         baton supervise --config /etc/baton/kvd.toml\n"
      "Signals: SIGTERM/SIGINT drain the serving generation and exit; SIGHUP upgrades to the binary the config\n"
      "file names now (binary and args are re-read), or to the current one; SIGUSR2 re-executes baton itself\n"
      "in place (as `baton upgrade --self`).");

  auto* self_check = app.add_subcommand(
      "self-check", "Print the supervisor state format and control protocol range this binary reads (for upgrade --self)");
  supervise->add_option(baton::supervisor::kResumeStateFlag, sup.resume_state_fd)->group("");
  supervise->add_option(baton::supervisor::kResumePreviousFlag, sup.resume_previous_fd)->group("");

  std::string check_path;
  auto* check = app.add_subcommand("check-config", "Validate a config file without starting anything (exit 0 ok, 2 bad)");
  check->add_option("file", check_path, "The TOML file")->required();

  UpgradeArgs up;
  auto* upgrade = app.add_subcommand("upgrade", "Hand over to a new binary and wait for the outcome");
  upgrade->add_option("--runtime-dir", up.runtime_dir, "The supervisor's runtime dir");
  upgrade->add_option("--binary", up.binary, "The new binary (default: the one being supervised)");
  upgrade->add_flag("--json", up.json, "Print one JSON object with the outcome, pids and phase timings");
  upgrade->add_flag("--quiet", up.quiet, "Print nothing; the exit code says it all");
  upgrade->add_flag("--plain", up.plain, "Plain lines even on a terminal (the default when stdout is not one)");
  upgrade->add_flag("--self", up.self,
                    "Re-execute the supervisor itself in place (same pid; --binary: the new baton, default the path "
                    "it was started from); the daemon is not touched");
  upgrade->add_option("--probation", up.probation,
                      "Watch the new generation this long after the commit (e.g. 30s; 0 = off) and wait for the "
                      "verdict: exit 0 it survived, 6 it was reverted");
  upgrade->footer(kExitCodes);

  UpgradeArgs rb;
  rb.rollback = true;
  auto* rollback = app.add_subcommand("rollback", "Hand back to the previous pinned binary (a handoff, like an upgrade)");
  rollback->add_option("--runtime-dir", rb.runtime_dir, "The supervisor's runtime dir");
  rollback->add_flag("--json", rb.json, "Print one JSON object with the outcome, pids and phase timings");
  rollback->add_flag("--quiet", rb.quiet, "Print nothing; the exit code says it all");
  rollback->add_flag("--plain", rb.plain, "Plain lines even on a terminal");
  rollback->footer(kExitCodes);

  StatusArgs st;
  auto* status = app.add_subcommand("status", "Show the serving generation and the last handoff");
  status->add_option("--runtime-dir", st.runtime_dir, "The supervisor's runtime dir");
  status->add_flag("--json", st.json, "One JSON object");

  std::string abort_dir;
  auto* abort = app.add_subcommand("abort", "Roll back the handoff in progress");
  abort->add_option("--runtime-dir", abort_dir, "The supervisor's runtime dir");

  EventsArgs ev;
  auto* events = app.add_subcommand("events", "Print the supervisor's recent structured events");
  events->add_option("--runtime-dir", ev.runtime_dir, "The supervisor's runtime dir");
  events->add_flag("--follow,-f", ev.follow, "Keep printing new events");
  events->add_flag("--json", ev.json, "Raw JSON lines (as in <runtime-dir>/events.jsonl)");

  std::string metrics_dir;
  auto* metrics = app.add_subcommand("metrics", "Print the supervisor's metrics (Prometheus text format)");
  metrics->add_option("--runtime-dir", metrics_dir, "The supervisor's runtime dir");

  LeaseCli lease;
  AddLeaseCommands(app, lease);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    // A self-upgrade's new image that does not take the old command line
    // hands back to the previous binary (docs/design.md §15).
    if (rc != 0) {
      if (auto fds = baton::supervisor::ResumeFdsIn(argc, argv)) {
        auto err = baton::supervisor::ReexecPrevious(fds->first, fds->second, std::string("its command line: ") + e.what(),
                                                     baton::supervisor::ActivationEnvironment());
        std::fprintf(stderr, "baton: %s\n", err.message.c_str());
      }
    }
    return rc == 0 ? 0 : kExitUsage;
  }
  if (*version) return RunVersion(version_json);
  if (*crash) return RunCrashpoints(role, names_only);
  if (*supervise) return RunSupervise(sup);
  if (*check) return RunCheckConfig(check_path);
  if (*self_check) return RunSelfCheck();
  if (*metrics) return RunMetrics(metrics_dir);
  if (*upgrade) return RunUpgrade(up);
  if (*rollback) return RunUpgrade(rb);
  if (*status) return RunStatus(st);
  if (*abort) return RunAbort(abort_dir);
  if (*events) return RunEvents(ev);
  if (int rc = RunLeaseCommand(lease); rc >= 0) return rc;
  return kExitUsage;
}
