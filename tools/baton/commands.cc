#include "tools/baton/commands.h"

#include <unistd.h>

#include <cstdio>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include "base/duration.h"
#include "base/log.h"
#include "crashpoints/crashpoints.h"
#include "protocol/version.h"
#include "supervisor/supervisor.h"
#include "tools/baton/admin_client.h"

namespace baton::cli {
namespace {

void PrintError(const std::string& what) { fmt::print(stderr, "baton: {}\n", what); }

std::string Dir(const std::string& given) { return given.empty() ? DefaultRuntimeDir() : given; }

int ExitCodeFor(v1::Outcome o) {
  switch (o) {
    case v1::COMMITTED: return kExitOk;
    case v1::ROLLED_BACK: return kExitRolledBack;
    case v1::REFUSED: return kExitRefused;
    default: return kExitFailed;
  }
}

std::string_view OutcomeText(v1::Outcome o) {
  switch (o) {
    case v1::COMMITTED: return "committed";
    case v1::ROLLED_BACK: return "rolled_back";
    case v1::REFUSED: return "refused";
    case v1::FAILED: return "failed";
    default: return "unknown";
  }
}

std::string ResultJson(const v1::UpgradeResult& r) {
  std::string phases;
  for (const auto& p : r.phases()) {
    if (!phases.empty()) phases += ",";
    phases += fmt::format("{}:{:.3f}", JsonQuote(p.phase()), static_cast<double>(p.duration_us()) / 1000.0);
  }
  return fmt::format(
      "{{\"outcome\":{},\"exit_code\":{},\"reason\":{},\"handoff_id\":{},\"old_pid\":{},\"new_pid\":{},"
      "\"total_ms\":{:.3f},\"phases_ms\":{{{}}}}}",
      JsonQuote(OutcomeText(r.outcome())), ExitCodeFor(r.outcome()), JsonQuote(r.reason()), JsonQuote(r.handoff_id()),
      r.old_pid(), r.new_pid(), static_cast<double>(r.total_us()) / 1000.0, phases);
}

Result<AdminClient> ConnectOrSay(const std::string& dir) {
  auto c = AdminClient::Connect(dir);
  if (!c) PrintError(c.error().message);
  return c;
}

}  // namespace

int RunVersion(bool json) {
  if (json) {
    fmt::print("{{\"version\":\"{}\",\"protocol_min\":{},\"protocol_max\":{}}}\n", BATON_VERSION,
               protocol::kProtocolMin, protocol::kProtocolMax);
  } else {
    fmt::print("baton {} (control protocol {}..{})\n", BATON_VERSION, protocol::kProtocolMin, protocol::kProtocolMax);
  }
  return kExitOk;
}

int RunCrashpoints(const std::string& role_filter, bool names_only) {
  for (const auto& info : crashpoints::All()) {
    const auto role = crashpoints::RoleName(info.role);
    if (!role_filter.empty() && role != role_filter) continue;
    if (names_only) {
      fmt::print("{}\n", info.name);
    } else {
      fmt::print("{:<40} {:<11} {}\n", info.name, role, info.description);
    }
  }
  return kExitOk;
}

int RunSupervise(const SuperviseArgs& args) {
  if (auto st = crashpoints::ArmFromEnvironment(); !st) {
    PrintError(st.error().message);
    return kExitUsage;
  }
  supervisor::SupervisorOptions opts;
  for (const auto& l : args.listeners) {
    auto spec = supervisor::ParseListener(l);
    if (!spec) {
      PrintError(spec.error().message);
      return kExitUsage;
    }
    opts.listeners.push_back(*spec);
  }
  opts.data_dir = args.data_dir;
  opts.runtime_dir = Dir(args.runtime_dir);
  opts.binary = args.command.front();
  opts.args.assign(args.command.begin() + 1, args.command.end());
  for (const auto& t : args.timeouts) {
    const auto eq = t.find('=');
    auto d = ParseDuration(eq == std::string::npos ? std::string_view() : std::string_view(t).substr(eq + 1));
    if (eq == std::string::npos || !d) {
      PrintError(fmt::format("--timeout '{}': expected NAME=DURATION, e.g. drain=10s", t));
      return kExitUsage;
    }
    const std::string name = t.substr(0, eq);
    auto& to = opts.timeouts;
    if (name == "hello") to.hello = *d;
    else if (name == "warm") to.warm = *d;
    else if (name == "drain") to.drain = *d;
    else if (name == "seal") to.seal = *d;
    else if (name == "begin") to.begin = *d;
    else if (name == "commit") to.commit = *d;
    else if (name == "resume") to.resume = *d;
    else if (name == "term-grace") to.term_grace = *d;
    else if (name == "handoff") to.handoff = *d;
    else if (name == "heartbeat") opts.heartbeat_interval_ms = static_cast<uint32_t>(ToMillis(*d));
    else if (name == "liveness") opts.liveness_timeout_ms = static_cast<uint32_t>(ToMillis(*d));
    else {
      PrintError(fmt::format("--timeout '{}': unknown timeout '{}'", t, name));
      return kExitUsage;
    }
  }
  boost::asio::io_context io;
  JsonLinesSink log(stderr);
  auto sup = supervisor::Supervisor::Create(io, std::move(opts), log);
  if (!sup) {
    PrintError(sup.error().message);
    return sup.error().Is(Errc::kInvalidArgument) ? kExitUsage : kExitUnreachable;
  }
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    (*sup)->Stop([&io] { io.stop(); });
  });
  (*sup)->Start();
  io.run();
  return kExitOk;
}

