#include "supervisor/ops/config.h"

#include <signal.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>

#include <fmt/format.h>

// No exceptions cross our API: toml++ reports parse errors as values.
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include "base/duration.h"

namespace baton::supervisor {
namespace {

// Walks one parsed document, turning every key into a field or an error that
// names the file, the line and the dotted key.
class Reader {
 public:
  Reader(const std::string& source, ServiceConfig& out) : source_(source), c_(out) {}

  Status Top(const toml::table& t) {
    return EachKey(t, "", [&](const std::string& k, const toml::node& v) -> Status {
      if (k == "name") return Str(k, v, c_.name);
      if (k == "data_dir") return Str(k, v, c_.data_dir);
      if (k == "runtime_dir") return Str(k, v, c_.runtime_dir);
      if (k == "binary") return Str(k, v, c_.binary);
      if (k == "args") return StrList(k, v, c_.args);
      if (k == "allowed_binaries") return StrList(k, v, c_.allowed_binaries);
      if (k == "pass_environment") return StrList(k, v, c_.pass_environment);
      if (k == "metrics_listen") return Str(k, v, c_.metrics_listen);
      if (k == "fd_store") return Bool(k, v, c_.fd_store);
      if (k == "events_max_bytes") {
        int64_t n = 0;
        if (auto st = Int(k, v, n); !st) return st;
        if (n < 4096) return Bad(v, k, fmt::format("{} is too small (at least 4096)", n));
        c_.events_max_bytes = static_cast<uint64_t>(n);
        return {};
      }
      if (k == "max_handover_fds") {
        int64_t n = 0;
        if (auto st = Int(k, v, n); !st) return st;
        if (n < 0 || n > 65536) return Bad(v, k, fmt::format("{} is out of range (0 .. 65536)", n));
        c_.max_handover_fds = static_cast<size_t>(n);
        return {};
      }
      if (k == "admin_uids") return Uids(k, v);
      if (k == "listeners") return Listeners(v);
      if (k == "environment") return Environment(v);
      if (k == "timeouts") return Timeouts(v);
      if (k == "restart") return Restart(v);
      if (k == "lease") return Lease(v);
      if (k == "protocol") return Enum(k, v, ParseProtocol);
      if (k == "notify") return Notify(v);
      if (k == "probation") return Probation(v);
      return Unknown(v, k);
    });
  }

 private:
  using KeyFn = std::function<Status(const std::string&, const toml::node&)>;

  Error Bad(const toml::node& n, const std::string& key, const std::string& what) const {
    return Error(Errc::kInvalidArgument, fmt::format("{}:{}: {}: {}", source_, n.source().begin.line, key, what));
  }
  Error Unknown(const toml::node& n, const std::string& key) const {
    return Bad(n, key, "unknown key (see docs/operations.md for every key)");
  }

  // In file order (toml++ keeps tables sorted by key): listener order is the
  // fd order children see, and the first error in the file is reported.
  Status EachKey(const toml::table& t, const std::string& prefix, const KeyFn& fn) {
    std::vector<std::pair<std::string, const toml::node*>> keys;
    for (const auto& [key, node] : t) keys.emplace_back(std::string(key.str()), &node);
    std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
      const auto& sa = a.second->source().begin;
      const auto& sb = b.second->source().begin;
      return sa.line != sb.line ? sa.line < sb.line : sa.column < sb.column;
    });
    for (const auto& [key, node] : keys) {
      const std::string dotted = prefix.empty() ? key : prefix + "." + key;
      c_.set.insert(dotted);
      if (auto st = fn(dotted, *node); !st) return st;
    }
    return {};
  }
  Result<const toml::table*> Table(const toml::node& v, const std::string& key) const {
    if (!v.is_table()) return Bad(v, key, "expected a table, e.g. [" + key + "]");
    return v.as_table();
  }

