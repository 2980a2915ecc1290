#include "tools/baton/supervise.h"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include "base/duration.h"
#include "base/log.h"
#include "crashpoints/crashpoints.h"
#include "supervisor/launch.h"
#include "supervisor/child_policy.h"
#include "supervisor/ops/operator_surface.h"
#include "supervisor/ops/socket_activation.h"
#include "supervisor/reaper.h"
#include "supervisor/self_exec.h"
#include "supervisor/supervisor.h"

namespace baton::cli {
namespace {

void PrintError(const std::string& what) { fmt::print(stderr, "baton: {}\n", what); }

Status ApplyTimeout(supervisor::ServiceConfig& c, const std::string& t) {
  const auto eq = t.find('=');
  auto d = ParseDuration(eq == std::string::npos ? std::string_view() : std::string_view(t).substr(eq + 1));
  if (eq == std::string::npos || !d) {
    return Error(Errc::kInvalidArgument, fmt::format("--timeout '{}': expected NAME=DURATION, e.g. drain=10s", t));
  }
  const std::string name = t.substr(0, eq);
  // The flag also takes term-grace, spelled like the other flags.
  Duration* field = supervisor::TimeoutByName(c, name == "term-grace" ? "term_grace" : name);
  if (!field) return Error(Errc::kInvalidArgument, fmt::format("--timeout '{}': unknown timeout '{}'", t, name));
  *field = *d;
  return {};
}

supervisor::SupervisorOptions ToOptions(const supervisor::ServiceConfig& c) {
  supervisor::SupervisorOptions o;
  o.listeners = c.listeners;
  o.data_dir = c.data_dir;
  o.runtime_dir = c.runtime_dir;
  o.binary = c.binary;
  o.args = c.args;
  o.timeouts = c.timeouts;
  o.liveness = {c.heartbeat, c.liveness, c.liveness};
  o.restart_backoff_min = c.restart_backoff_min;
  o.max_handover_fds = c.max_handover_fds;
  o.restart_backoff_max = c.restart_backoff_max;
  o.admin_uids = c.admin_uids;
  o.allowed_binaries = c.allowed_binaries;
  o.notify = c.notify;
  o.probation = c.probation;
  o.child_environment =
      supervisor::SanitizedEnvironment(supervisor::CurrentEnvironment(), c.pass_environment, c.environment, c.lease);
  return o;
}

// Loads --config (if any), applies the flags, takes the sockets systemd
// passed (they may be the only listeners), validates.
Result<supervisor::ServiceConfig> Resolve(const SuperviseArgs& args) {
  supervisor::ServiceConfig base;
  if (!args.config.empty()) {
    auto c = supervisor::LoadConfig(args.config);
    if (!c) return c.error();
    base = std::move(*c);
  }
  auto merged = MergeFlags(std::move(base), args);
  if (!merged) return merged.error();
  auto activated = supervisor::TakeActivatedSockets();
  if (!activated) return activated.error();
  auto listeners = supervisor::MatchActivated(merged->listeners, *activated);
  if (!listeners) return listeners.error();
  merged->listeners = std::move(*listeners);
  if (auto st = supervisor::ValidateConfig(*merged); !st) return st.error();
  if (merged->runtime_dir.empty()) merged->runtime_dir = DefaultRuntimeDir();
  if (merged->name.empty()) {
    const auto slash = merged->binary.rfind('/');
    merged->name = slash == std::string::npos ? merged->binary : merged->binary.substr(slash + 1);
  }
  return merged;
}

}  // namespace

Result<supervisor::ServiceConfig> MergeFlags(supervisor::ServiceConfig c, const SuperviseArgs& args) {
  if (!args.listeners.empty()) {
    c.listeners.clear();
    for (const auto& l : args.listeners) {
      auto spec = supervisor::ParseListener(l);
      if (!spec) return spec.error();
      c.listeners.push_back(*spec);
    }
  }
  if (!args.data_dir.empty()) c.data_dir = args.data_dir;
  if (!args.runtime_dir.empty()) c.runtime_dir = args.runtime_dir;
  for (const auto& t : args.timeouts) {
    if (auto st = ApplyTimeout(c, t); !st) return st.error();
  }
  if (!args.allowed_binaries.empty()) c.allowed_binaries = args.allowed_binaries;
  if (!args.metrics_listen.empty()) c.metrics_listen = args.metrics_listen;
  if (args.fd_store) c.fd_store = true;
  if (!args.protocol.empty()) {
    if (auto st = supervisor::ParseProtocol(args.protocol, c.notify); !st) return Error(st.error().code, "--" + st.error().message);
  }
  if (!args.strategy.empty()) {
    if (auto st = supervisor::ParseStrategy(args.strategy, c.notify); !st) return Error(st.error().code, "--" + st.error().message);
  }
  if (!args.command.empty()) {
    c.binary = args.command.front();
    c.args.assign(args.command.begin() + 1, args.command.end());
  }
  return c;
}

int RunCheckConfig(const std::string& path) {
  auto c = supervisor::LoadConfig(path);
  if (!c) {
    PrintError(c.error().message);
    return kExitUsage;
  }
  if (auto st = supervisor::ValidateConfig(*c); !st) {
    PrintError(fmt::format("{}: {}", path, st.error().message));
    return kExitUsage;
  }
  // What an upgrade without --binary would check, before anything starts.
  if (auto st = supervisor::CheckExecutable(c->binary); !st) {
    PrintError(fmt::format("{}: {}", path, st.error().message));
    return kExitUsage;
  }
  if (auto st = supervisor::CheckAllowedBinary(c->allowed_binaries, c->binary); !st) {
    PrintError(fmt::format("{}: {}", path, st.error().message));
    return kExitUsage;
  }
  fmt::print("{}: ok\n", path);
  fmt::print("  binary       {}\n", c->binary);
  fmt::print("  data dir     {}\n", c->data_dir);
  fmt::print("  runtime dir  {}\n", c->runtime_dir.empty() ? DefaultRuntimeDir() + " (default)" : c->runtime_dir);
  for (const auto& l : c->listeners) {
    fmt::print("  listener     {} = {}\n", l.name,
               l.require_inherited ? std::string("systemd (socket activation)")
               : l.kind == supervisor::ListenerSpec::Kind::kUnix
                   ? "unix:" + l.path
                   : fmt::format("{}://{}:{}", supervisor::KindName(l.kind),
                                 l.host.find(':') != std::string::npos ? "[" + l.host + "]" : l.host, l.port));
  }
  fmt::print("  allowed      {}\n", c->allowed_binaries.empty() ? "any executable" : fmt::format("{}", fmt::join(c->allowed_binaries, ", ")));
  return kExitOk;
}

int RunSupervise(const SuperviseArgs& args) {
  if (auto st = crashpoints::ArmFromEnvironment(); !st) {
    PrintError(st.error().message);
    return kExitUsage;
  }
  // A self-upgrade's new image (docs/design.md §15): what it cannot start
  // from goes back to the previous binary, with the activation it was given.
  const bool resuming = args.resume_state_fd >= 0;
  const std::vector<std::string> activation = resuming ? supervisor::ActivationEnvironment() : std::vector<std::string>{};
  auto cfg = Resolve(args);
  if (!cfg && resuming) {
    PrintError(fmt::format("{}; re-executing the previous binary", cfg.error().message));
    cfg = supervisor::ReexecPrevious(args.resume_state_fd, args.resume_previous_fd,
                                     "its configuration: " + cfg.error().message, activation);
  }
  if (!cfg) {
    PrintError(cfg.error().message);
    return kExitUsage;
  }

  boost::asio::io_context io;
  JsonLinesSink log(stderr);
  supervisor::OperatorSurface surface({cfg->name, cfg->runtime_dir, cfg->events_max_bytes, cfg->timeouts.handoff,
                                       supervisor::SdNotifier::Enabled()},
                                      log);
  supervisor::SupervisorOptions opts = ToOptions(*cfg);
  surface.Attach(opts);
  opts.resume_state_fd = args.resume_state_fd;
  opts.resume_previous_fd = args.resume_previous_fd;
  opts.activation_env = activation;
  auto sup = supervisor::Supervisor::Create(io, std::move(opts), log);
  if (!sup) {
    PrintError(sup.error().message);
    return sup.error().Is(Errc::kInvalidArgument) ? kExitUsage : kExitUnreachable;
  }
  surface.SetListeners((*sup)->Addresses());
  if (const int inherited = (*sup)->InheritedMetricsFd(); inherited >= 0) {
    if (auto st = surface.AdoptMetrics(io, inherited); !st) {
      PrintError(st.error().message);
      return kExitUnreachable;
    }
  } else if (!cfg->metrics_listen.empty()) {
    if (auto st = surface.ServeMetrics(io, cfg->metrics_listen); !st) {
      PrintError(st.error().message);
      return kExitUsage;
    }
    log.Emit(MakeEvent(Level::kInfo, "metrics.listen", "serving GET /metrics on {}", surface.MetricsAddress())
                 .With("address", surface.MetricsAddress()));
  }
  // PID 1 of a container, or asked to be a subreaper: orphans below us are
  // ours to reap (supervisor/reaper.h).
  std::unique_ptr<supervisor::OrphanReaper> reaper;
  if (args.subreaper || ::getpid() == 1) {
    auto r = supervisor::OrphanReaper::Start(io, log);
    if (!r) {
      PrintError(r.error().message);
      return kExitUnreachable;
    }
    reaper = std::move(*r);
  }
  // (A self-upgrade's new image finds them parked by the first one.)
  if (cfg->fd_store && supervisor::SdNotifier::Enabled() && args.resume_state_fd < 0) {
    if (auto st = surface.ParkListeners(**sup); !st) {
      log.Emit(MakeEvent(Level::kWarn, "notify.fd_store_failed", "{}", st.error().message));
    }
  }
  // SIGTERM/SIGINT: drain the serving generation, then exit. SIGHUP: upgrade
  // to the configured binary (systemd's ExecReload can also run `baton upgrade`).
  boost::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    (*sup)->Stop([&io] { io.stop(); });
  });
  boost::asio::signal_set hup(io, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      // The config file may name a new binary now (a new release path);
      // only binary and args are re-read, the rest needs a restart. A
      // command given after -- wins, as at start.
      std::string binary;
      std::vector<std::string> bargs;
      if (!args.config.empty() && args.command.empty()) {
        auto fresh = supervisor::LoadConfig(args.config);
        if (!fresh) {
          log.Emit(MakeEvent(Level::kError, "sighup.config_error", "SIGHUP: no upgrade: {}", fresh.error().message)
                       .With("reason", fresh.error().message));
          wait_hup();
          return;
        }
        binary = fresh->binary;
        bargs = fresh->args;
      }
      (*sup)->UpgradeTo(binary, bargs);
      wait_hup();
    });
  };
  wait_hup();
  // SIGUSR2 (systemd's ExecReload=/bin/kill -USR2 $MAINPID): re-execute
  // baton itself in place, as `baton upgrade --self` (docs/operations.md).
  boost::asio::signal_set usr2(io, SIGUSR2);
  std::function<void()> wait_usr2 = [&] {
    usr2.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      (*sup)->SelfUpgrade("");
      wait_usr2();
    });
  };
  wait_usr2();
  // Blocked over a self-upgrade's exec (docs/design.md §15): what arrived
  // meanwhile is delivered now, to these handlers.
  const sigset_t handled = supervisor::SupervisorSignals();
  ::sigprocmask(SIG_UNBLOCK, &handled, nullptr);
  (*sup)->Start();
  io.run();
  return kExitOk;
}

}  // namespace baton::cli
