// kvd: an HTTP key-value store with a WAL, upgradable in place by baton.
//
// Exit codes: 0 clean exit (retired after a handoff, or SIGTERM/SIGINT when
// standalone), 1 could not start (data dir locked, corrupt WAL, bad
// listener...), 2 bad flags or environment. --exit-at-start exits 1.
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "log.h"
#include "baton/daemon.h"
#include "baton/testing.h"
#include "http_server.h"
#include "kvd_hooks.h"
#include "prefill.h"
#include "service.h"

namespace {

struct Flags {
  std::string listen_name = "http";
  std::string data_dir;
  std::string build_id = "kvd-dev";
  uint32_t schema_min = 1;
  uint32_t schema_max = 1;
  std::string standalone_listen = "127.0.0.1:8080";
  std::string port_file;
  int64_t group_commit_us = 0;
  uint64_t rotate_bytes = 64u << 20;
  uint64_t checkpoint_bytes = 1u << 20;
  uint64_t watch_history_bytes = 64u << 20;
  int64_t drain_idle_ms = 1000;
  int64_t shutdown_grace_ms = 5000;
  bool fail_seal = false;
  int64_t warm_delay_ms = 0;
  bool exit_at_start = false;
  bool hang_in_warm = false;
  bool fail_begin = false;
  bool no_hand_over = false;
  bool no_accept_handover = false;
  std::string crash_at;
  int64_t exit_after_serving_ms = -1;
  int64_t unhealthy_after_serving_ms = -1;
  bool fail_healthz = false;
  int64_t seal_delay_ms = 0;
  int warm_nice = 10;
  bool hang_at_exit = false;
  int64_t leave_orphan_ms = 0;
  std::string lease_dsn;
  std::string lease_name;
  int64_t lease_ttl_ms = 10000;
  int64_t lease_op_timeout_ms = 1000;
  uint64_t prefill = 0;
  size_t prefill_value_bytes = 100;
  uint64_t prefill_keys = 0;
};

std::string_view RoleName(baton::Role r) {
  switch (r) {
    case baton::Role::kStandalone: return "standalone";
    case baton::Role::kColdStart: return "cold";
    case baton::Role::kSuccessor: return "successor";
  }
  return "unknown";
}

// "host:port" or "[v6]:port".
bool SplitHostPort(const std::string& s, std::string* host, uint16_t* port) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  try {
    const int p = std::stoi(s.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    return false;
  }
  return !host->empty();
}

// Written after the listener is up, via rename so readers never see half a file.
void WritePortFile(const std::string& path, uint16_t port) {
  const std::string tmp = path + ".tmp";
  if (std::FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(f, "%u\n", port);
    std::fclose(f);
    std::rename(tmp.c_str(), path.c_str());
  }
}

// Test knob: a double-forked helper that outlives us by `ms` and is then
// re-parented to the nearest subreaper or PID 1, which must reap it. Runs
// before any thread exists; the helper closes every inherited fd (listeners,
// control channel) so it holds nothing of ours.
void LeaveOrphan(int64_t ms) {
  const pid_t child = ::fork();
  if (child == 0) {
    if (::fork() == 0) {
      ::syscall(SYS_close_range, 3u, ~0u, 0u);
      ::usleep(static_cast<useconds_t>(ms * 1000));
      ::_exit(0);
    }
    ::_exit(0);
  }
  if (child > 0) ::waitpid(child, nullptr, 0);
}

int Fail(baton::LogSink& log, int code, const std::string& what, const baton::Error& e) {
  log.Emit(kvd::MakeEvent(baton::Level::kError, "kvd.fatal", "{}: {}", what, e.message));
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"kvd: an example stateful daemon (HTTP key-value store with a WAL) upgradable by baton"};
  app.add_option("--listen-name", f.listen_name, "name of the inherited listener to serve");
  app.add_option("--data-dir", f.data_dir, "data directory (default: $BATON_DATA_DIR)");
  app.add_option("--build-id", f.build_id, "build id reported to the supervisor");
  app.add_option("--schema-min", f.schema_min, "oldest on-disk state schema this build reads");
  app.add_option("--schema-max", f.schema_max, "newest on-disk state schema this build reads");
  app.add_option("--standalone-listen", f.standalone_listen, "HOST:PORT to bind when run without a supervisor");
  app.add_option("--port-file", f.port_file, "write the listening port here once serving");
  app.add_option("--group-commit-us", f.group_commit_us, "extra wait for a commit batch to fill (0: none)");
  app.add_option("--rotate-bytes", f.rotate_bytes, "start a new WAL segment after this many bytes");
  app.add_option("--checkpoint-bytes", f.checkpoint_bytes,
                 "write a snapshot of the store once the WAL has grown by this many bytes (or by the last "
                 "snapshot's size, if larger) since the last one, and remove the WAL before it; 0: never")
      ->capture_default_str();
  app.add_option("--watch-history-bytes", f.watch_history_bytes,
                 "keep about this many bytes of recent writes in memory for GET /watch (a watch from an older "
                 "revision gets 410 Gone)")
      ->capture_default_str();
  app.add_option("--drain-idle-ms", f.drain_idle_ms, "drain: how long to wait for the next request on an idle keep-alive connection before closing it (0: until the drain deadline)");
  app.add_option("--shutdown-grace-ms", f.shutdown_grace_ms, "drain deadline on SIGTERM (standalone)");
  app.add_flag("--fail-seal", f.fail_seal, "test knob: the seal hook fails");
  app.add_option("--warm-delay-ms", f.warm_delay_ms, "test knob: sleep this long in the warm hook");
  app.add_flag("--exit-at-start", f.exit_at_start, "test knob: exit 1 at once");
  app.add_flag("--hang-in-warm", f.hang_in_warm, "test knob: never return from the warm hook");
  app.add_flag("--fail-begin", f.fail_begin, "test knob: the begin hook fails after its replay");
  app.add_flag("--no-hand-over", f.no_hand_over,
               "at an upgrade, close keep-alive connections at response boundaries instead of handing them to "
               "the new generation");
  app.add_flag("--no-accept-handover", f.no_accept_handover,
               "as a successor, do not accept what the incumbent hands over (like a daemon built without "
               "handover): the incumbent then closes its keep-alive connections at response boundaries");
  app.add_flag("--hang-at-exit", f.hang_at_exit,
               "test knob: once this generation is done (retired after a commit, or stopped), never exit");
  app.add_option("--leave-orphan-ms", f.leave_orphan_ms,
                 "test knob: at start, leave behind a double-forked helper process that exits this much later "
                 "(an orphan for the supervisor to reap when it is PID 1 or a subreaper)");
  app.add_option("--crash-at", f.crash_at,
                 "test knob: arm this crash point (like BATON_CRASH_AT, but per generation: `baton upgrade -- "
                 "--crash-at NAME` arms it in that successor only)");
  app.add_option("--seal-delay-ms", f.seal_delay_ms, "test knob: sleep this long in the seal hook");
  app.add_option("--exit-after-serving-ms", f.exit_after_serving_ms,
                 "test knob: this long after it began serving, exit 1 at once (a release that crashes after the "
                 "commit)");
  app.add_option("--unhealthy-after-serving-ms", f.unhealthy_after_serving_ms,
                 "test knob: this long after it began serving, report itself unhealthy to the supervisor "
                 "(baton::Daemon::ReportUnhealthy)");
  app.add_flag("--fail-healthz", f.fail_healthz, "test knob: GET /healthz answers 503");
  app.add_option("--warm-nice", f.warm_nice,
                 "successor: replay the WAL during warm-up at this much lower CPU priority (nice increment), so the "
                 "incumbent keeps its CPU while it serves; 0: same priority")
      ->capture_default_str()
      ->check(CLI::Range(0, 19));
  // Without --lease-name, the library takes the supervisor's [lease] (its
  // BATON_LEASE_* variables) by itself.
  app.add_option("--lease-name", f.lease_name,
                 "hold the Postgres leader lease of this name; writes are accepted only while holding it "
                 "(default: the supervisor's [lease], if any)");
  app.add_option("--lease-dsn", f.lease_dsn,
                 "libpq connection string or URI of the lease database (default: $BATON_LEASE_DSN, then "
                 "libpq's PG* variables)");
  app.add_option("--lease-ttl-ms", f.lease_ttl_ms, "lease time to live (with --lease-name)")->capture_default_str();
  app.add_option("--lease-op-timeout-ms", f.lease_op_timeout_ms,
                 "client deadline of every Postgres call (with --lease-name)")
      ->capture_default_str();
  app.add_option("--prefill", f.prefill,
                 "write this many records (keys prefill-<n>) into the empty WAL of --data-dir, print "
                 "{\"records\":…,\"bytes\":…} and exit, without serving (for benchmarks)");
  app.add_option("--prefill-keys", f.prefill_keys,
                 "with --prefill: cycle over this many keys (a long history of a bounded state); 0: a new key "
                 "per record")
      ->capture_default_str();
  app.add_option("--prefill-value-bytes", f.prefill_value_bytes, "value size of each --prefill record")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (f.exit_at_start) return 1;
  // Until the signal set below handles it: a stray SIGHUP (`systemctl kill
  // -s HUP` reaches every process of the unit) must not kill a generation.
  std::signal(SIGHUP, SIG_IGN);
  if (f.leave_orphan_ms > 0) LeaveOrphan(f.leave_orphan_ms);