  Status Str(const std::string& k, const toml::node& v, std::string& out) const {
    if (!v.is_string()) return Bad(v, k, "expected a string");
    out = v.as_string()->get();
    if (out.empty()) return Bad(v, k, "may not be empty");
    return {};
  }
  Status Bool(const std::string& k, const toml::node& v, bool& out) const {
    if (!v.is_boolean()) return Bad(v, k, "expected true or false");
    out = v.as_boolean()->get();
    return {};
  }
  Status Int(const std::string& k, const toml::node& v, int64_t& out) const {
    if (!v.is_integer()) return Bad(v, k, "expected an integer");
    out = v.as_integer()->get();
    return {};
  }
  Status StrList(const std::string& k, const toml::node& v, std::vector<std::string>& out) const {
    if (!v.is_array()) return Bad(v, k, "expected an array of strings, e.g. [\"a\", \"b\"]");
    out.clear();
    for (const auto& e : *v.as_array()) {
      if (!e.is_string()) return Bad(e, k, "expected an array of strings, e.g. [\"a\", \"b\"]");
      out.push_back(e.as_string()->get());
    }
    return {};
  }
  Status Dur(const std::string& k, const toml::node& v, Duration& out) const {
    if (!v.is_string()) return Bad(v, k, "expected a duration string with a unit, e.g. \"5s\" or \"250ms\"");
    auto d = ParseDuration(v.as_string()->get());
    if (!d) return Bad(v, k, d.error().message);
    if (*d <= Duration::zero()) return Bad(v, k, "must be positive");
    out = *d;
    return {};
  }

  Status Uids(const std::string& k, const toml::node& v) {
    if (!v.is_array()) return Bad(v, k, "expected an array of numeric uids, e.g. [0, 1000]");
    for (const auto& e : *v.as_array()) {
      if (!e.is_integer() || e.as_integer()->get() < 0 || e.as_integer()->get() > 0xfffffffe) {
        return Bad(e, k, "expected an array of numeric uids, e.g. [0, 1000]");
      }
      c_.admin_uids.insert(static_cast<uid_t>(e.as_integer()->get()));
    }
    return {};
  }

  Status Listeners(const toml::node& v) {
    auto t = Table(v, "listeners");
    if (!t) return t.error();
    return EachKey(**t, "listeners", [&](const std::string& k, const toml::node& n) -> Status {
      const std::string name = k.substr(std::string("listeners.").size());
      std::string addr;
      if (auto st = Str(k, n, addr); !st) return st;
      auto spec = ParseListener(name + "=" + (addr == "systemd" ? "tcp://systemd:0" : addr));
      if (!spec) return Bad(n, k, spec.error().message);
      spec->require_inherited = addr == "systemd";
      c_.listeners.push_back(*spec);
      return {};
    });
  }

  Status Environment(const toml::node& v) {
    auto t = Table(v, "environment");
    if (!t) return t.error();
    return EachKey(**t, "environment", [&](const std::string& k, const toml::node& n) -> Status {
      const std::string name = k.substr(std::string("environment.").size());
      if (name.empty() || name.find('=') != std::string::npos) return Bad(n, k, "not a valid variable name");
      if (!n.is_string()) return Bad(n, k, "expected a string");
      c_.environment[name] = n.as_string()->get();
      return {};
    });
  }

  Status Timeouts(const toml::node& v) {
    auto t = Table(v, "timeouts");
    if (!t) return t.error();
    return EachKey(**t, "timeouts", [&](const std::string& k, const toml::node& n) -> Status {
      if (Duration* field = TimeoutByName(c_, k.substr(std::string("timeouts.").size()))) return Dur(k, n, *field);
      return Unknown(n, k);
    });
  }

  Status Restart(const toml::node& v) {
    auto t = Table(v, "restart");
    if (!t) return t.error();
    return EachKey(**t, "restart", [&](const std::string& k, const toml::node& n) -> Status {
      if (k == "restart.backoff_min") return Dur(k, n, c_.restart_backoff_min);
      if (k == "restart.backoff_max") return Dur(k, n, c_.restart_backoff_max);
      return Unknown(n, k);
    });
  }

  Status Lease(const toml::node& v) {
    auto t = Table(v, "lease");
    if (!t) return t.error();
    LeaseConfig l;
    auto st = EachKey(**t, "lease", [&](const std::string& k, const toml::node& n) -> Status {
      if (k == "lease.dsn") return Str(k, n, l.dsn);
      if (k == "lease.name") return Str(k, n, l.name);
      if (k == "lease.ttl") return Dur(k, n, l.ttl);
      if (k == "lease.op_timeout") return Dur(k, n, l.op_timeout);
      if (k == "lease.seal_budget") {
        // It once existed and was read by nobody: say where the bound is.
        return Bad(n, k, "is not a setting: the seal, and the lease transfer inside it, is bounded by [timeouts] seal");
      }
      return Unknown(n, k);
    });
    if (!st) return st;
    if (l.dsn.empty() || l.name.empty()) return Bad(v, "lease", "needs both dsn and name");
    if (l.op_timeout >= l.ttl) return Bad(v, "lease", "op_timeout must be shorter than ttl");
    c_.lease = l;
    return {};
  }

