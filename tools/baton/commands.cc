#include "tools/baton/commands.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "base/duration.h"
#include "base/log.h"
#include "crashpoints/crashpoints.h"
#include "protocol/version.h"
#include "supervisor/self_exec.h"
#include "tools/baton/admin_client.h"
#include "tools/baton/event_format.h"
#include "tools/baton/progress.h"

namespace baton::cli {
namespace {

void PrintError(const std::string& what) { fmt::print(stderr, "baton: {}\n", what); }

std::string Dir(const std::string& given) { return given.empty() ? DefaultRuntimeDir() : given; }

Result<AdminClient> ConnectOrSay(const std::string& dir) {
  auto c = AdminClient::Connect(dir);
  if (!c) PrintError(c.error().message);
  return c;
}

// A daemon's own text, safe for a terminal: control characters become '?'.
std::string Printable(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return text;
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

int RunSelfCheck() {
  supervisor::SelfCheck c;
  const supervisor::StateFormats formats = supervisor::SelfStateVersionsRead();
  c.state_version = formats.max;
  c.state_min = formats.min;
  c.protocol_min = protocol::kProtocolMin;
  c.protocol_max = protocol::kProtocolMax;
  c.version = BATON_VERSION;
  fmt::print("{}", supervisor::FormatSelfCheck(c));
  return kExitOk;
}

// `baton upgrade --self`: one request, one answer, from whichever binary
// supervises once it is over (docs/design.md §15).
int RunSelfUpgrade(const UpgradeArgs& args) {
  if (!args.probation.empty()) {
    PrintError("--probation does not apply to --self");
    return kExitUsage;
  }
  auto client = ConnectOrSay(Dir(args.runtime_dir));
  if (!client) return kExitUnreachable;
  v1::Envelope req;
  req.mutable_self_upgrade_request()->set_binary(args.binary);
  if (auto st = client->Send(req); !st) {
    PrintError(st.error().message);
    return kExitUnreachable;
  }
  auto env = client->Receive(std::nullopt);
  if (!env) {
    PrintError(fmt::format("lost the supervisor during the self-upgrade: {} (see `baton status`)", env.error().message));
    return kExitFailed;
  }
  if (env->has_error()) {
    PrintError(env->error().message());
    return env->error().code() == v1::Error::PERMISSION_DENIED ? kExitUnreachable : kExitFailed;
  }
  if (!env->has_self_upgrade_result()) {
    PrintError("unexpected reply from the supervisor");
    return kExitFailed;
  }
  const auto& r = env->self_upgrade_result();
  const int code = ExitCodeFor(r.outcome());
  if (args.json) {
    fmt::print("{{\"outcome\":{},\"exit_code\":{},\"reason\":{},\"supervisor_pid\":{},\"old_binary\":{},"
               "\"new_binary\":{},\"state_version\":{},\"total_us\":{}}}\n",
               JsonQuote(v1::Outcome_Name(r.outcome())), code, JsonQuote(r.reason()), r.supervisor_pid(),
               JsonQuote(r.old_binary()), JsonQuote(r.new_binary()), r.state_version(), r.total_us());
  } else if (!args.quiet) {
    if (r.outcome() == v1::COMMITTED) {
      fmt::print("self-upgrade committed: {} supervises as pid {} ({} ms)\n", r.new_binary(), r.supervisor_pid(),
                 r.total_us() / 1000);
    } else {
      fmt::print("self-upgrade {}: {}\n", code == kExitRefused ? "refused" : "not done", r.reason());
    }
  }
  return code;
}

int RunUpgrade(const UpgradeArgs& args) {
  if (args.self) return RunSelfUpgrade(args);
  const std::string dir = Dir(args.runtime_dir);
  auto client = ConnectOrSay(dir);
  if (!client) return kExitUnreachable;
  const bool tty = !args.plain && ::isatty(STDOUT_FILENO) == 1;
  const bool show = !args.json && !args.quiet;
  ProgressView view(tty);
  v1::Envelope req;
  if (args.rollback) {
    req.mutable_rollback_request()->set_progress(show);
    req.mutable_rollback_request()->set_reason("baton rollback");
  } else {
    req.mutable_upgrade_request()->set_binary(args.binary);
    req.mutable_upgrade_request()->set_progress(show);
    if (!args.probation.empty()) {
      auto d = args.probation == "0" ? Result<Duration>(Duration::zero()) : ParseDuration(args.probation);
      if (!d || *d < Duration::zero()) {
        PrintError(fmt::format("--probation {}: {}", args.probation,
                               d ? "must not be negative" : d.error().message));
        return kExitUsage;
      }
      req.mutable_upgrade_request()->set_probation_ms(static_cast<uint64_t>(ToMillis(*d)));
    }
  }
  if (auto st = client->Send(req); !st) {
    PrintError(st.error().message);
    return kExitUnreachable;
  }
  auto say = [&](const std::string& text) {
    if (!show || text.empty()) return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  say(view.Begin(args.rollback           ? "back to the previous pinned binary"
                 : args.binary.empty() ? "to the configured binary"
                                       : "to " + args.binary));
  auto phase_started = std::chrono::steady_clock::now();
  for (;;) {
    // The supervisor guarantees an outcome within its handoff deadline; if
    // it dies meanwhile, the state is uncertain. On a terminal the running
    // phase's clock ticks every 100 ms.
    auto env = client->Receive(tty && show ? std::optional(std::chrono::milliseconds(100)) : std::nullopt);
    if (!env && env.error().Is(Errc::kDeadlineExceeded)) {
      say(view.Tick(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                          phase_started)));
      continue;
    }
    if (!env) {
      PrintError(fmt::format("lost the supervisor during the upgrade: {}", env.error().message));
      if (args.json) fmt::print("{{\"outcome\":\"failed\",\"exit_code\":5,\"reason\":{}}}\n", JsonQuote(env.error().message));
      return kExitFailed;
    }
    if (env->has_upgrade_progress()) {
      say(view.OnPhase(env->upgrade_progress().phase()));
      phase_started = std::chrono::steady_clock::now();
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
    } else {
      say(view.Finish(r));
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
    std::string listeners;
    for (const auto& l : s.listeners()) listeners += (listeners.empty() ? "" : ",") + JsonQuote(l);
    std::string pinned;
    for (const auto& p : s.pinned()) {
      std::string args_json;
      for (const auto& a : p.args()) args_json += (args_json.empty() ? "" : ",") + JsonQuote(a);
      pinned += fmt::format("{}{{\"path\":{},\"args\":[{}],\"build_id\":{},\"script\":{},\"state_schema\":{}}}",
                            pinned.empty() ? "" : ",", JsonQuote(p.path()), args_json, JsonQuote(p.build_id()),
                            p.script() ? "true" : "false",
                            p.has_state_schema() ? fmt::format("[{},{}]", p.state_schema().min(), p.state_schema().max())
                                                 : "null");
    }
    fmt::print(
        "{{\"generation\":{},\"state\":{},\"supervisor_pid\":{},\"incumbent_pid\":{},\"build_id\":{},\"binary\":{},"
        "\"protocol\":{},\"strategy\":{},"
        "\"uptime_ms\":{},\"incumbent_uptime_ms\":{},\"restarts\":{},\"handoff_in_progress\":{},\"last_handoff\":{},"
        "\"pinned\":[{}],\"probation_left_ms\":{},\"last_revert\":{},\"takeover\":{},\"listeners\":[{}],"
        "\"daemon_status\":{}}}\n",
        s.generation(), JsonQuote(s.state()), s.supervisor_pid(), s.incumbent_pid(), JsonQuote(s.build_id()), JsonQuote(s.binary()),
        JsonQuote(s.protocol()), JsonQuote(s.strategy()),
        s.uptime_ms(), s.incumbent_uptime_ms(), s.restarts(), JsonQuote(s.handoff_in_progress()),
        s.has_last_handoff() ? ResultJson(s.last_handoff()) : "null", pinned, s.probation_left_ms(),
        JsonQuote(s.last_revert()), JsonQuote(s.takeover()), listeners, JsonQuote(s.daemon_status()));
    return kExitOk;
  }
  fmt::print("generation  {}\n", s.generation());
  fmt::print("{:<11} pid {} ({}), up {:.1f} s\n", s.state().empty() ? "serving" : s.state(), s.incumbent_pid(), s.build_id().empty() ? "-" : s.build_id(),
             static_cast<double>(s.incumbent_uptime_ms()) / 1000.0);
  if (!s.daemon_status().empty()) fmt::print("status      \"{}\"\n", Printable(s.daemon_status()));
  if (!s.protocol().empty()) {
    fmt::print("protocol    {}{}\n", s.protocol(), s.strategy().empty() ? std::string() : ", strategy " + s.strategy());
  }
  fmt::print("supervisor  pid {}, up {:.1f} s, {} restarts\n", s.supervisor_pid(),
             static_cast<double>(s.uptime_ms()) / 1000.0, s.restarts());
  for (int i = 0; i < s.listeners_size(); ++i) {
    fmt::print("{}{}\n", i == 0 ? "listeners   " : "            ", s.listeners(i));
  }
  if (!s.handoff_in_progress().empty()) fmt::print("handoff     {} in progress\n", s.handoff_in_progress());
  for (int i = 0; i < s.pinned_size(); ++i) {
    const auto& p = s.pinned(i);
    fmt::print("{}  {}{} (build id {})\n", i == 0 ? "pinned    " : "          ", i == 0 ? "" : "previous: ", p.path(),
               p.build_id().empty() ? "-" : p.build_id().substr(0, 16));
  }
  if (s.probation_left_ms() > 0) {
    fmt::print("probation   {:.1f} s left\n", static_cast<double>(s.probation_left_ms()) / 1000.0);
  }
  if (!s.last_revert().empty()) fmt::print("revert      {}\n", s.last_revert());
  if (!s.takeover().empty()) fmt::print("takeover    {}\n", s.takeover());
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
  const std::string dir = Dir(args.runtime_dir);
  auto client = AdminClient::Connect(dir);
  if (!client) {
    PrintError(client.error().message);
    // The supervisor is gone: what it wrote is still in its journal.
    std::FILE* f = args.follow ? nullptr : std::fopen((dir + "/events.jsonl").c_str(), "re");
    if (f == nullptr) return kExitUnreachable;
    PrintError(fmt::format("showing {}/events.jsonl instead", dir));
    char* line = nullptr;
    size_t cap = 0;
    for (ssize_t n; (n = ::getline(&line, &cap, f)) > 0;) {
      std::string json(line, static_cast<size_t>(n));
      if (json.back() == '\n') json.pop_back();
      fmt::print("{}\n", args.json ? json : HumanEventLine(json));
    }
    std::free(line);
    std::fclose(f);
    return kExitUnreachable;
  }
  v1::Envelope req;
  req.mutable_events_request()->set_follow(args.follow);
  if (auto st = client->Send(req); !st) return kExitUnreachable;
  for (;;) {
    auto env = client->Receive(std::nullopt);
    if (!env) return env.error().Is(Errc::kUnavailable) && !args.follow ? kExitOk : kExitUnreachable;
    if (env->has_error()) {
      PrintError(env->error().message());
      return kExitUnreachable;
    }
    if (env->has_event_record()) {
      fmt::print("{}\n", args.json ? env->event_record().json() : HumanEventLine(env->event_record().json()));
      std::fflush(stdout);
    }
  }
}

int RunMetrics(const std::string& runtime_dir) {
  auto client = ConnectOrSay(Dir(runtime_dir));
  if (!client) return kExitUnreachable;
  v1::Envelope req;
  req.mutable_metrics_request();
  if (auto st = client->Send(req); !st) return kExitUnreachable;
  auto env = client->Receive(std::chrono::milliseconds(10000));
  if (!env || !env->has_metrics_reply()) {
    PrintError(!env ? env.error().message
               : env->has_error() ? env->error().message()
                                  : "unexpected reply from the supervisor");
    return kExitUnreachable;
  }
  fmt::print("{}", env->metrics_reply().text());
  return kExitOk;
}

}  // namespace baton::cli