int RunUpgrade(const UpgradeArgs& args) {
  auto client = ConnectOrSay(Dir(args.runtime_dir));
  if (!client) return kExitUnreachable;
  v1::Envelope req;
  req.mutable_upgrade_request()->set_binary(args.binary);
  req.mutable_upgrade_request()->set_progress(!args.json && !args.quiet);
  if (auto st = client->Send(req); !st) {
    PrintError(st.error().message);
    return kExitUnreachable;
  }
  for (;;) {
    // The supervisor guarantees an outcome within its handoff deadline; if
    // it dies meanwhile, the state is uncertain.
    auto env = client->Receive(std::nullopt);
    if (!env) {
      PrintError(fmt::format("lost the supervisor during the upgrade: {}", env.error().message));
      if (args.json) fmt::print("{{\"outcome\":\"failed\",\"exit_code\":5,\"reason\":{}}}\n", JsonQuote(env.error().message));
      return kExitFailed;
    }
    if (env->has_upgrade_progress()) {
      const auto& p = env->upgrade_progress().phase();
      fmt::print("{:<8} {:>10.3f} ms\n", p.phase(), static_cast<double>(p.duration_us()) / 1000.0);
      std::fflush(stdout);
      continue;
    }
    if (env->has_error()) {
      PrintError(env->error().message());
      return env->error().code() == v1::Error::PERMISSION_DENIED ? kExitUnreachable : kExitFailed;
    }
    if (!env->has_upgrade_result()) continue;
    const auto& r = env->upgrade_result();
    if (args.json) {
      fmt::print("{}\n", ResultJson(r));
    } else if (!args.quiet) {
      fmt::print("{}: {} (pid {} -> {}, {:.1f} ms)\n", OutcomeText(r.outcome()), r.reason(), r.old_pid(), r.new_pid(),
                 static_cast<double>(r.total_us()) / 1000.0);
    }
    return ExitCodeFor(r.outcome());
  }
}

int RunStatus(const StatusArgs& args) {
  auto client = ConnectOrSay(Dir(args.runtime_dir));
  if (!client) return kExitUnreachable;
  v1::Envelope req;
  req.mutable_status_request();
  if (auto st = client->Send(req); !st) {
    PrintError(st.error().message);
    return kExitUnreachable;
  }
  auto env = client->Receive(std::chrono::milliseconds(10000));
  if (!env || !env->has_status_reply()) {
    PrintError(env ? "unexpected reply from the supervisor" : env.error().message);
    return kExitUnreachable;
  }
  const auto& s = env->status_reply();
  if (args.json) {
    fmt::print(
        "{{\"generation\":{},\"supervisor_pid\":{},\"incumbent_pid\":{},\"build_id\":{},\"binary\":{},"
        "\"uptime_ms\":{},\"incumbent_uptime_ms\":{},\"restarts\":{},\"handoff_in_progress\":{},\"last_handoff\":{}}}\n",
        s.generation(), s.supervisor_pid(), s.incumbent_pid(), JsonQuote(s.build_id()), JsonQuote(s.binary()),
        s.uptime_ms(), s.incumbent_uptime_ms(), s.restarts(), JsonQuote(s.handoff_in_progress()),
        s.has_last_handoff() ? ResultJson(s.last_handoff()) : "null");
    return kExitOk;
  }
  fmt::print("generation  {}\n", s.generation());
  fmt::print("serving     pid {} ({}), up {:.1f} s\n", s.incumbent_pid(), s.build_id().empty() ? "-" : s.build_id(),
             static_cast<double>(s.incumbent_uptime_ms()) / 1000.0);
  fmt::print("supervisor  pid {}, up {:.1f} s, {} restarts\n", s.supervisor_pid(),
             static_cast<double>(s.uptime_ms()) / 1000.0, s.restarts());
  if (!s.handoff_in_progress().empty()) fmt::print("handoff     {} in progress\n", s.handoff_in_progress());
  if (s.has_last_handoff()) {
    const auto& r = s.last_handoff();
    fmt::print("last        {} {}: {} ({:.1f} ms)\n", r.handoff_id(), OutcomeText(r.outcome()), r.reason(),
               static_cast<double>(r.total_us()) / 1000.0);
    for (const auto& p : r.phases()) {
      fmt::print("  {:<8} {:>10.3f} ms\n", p.phase(), static_cast<double>(p.duration_us()) / 1000.0);
    }
  }
  return kExitOk;
}

int RunAbort(const std::string& runtime_dir) {
  auto client = ConnectOrSay(Dir(runtime_dir));
  if (!client) return kExitUnreachable;
  v1::Envelope req;
  req.mutable_abort_request()->set_reason("baton abort");
  if (auto st = client->Send(req); !st) return kExitUnreachable;
  auto env = client->Receive(std::chrono::milliseconds(10000));
  if (!env || !env->has_abort_reply()) return kExitUnreachable;
  if (env->abort_reply().aborted()) {
    fmt::print("abort requested for handoff {}; `baton upgrade` reports the rollback\n", env->abort_reply().handoff_id());
  } else {
    fmt::print("no handoff in progress\n");
  }
  return kExitOk;
}

int RunEvents(const EventsArgs& args) {
  auto client = ConnectOrSay(Dir(args.runtime_dir));
  if (!client) return kExitUnreachable;
  v1::Envelope req;
  req.mutable_events_request()->set_follow(args.follow);
  if (auto st = client->Send(req); !st) return kExitUnreachable;
  for (;;) {
    auto env = client->Receive(std::nullopt);
    if (!env) return env.error().Is(Errc::kUnavailable) && !args.follow ? kExitOk : kExitUnreachable;
    if (env->has_event_record()) {
      fmt::print("{}\n", env->event_record().json());
      std::fflush(stdout);
    }
  }
}

}  // namespace baton::cli