  Status Enum(const std::string& k, const toml::node& v, Status (*parse)(std::string_view, NotifyOptions&)) {
    std::string text;
    if (auto st = Str(k, v, text); !st) return st;
    if (auto st = parse(text, c_.notify); !st) return Bad(v, k, st.error().message);
    return {};
  }

  Status Notify(const toml::node& v) {
    auto t = Table(v, "notify");
    if (!t) return t.error();
    NotifyOptions& n = c_.notify;
    return EachKey(**t, "notify", [&](const std::string& k, const toml::node& x) -> Status {
      if (k == "notify.strategy") return Enum(k, x, ParseStrategy);
      if (k == "notify.ready_timeout") return Dur(k, x, n.ready);
      if (k == "notify.probe_interval") return Dur(k, x, n.probe_interval);
      if (k == "notify.watchdog") return Dur(k, x, n.watchdog);
      if (k == "notify.stop_signal") {
        std::string name;
        if (auto st = Str(k, x, name); !st) return st;
        const int sig = SignalByName(name);
        if (sig <= 0) return Bad(x, k, fmt::format("'{}' is not a signal (e.g. \"SIGTERM\", \"SIGINT\", \"SIGQUIT\")", name));
        n.stop_signal = sig;
        return {};
      }
      if (k == "notify.readiness") {
        std::string r;
        if (auto st = Str(k, x, r); !st) return st;
        n.readiness = r == "notify" ? NotifyOptions::Readiness::kNotify : NotifyOptions::Readiness::kProbe;
        if (r == "tcp") n.probe.kind = ProbeSpec::Kind::kTcp;
        else if (r == "http") n.probe.kind = ProbeSpec::Kind::kHttp;
        else if (r == "exec") n.probe.kind = ProbeSpec::Kind::kExec;
        else if (r != "notify") return Bad(x, k, fmt::format("'{}': expected \"notify\", \"tcp\", \"http\" or \"exec\"", r));
        return {};
      }
      if (k == "notify.probe_address") return Address(k, x, n.probe);
      if (k == "notify.probe_path") {
        if (auto st = Str(k, x, n.probe.path); !st) return st;
        if (n.probe.path.front() != '/') return Bad(x, k, "must start with '/'");
        return {};
      }
      if (k == "notify.probe_command") return Str(k, x, n.probe.command);
      if (k == "notify.fd_store_max") {
        int64_t m = 0;
        if (auto st = Int(k, x, m); !st) return st;
        if (m < 0 || m > 1024) return Bad(x, k, fmt::format("{} is out of range (0 .. 1024)", m));
        n.fd_store_max = static_cast<size_t>(m);
        return {};
      }
      return Unknown(x, k);
    });
  }

