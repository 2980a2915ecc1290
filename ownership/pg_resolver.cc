#include "ownership/pg_resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace baton::ownership::pg {
namespace {

namespace asio = boost::asio;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::optional<std::string> Get(const ConnInfo& info, std::string_view key) {
  for (const auto& [k, v] : info) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t start = 0;
  for (;;) {
    const size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool IsSocket(const std::string& host) { return host.empty() || host[0] == '/' || host[0] == '@'; }

bool IsNumeric(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// The host list libpq would use: the DSN's, else PGHOST's.
std::string Hosts(const ConnInfo& info) { return Get(info, "host").value_or(Env("PGHOST")); }

}  // namespace

std::vector<std::string> NamesToResolve(const ConnInfo& info) {
  if (Get(info, "hostaddr") || (!Get(info, "host") && !Env("PGHOSTADDR").empty())) return {};
  std::vector<std::string> names;
  for (const auto& h : Split(Hosts(info))) {
    if (IsSocket(h) || IsNumeric(h)) continue;
    if (std::find(names.begin(), names.end(), h) == names.end()) names.push_back(h);
  }
  return names;
}

Result<ConnInfo> WithHostAddrs(const ConnInfo& info, const Addresses& addrs) {
  const std::vector<std::string> hosts = Split(Hosts(info));
  const std::vector<std::string> ports = Split(Get(info, "port").value_or(Env("PGPORT")));
  // A port list that matches no host list is libpq's to report.
  if (ports.size() > 1 && ports.size() != hosts.size()) return info;
  std::vector<std::string> h, a, p;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const std::string& host = hosts[i];
    const std::string port = ports.size() > 1 ? ports[i] : (ports.size() == 1 ? ports[0] : "");
    if (IsSocket(host) || IsNumeric(host)) {
      h.push_back(host);
      a.push_back(IsSocket(host) ? "" : host);
      p.push_back(port);
      continue;
    }
    auto it = addrs.of.find(host);
    if (it == addrs.of.end()) continue;
    for (const auto& addr : it->second) {
      h.push_back(host);
      a.push_back(addr);
      p.push_back(port);
    }
  }
  if (h.empty()) {
    return Error(Errc::kUnavailable, addrs.error.empty() ? std::string("no host address to connect to") : addrs.error);
  }
  ConnInfo out;
  for (const auto& kv : info) {
    if (kv.first != "host" && kv.first != "hostaddr" && kv.first != "port") out.push_back(kv);
  }
  out.emplace_back("host", fmt::format("{}", fmt::join(h, ",")));
  out.emplace_back("hostaddr", fmt::format("{}", fmt::join(a, ",")));
  if (!ports.empty()) out.emplace_back("port", fmt::format("{}", fmt::join(p, ",")));
  return out;
}

// One lookup. `result` is written by the lookup's thread before it posts
// the completion; the executor's thread reads it only after running that
// completion (the post orders the two).
struct Resolver::Lookup {
  std::vector<std::string> names;
  Addresses result;
  bool done = false;              // executor thread
  std::function<void()> on_done;  // executor thread
  std::mutex mu;
  std::optional<asio::any_io_executor> ex;  // guarded by mu; reset once nobody waits
};

Resolver::Resolver(asio::any_io_executor ex) : ex_(std::move(ex)) {}

Resolver::~Resolver() { Abandon(); }

void Resolver::Abandon() {
  if (!inflight_) return;
  inflight_->on_done = nullptr;
  std::lock_guard<std::mutex> lock(inflight_->mu);
  inflight_->ex.reset();
  inflight_.reset();
}

asio::awaitable<Result<Addresses>> Resolver::Resolve(std::vector<std::string> names, TimePoint deadline) {
  if (inflight_ && inflight_->names != names) Abandon();
  if (!inflight_) {
    auto l = std::make_shared<Lookup>();
    l->names = names;
    l->ex = ex_;
    inflight_ = l;
    std::thread([l] {
      Addresses a;
      for (const auto& name : l->names) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
        auto& list = a.of[name];
        if (rc != 0) {
          a.error = fmt::format("resolve host '{}': {}", name, ::gai_strerror(rc));
          continue;
        }
        for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
          char text[INET6_ADDRSTRLEN] = {};
          const void* src = ai->ai_family == AF_INET6
                                ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr)
                                : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr);
          if (::inet_ntop(ai->ai_family, src, text, sizeof(text)) == nullptr) continue;
          if (std::find(list.begin(), list.end(), text) == list.end()) list.push_back(text);
        }
        ::freeaddrinfo(res);
      }
      l->result = std::move(a);
      std::lock_guard<std::mutex> lock(l->mu);
      if (l->ex) {
        asio::post(*l->ex, [l] {
          l->done = true;
          if (l->on_done) l->on_done();
        });
      }
    }).detach();
  }
  auto l = inflight_;
  if (!l->done) {
    asio::steady_timer timer(ex_, deadline);
    l->on_done = [&timer] { timer.cancel(); };
    co_await timer.async_wait(kTuple);
    l->on_done = nullptr;
  }
  if (!l->done) {
    co_return Error(Errc::kDeadlineExceeded,
                    fmt::format("resolve host {}: no answer from the resolver in time", fmt::join(names, ",")));
  }
  if (inflight_ == l) inflight_.reset();
  co_return std::move(l->result);
}

}  // namespace baton::ownership::pg