  // Under systemd our stderr is the supervisor's journal stream: give our
  // lines our own name (and "<N>" priorities) instead of the supervisor's.
  const baton::Status journal = baton::ReopenStderrInJournal("kvd");
  const std::unique_ptr<baton::LogSink> log_sink = baton::NewJsonLinesSink(stderr);
  baton::LogSink& log = *log_sink;
  if (!journal) {
    log.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.journal", "logging through the supervisor's stream: {}",
                            journal.error().message));
  }
  if (f.prefill > 0) {
    if (f.data_dir.empty()) {
      return Fail(log, 2, "--prefill", baton::Error(baton::Errc::kInvalidArgument, "needs --data-dir"));
    }
    auto filled = kvd::PrefillWal(f.data_dir, f.prefill, f.prefill_value_bytes, f.rotate_bytes,
                                     f.prefill_keys);
    if (!filled) return Fail(log, 1, "prefill", filled.error());
    std::printf("{\"records\":%llu,\"bytes\":%llu}\n", static_cast<unsigned long long>(filled->records),
                static_cast<unsigned long long>(filled->bytes));
    return 0;
  }
  if (!f.lease_dsn.empty() && f.lease_name.empty()) {
    return Fail(log, 2, "--lease-dsn", baton::Error(baton::Errc::kInvalidArgument, "needs --lease-name"));
  }
  std::optional<baton::LeaseOptions> lease;
  if (!f.lease_name.empty()) {
    lease = baton::LeaseOptions{.name = f.lease_name,
                                .dsn = f.lease_dsn,
                                .ttl = std::chrono::milliseconds(f.lease_ttl_ms),
                                .op_timeout = std::chrono::milliseconds(f.lease_op_timeout_ms)};
  }
  // Before any thread: reads and removes the supervisor's environment.
  auto created = baton::Daemon::Create({.build_id = f.build_id,
                                        .state_schema_min = f.schema_min,
                                        .state_schema_max = f.schema_max,
                                        .data_dir = f.data_dir,
                                        .log = &log,
                                        .lease = lease});
  if (!created) return Fail(log, 2, "baton", created.error());
  baton::Daemon& daemon = **created;
  if (!f.crash_at.empty()) {
    // After Create, which arms BATON_CRASH_AT: the flag wins.
    if (auto st = baton::testing::ArmCrashPoint(f.crash_at); !st) return Fail(log, 2, "--crash-at", st.error());
  }
  const bool standalone = daemon.role() == baton::Role::kStandalone;

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  kvd::KvService service(io, log,
                         {.data_dir = daemon.data_dir(),
                          .role = std::string(RoleName(daemon.role())),
                          .build_id = f.build_id,
                          .fail_healthz = f.fail_healthz,
                          .rotate_bytes = f.rotate_bytes,
                          .checkpoint_bytes = f.checkpoint_bytes,
                          .group_commit = std::chrono::microseconds(f.group_commit_us),
                          .watch_history_bytes = f.watch_history_bytes,
                          .lease_epoch = daemon.lease() == nullptr
                                             ? std::function<uint64_t()>()
                                             : [lease = daemon.lease()] { return lease->epoch(); }});
  kvd::HttpServer server(
      io, [&service](kvd::Request&& req, kvd::Respond respond) { service.Handle(std::move(req), std::move(respond)); },
      log, {.idle_wait = std::chrono::milliseconds(f.drain_idle_ms)});
  kvd::KvdHooks hooks(io, service, server, log,
                      {.fail_seal = f.fail_seal,
                       .warm_delay = std::chrono::milliseconds(f.warm_delay_ms),
                       .hang_in_warm = f.hang_in_warm,
                       .fail_begin = f.fail_begin,
                       .seal_delay = std::chrono::milliseconds(f.seal_delay_ms),
                       .warm_nice = f.warm_nice,
                       .hand_over = !f.no_hand_over,
                       .accept_handover = !f.no_accept_handover});
  hooks.set_daemon(&daemon);
  // Begin takes the connections and watch streams an incumbent hands over.
  if (!f.no_accept_handover) {
    if (auto st = daemon.AcceptHandover(); !st) return Fail(log, 1, "handover", st.error());
  }

  // The listener: inherited from the supervisor (it stays open there across
  // generations), or our own when nobody supervises us.
  if (standalone) {
    std::string host;
    uint16_t port = 0;
    if (!SplitHostPort(f.standalone_listen, &host, &port)) {
      return Fail(log, 2, "--standalone-listen", baton::Error(baton::Errc::kInvalidArgument, f.standalone_listen));
    }
    if (auto st = server.Bind(host, port); !st) return Fail(log, 1, "listen", st.error());
  } else {
    auto fd = daemon.Listener(f.listen_name);
    if (!fd) return Fail(log, 2, "listener", fd.error());
    if (auto st = server.Listen(*fd); !st) return Fail(log, 1, "listener", st.error());
  }

  // SIGTERM/SIGINT (standalone, or the supervisor stopping the service):
  // drain, fsync, exit 0.
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&daemon](const boost::system::error_code& ec, int) {
    if (!ec) daemon.RequestExit(0);
  });
  // SIGHUP: upgrades are the supervisor's business (`systemctl reload`);
  // we only say that we ignored it.
  boost::asio::signal_set hup(io, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hup = [&](const boost::system::error_code& ec, int) {
    if (ec) return;
    log.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.sighup",
                              "SIGHUP ignored: to upgrade, signal only the supervisor (systemctl reload, or "
                              "systemctl kill --kill-whom=main -s HUP)"));
    hup.async_wait(on_hup);
  };
  hup.async_wait(on_hup);
  std::thread io_thread([&io] { io.run(); });
  auto finish = [&](int code) {
    io.stop();
    io_thread.join();
    return code;
  };

  // Cold start / standalone: takes the data-dir lock. Successor: runs Warm
  // and Begin (which starts serving) and returns once we are the owner.
  if (auto st = daemon.Start(hooks); !st) {
    // Nothing is ours yet (no flock, no writer), but a hook may still run on
    // the library's thread waiting for our io thread (a warm-up cut short
    // because the supervisor went away): leave now instead of joining it.
    const int code = Fail(log, 1, "start", st.error());
    std::fflush(nullptr);
    std::_Exit(code);
  }
  if (daemon.role() != baton::Role::kSuccessor) {
    if (auto st = hooks.StartServing(); !st) return finish(Fail(log, 1, "recovery", st.error()));
  } else {
    hooks.AdoptHandedOver();
  }
  if (!f.port_file.empty()) WritePortFile(f.port_file, server.port());
  // Test knobs: a release that fails after it began serving.
  boost::asio::steady_timer exit_timer(io), unhealthy_timer(io);
  if (f.exit_after_serving_ms >= 0) {
    exit_timer.expires_after(std::chrono::milliseconds(f.exit_after_serving_ms));
    exit_timer.async_wait([&log](const boost::system::error_code& ec) {
      if (ec) return;
      log.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.test_exit", "--exit-after-serving-ms: exiting 1 now"));
      std::fflush(nullptr);
      std::_Exit(1);
    });
  }
  if (f.unhealthy_after_serving_ms >= 0) {
    unhealthy_timer.expires_after(std::chrono::milliseconds(f.unhealthy_after_serving_ms));
    unhealthy_timer.async_wait([&log, &daemon](const boost::system::error_code& ec) {
      if (ec) return;
      auto st = daemon.ReportUnhealthy("kvd test knob --unhealthy-after-serving-ms");
      log.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.unhealthy", "reported unhealthy: {}",
                              st ? "ok" : st.error().message));
    });
  }

  // After Retire, when the supervisor is gone, or on SIGTERM/SIGINT.
  int code = daemon.WaitForExit();
  if (auto st = hooks.Shutdown(std::chrono::milliseconds(f.shutdown_grace_ms)); !st) {
    code = Fail(log, code == 0 ? 1 : code, "shutdown", st.error());
  }
  log.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.exit", "exiting with {}", code).With("code", int64_t{code}));
  // Everything that matters is durable now (the WAL is fsynced and closed,
  // or was handed over at Seal) and no connection is left. What remains is
  // releasing a lease we may still hold, which the Daemon does as it goes;
  // freeing a large map entry by entry would only delay the moment the old
  // generation is gone, which is when an upgrade is over.
  finish(code);
  created->reset();
  std::fflush(nullptr);
  while (f.hang_at_exit) std::this_thread::sleep_for(std::chrono::hours(1));
  std::_Exit(code);
}