  // `probation = "30s"` alone, or a table with the window and the rest.
  Status Probation(const toml::node& v) {
    ProbationOptions& p = c_.probation;
    if (v.is_string()) return ProbationWindow("probation", v);
    auto t = Table(v, "probation");
    if (!t) return t.error();
    return EachKey(**t, "probation", [&](const std::string& k, const toml::node& x) -> Status {
      if (k == "probation.window") return ProbationWindow(k, x);
      if (k == "probation.probe") {
        std::string r;
        if (auto st = Str(k, x, r); !st) return st;
        p.probe_enabled = true;
        if (r == "tcp") p.probe.kind = ProbeSpec::Kind::kTcp;
        else if (r == "http") p.probe.kind = ProbeSpec::Kind::kHttp;
        else if (r == "exec") p.probe.kind = ProbeSpec::Kind::kExec;
        else return Bad(x, k, fmt::format("'{}': expected \"http\", \"tcp\" or \"exec\"", r));
        return {};
      }
      if (k == "probation.probe_address") return Address(k, x, p.probe);
      if (k == "probation.probe_path") {
        if (auto st = Str(k, x, p.probe.path); !st) return st;
        if (p.probe.path.front() != '/') return Bad(x, k, "must start with '/'");
        return {};
      }
      if (k == "probation.probe_command") return Str(k, x, p.probe.command);
      if (k == "probation.probe_interval") return Dur(k, x, p.probe_interval);
      if (k == "probation.probe_failures") return Count(k, x, p.probe_failures, 1, 1000);
      if (k == "probation.keep_binaries") {
        uint32_t n = 0;
        if (auto st = Count(k, x, n, 1, 16); !st) return st;
        p.keep_binaries = n;
        return {};
      }
      if (k == "probation.crash_loop_limit") return Count(k, x, p.crash_loop_limit, 0, 1000);
      if (k == "probation.crash_loop_window") return Dur(k, x, p.crash_loop_window);
      if (k == "probation.crash_loop_revert") return Bool(k, x, p.crash_loop_revert);
      return Unknown(x, k);
    });
  }
  Status ProbationWindow(const std::string& k, const toml::node& v) {
    if (v.is_string() && v.as_string()->get() == "0") {
      c_.probation.window = Duration::zero();
      return {};
    }
    return Dur(k, v, c_.probation.window);
  }
  Status Count(const std::string& k, const toml::node& v, uint32_t& out, int64_t lo, int64_t hi) {
    int64_t n = 0;
    if (auto st = Int(k, v, n); !st) return st;
    if (n < lo || n > hi) return Bad(v, k, fmt::format("{} is out of range ({} .. {})", n, lo, hi));
    out = static_cast<uint32_t>(n);
    return {};
  }
  Status Address(const std::string& k, const toml::node& x, ProbeSpec& probe) {
    std::string a;
    if (auto st = Str(k, x, a); !st) return st;
    const auto colon = a.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        std::from_chars(a.data() + colon + 1, a.data() + a.size(), port).ec != std::errc() || port <= 0 ||
        port > 65535) {
      return Bad(x, k, fmt::format("'{}': expected HOST:PORT with a numeric host, e.g. \"127.0.0.1:8081\"", a));
    }
    probe.host = a.substr(0, colon);
    probe.port = port;
    return {};
  }

  static int SignalByName(const std::string& name) {
    static constexpr std::pair<std::string_view, int> kSignals[] = {
        {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT}, {"SIGHUP", SIGHUP},
        {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH}, {"SIGKILL", SIGKILL}};
    for (const auto& [n, s] : kSignals) {
      if (n == name) return s;
    }
    return 0;
  }

  const std::string& source_;
  ServiceConfig& c_;
};

}  // namespace

Duration* TimeoutByName(ServiceConfig& c, std::string_view name) {
  struct Named {
    std::string_view name;
    Duration* (*field)(ServiceConfig&);
  };
  static constexpr Named kTimeouts[] = {
      {"hello", [](ServiceConfig& s) { return &s.timeouts.hello; }},
      {"warm", [](ServiceConfig& s) { return &s.timeouts.warm; }},
      {"drain", [](ServiceConfig& s) { return &s.timeouts.drain; }},
      {"seal", [](ServiceConfig& s) { return &s.timeouts.seal; }},
      {"begin", [](ServiceConfig& s) { return &s.timeouts.begin; }},
      {"commit", [](ServiceConfig& s) { return &s.timeouts.commit; }},
      {"resume", [](ServiceConfig& s) { return &s.timeouts.resume; }},
      {"term_grace", [](ServiceConfig& s) { return &s.timeouts.term_grace; }},
      {"handoff", [](ServiceConfig& s) { return &s.timeouts.handoff; }},
      {"heartbeat", [](ServiceConfig& s) { return &s.heartbeat; }},
      {"liveness", [](ServiceConfig& s) { return &s.liveness; }},
  };
  for (const auto& t : kTimeouts) {
    if (t.name == name) return t.field(c);
  }
  return nullptr;
}

Result<ServiceConfig> ParseConfig(std::string_view text, const std::string& source) {
  toml::parse_result parsed = toml::parse(text, std::string_view(source));
  if (!parsed) {
    const auto& e = parsed.error();
    return Error(Errc::kInvalidArgument,
                 fmt::format("{}:{}: {}", source, e.source().begin.line, std::string(e.description())));
  }
  ServiceConfig c;
  Reader reader(source, c);
  if (auto st = reader.Top(parsed.table()); !st) return st.error();
  return c;
}

Status ParseProtocol(std::string_view text, NotifyOptions& out) {
  if (text == "baton") out.protocol = ChildProtocol::kBaton;
  else if (text == "notify") out.protocol = ChildProtocol::kNotify;
  else return Error(Errc::kInvalidArgument, fmt::format("protocol '{}': expected \"baton\" or \"notify\"", text));
  return {};
}

Status ParseStrategy(std::string_view text, NotifyOptions& out) {
  if (text == "overlap") out.strategy = NotifyStrategy::kOverlap;
  else if (text == "sequential") out.strategy = NotifyStrategy::kSequential;
  else return Error(Errc::kInvalidArgument, fmt::format("strategy '{}': expected \"overlap\" or \"sequential\"", text));
  return {};
}

Result<ServiceConfig> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoError(fmt::format("config {}", path), errno);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

