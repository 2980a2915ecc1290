// Shared pieces of the unmodified-daemon tests: a cluster running sdkv (or
// sdkv.py, or a Debian daemon) under `baton supervise --protocol notify`
// with a config file, and readers for its events and metrics.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/integration_util.h"
#include "tools/harness/cluster.h"
#include "tools/harness/http.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {

// A cluster whose daemon is `binary` (default sdkv) with `config` (TOML
// appended to `protocol = "notify"`) and short deadlines.
struct NotifyCluster {
  TempDir conf{"nc"};
  std::unique_ptr<Cluster> c;

  // In `config` and in files written later with Write(), @PORT@ stands for
  // the cluster's port and @CONF@ for a directory of the test's own.
  // `env`: for the supervisor (and so its children), e.g. BATON_CRASH_AT.
  explicit NotifyCluster(const std::string& config, std::vector<std::string> args = {},
                         const std::string& binary = BinPath("sdkv"), std::vector<std::string> extra_flags = {},
                         std::vector<std::string> env = {}) {
    const std::string path = conf.path() + "/baton.toml";
    Cluster::Options o;
    o.binary = binary;
    o.env = std::move(env);
    for (auto& a : args) o.kvd_args.push_back(Expand(a, 0));
    o.supervise_args = {"--config", path, "--timeout", "drain=3s", "--timeout", "term-grace=2s"};
    for (auto& f : extra_flags) o.supervise_args.push_back(std::move(f));
    c = std::make_unique<Cluster>(o);
    Write("baton.toml", "protocol = \"notify\"\n" + config + "\n");
  }
  std::string Expand(std::string text, int port) const {
    for (auto [key, value] : {std::pair<std::string, std::string>{"@PORT@", std::to_string(port)}, {"@CONF@", conf.path()}}) {
      if (port == 0 && key == "@PORT@") continue;
      for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at)) text.replace(at, key.size(), value);
    }
    return text;
  }
  // Writes `name` in the test's own directory; its path.
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string path = conf.path() + "/" + name;
    std::ofstream(path) << Expand(text, c->port());
    return path;
  }
  Cluster& operator*() { return *c; }
  Cluster* operator->() { return c.get(); }

  // The events journal as text.
  std::string Events() const { return ReadAll(c->dir() + "/run/events.jsonl"); }
  size_t CountEvents(const std::string& name) const {
    const std::string text = Events();
    const std::string needle = "\"event\":\"" + name + "\"";
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }
  bool WaitForEvent(const std::string& name, std::chrono::milliseconds timeout) const {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (CountEvents(name) > 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  std::string Metrics() const {
    return RunCommand({BinPath("baton"), "metrics", "--runtime-dir", c->dir() + "/run"}, std::chrono::seconds(20)).out;
  }
  std::string Healthz() { return HttpBody(HttpGet(c->port(), "/healthz")); }
  // Waits until a generation other than `not_pid` serves; its pid.
  pid_t WaitForNewIncumbent(pid_t not_pid, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      const pid_t p = c->IncumbentPid();
      if (p > 0 && p != not_pid && c->Healthy()) return p;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
};

// The value of one sample line of the metrics text ("name{labels} value").
inline double MetricValue(const std::string& text, const std::string& sample) {
  const auto at = text.find(sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + sample.size() + 1));
}

// Sends `payload` to a notify socket from this process (not the child: forged).
inline void SendDatagram(const std::string& path, const std::string& payload) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  const int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  (void)::sendto(s, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::close(s);
}

inline std::string Reason(const CommandResult& r) {
  if (!r.json.is_object() || !r.json.as_object().contains("reason")) return r.out + r.err;
  return std::string(r.json.at("reason").as_string());
}

}  // namespace baton::harness