namespace {

Status ValidateNotify(const ServiceConfig& c) {
  const NotifyOptions& n = c.notify;
  const bool any_notify_key = std::any_of(c.set.begin(), c.set.end(), [](const std::string& k) {
    return k.rfind("notify.", 0) == 0 && k != "notify.fd_store_max" && k != "notify.watchdog";
  });
  if (n.protocol != ChildProtocol::kNotify) {
    if (any_notify_key) {
      return Error(Errc::kInvalidArgument,
                   "[notify] strategy, readiness and probes apply to protocol = \"notify\" only (protocol is \"baton\")");
    }
    return {};
  }
  if (n.readiness != NotifyOptions::Readiness::kProbe) return {};
  if (n.probe.kind == ProbeSpec::Kind::kExec) {
    if (n.probe.command.empty()) return Error(Errc::kInvalidArgument, "notify.readiness = \"exec\" needs notify.probe_command");
    return {};
  }
  if (n.probe.host.empty()) {
    return Error(Errc::kInvalidArgument, "notify.readiness = \"tcp\"/\"http\" needs notify.probe_address (HOST:PORT)");
  }
  for (const auto& l : c.listeners) {
    if (l.kind != ListenerSpec::Kind::kTcp || l.port != n.probe.port) continue;
    // The supervisor holds the listeners: the kernel completes a connect to
    // them whether or not any generation accepts, so a tcp probe there
    // proves nothing. With overlap both generations answer HTTP there too.
    if (n.probe.kind == ProbeSpec::Kind::kTcp) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("notify.probe_address: port {} is listener {}'s, held open by the supervisor, so a "
                               "tcp connect there always succeeds; probe an address only the daemon binds, or use "
                               "readiness \"http\", \"notify\" or \"exec\"",
                               n.probe.port, l.name));
    }
    if (n.strategy == NotifyStrategy::kOverlap) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("notify.probe_address: port {} is listener {}'s; with strategy \"overlap\" the old "
                               "generation answers there too. Probe an address only the new one serves, use "
                               "readiness \"notify\" or \"exec\", or strategy \"sequential\"",
                               n.probe.port, l.name));
    }
  }
  return {};
}

}  // namespace

Status ValidateConfig(const ServiceConfig& c) {
  if (c.binary.empty()) return Error(Errc::kInvalidArgument, "no daemon binary (config 'binary' or after --)");
  if (c.data_dir.empty()) return Error(Errc::kInvalidArgument, "no data dir (config 'data_dir' or --data-dir)");
  if (c.listeners.empty()) return Error(Errc::kInvalidArgument, "no listener (config [listeners] or --listen)");
  if (c.restart_backoff_min > c.restart_backoff_max) {
    return Error(Errc::kInvalidArgument, "restart.backoff_min is larger than restart.backoff_max");
  }
  if (c.heartbeat >= c.liveness) {
    return Error(Errc::kInvalidArgument, "timeouts.heartbeat must be shorter than timeouts.liveness");
  }
  if (c.heartbeat < milliseconds(1) || c.liveness > std::chrono::hours(24)) {
    return Error(Errc::kInvalidArgument, "timeouts.heartbeat/liveness out of range (1 ms .. 24 h)");
  }
  if (auto st = ValidateNotify(c); !st) return st;
  if (c.probation.probe_enabled) {
    const auto& p = c.probation.probe;
    if (p.kind == ProbeSpec::Kind::kExec ? p.command.empty() : p.host.empty()) {
      return Error(Errc::kInvalidArgument, p.kind == ProbeSpec::Kind::kExec
                                               ? "probation.probe = \"exec\" needs probation.probe_command"
                                               : "probation.probe = \"tcp\"/\"http\" needs probation.probe_address");
    }
    for (const auto& l : c.listeners) {
      if (p.kind == ProbeSpec::Kind::kTcp && l.kind == ListenerSpec::Kind::kTcp && l.port == p.port) {
        return Error(Errc::kInvalidArgument,
                     fmt::format("probation.probe_address: port {} is listener {}'s, held open by the supervisor, "
                                 "so a tcp connect there always succeeds; use probe \"http\" there, or probe an "
                                 "address only the daemon binds",
                                 p.port, l.name));
      }
    }
  }
  for (const auto& b : c.allowed_binaries) {
    if (b.empty() || b.front() != '/') {
      return Error(Errc::kInvalidArgument, fmt::format("allowed_binaries: '{}' is not an absolute path", b));
    }
  }
  return {};
}

}  // namespace baton::supervisor
