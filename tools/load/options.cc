#include "tools/load/options.h"

#include <fmt/format.h>

#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cmath>
#include <system_error>

namespace baton::load {
namespace {

Error Invalid(std::string msg) { return Error(Errc::kInvalidArgument, std::move(msg)); }

// sun_path is 108 bytes including the terminating NUL.
constexpr std::size_t kMaxUnixPath = 107;

Result<uint16_t> ParsePort(std::string_view s, std::string_view url) {
  unsigned value = 0;
  const auto* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, value);
  if (s.empty() || ec != std::errc() || p != end || value == 0 || value > 65535) {
    return Invalid(fmt::format("target {}: bad port '{}'", url, s));
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

std::string Target::HostHeader() const {
  if (kind == Kind::kUnix) return "localhost";
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string Target::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  return "http://" + HostHeader();
}

Result<Target> ParseTarget(std::string_view url) {
  Target t;
  if (url.starts_with("unix:")) {
    t.kind = Target::Kind::kUnix;
    t.path = std::string(url.substr(5));
    if (t.path.empty()) return Invalid(fmt::format("target {}: empty unix socket path", url));
    if (t.path.size() > kMaxUnixPath) {
      return Invalid(fmt::format("target {}: unix socket path longer than {} bytes", url, kMaxUnixPath));
    }
    return t;
  }
  if (url.starts_with("https://")) {
    return Invalid(fmt::format("target {}: https is not supported, use http://", url));
  }
  if (!url.starts_with("http://")) {
    return Invalid(fmt::format("target {}: expected http://HOST:PORT or unix:/PATH", url));
  }
  std::string_view rest = url.substr(7);
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) {
    return Invalid(fmt::format("target {}: a path is not supported (kvd serves /kv/ and /healthz)", url));
  }
  std::string_view host;
  std::string_view port;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return Invalid(fmt::format("target {}: missing ']'", url));
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return Invalid(fmt::format("target {}: junk after ']'", url));
      port = after.substr(1);
      if (port.empty()) return Invalid(fmt::format("target {}: empty port", url));
    }
  } else {
    const auto colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return Invalid(fmt::format("target {}: empty port", url));
    }
  }
  if (host.empty()) return Invalid(fmt::format("target {}: empty host", url));
  if (!port.empty()) {
    auto p = ParsePort(port, url);
    if (!p) return p.error();
    t.port = *p;
  }
  if (host == "localhost") {
    t.host = "127.0.0.1";
    return t;
  }
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) {
    return Invalid(fmt::format("target {}: host '{}' is not an IP address or localhost", url, host));
  }
  if (!addr.is_loopback()) {
    return Invalid(
        fmt::format("target {}: {} is not a loopback address; baton-load only drives "
                    "local targets",
                    url, host));
  }
  t.host = addr.to_string();
  return t;
}

Status Validate(const LoadOptions& o) {
  if (o.connections < 1 || o.connections > 10000) {
    return Invalid(fmt::format("--connections {}: must be in 1..10000", o.connections));
  }
  if (o.duration <= Duration::zero()) return Invalid("--duration: must be positive");
  if (o.duration > std::chrono::hours(24)) return Invalid("--duration: at most 24h");
  if (!(o.write_ratio >= 0.0 && o.write_ratio <= 1.0)) {
    return Invalid(fmt::format("--write-ratio {}: must be in [0, 1]", o.write_ratio));
  }
  if (o.value_size < 1 || o.value_size > (1u << 20)) {
    return Invalid(fmt::format("--value-size {}: must be in 1..1048576", o.value_size));
  }
  if (o.request_timeout <= Duration::zero()) return Invalid("--request-timeout: must be positive");
  if (o.verify_timeout <= Duration::zero()) return Invalid("--verify-timeout: must be positive");
  if (!(o.rate_limit >= 0.0) || !std::isfinite(o.rate_limit)) {
    return Invalid(fmt::format("--rate-limit {}: must be >= 0", o.rate_limit));
  }
  if (o.verify_connections < 1) return Invalid("--verify-connections: must be >= 1");
  if (o.gaps_over && *o.gaps_over < Duration::zero()) return Invalid("--gaps-over: must be >= 0");
  if (!(o.idle_fraction >= 0.0 && o.idle_fraction <= 1.0)) {
    return Invalid(fmt::format("--idle-fraction {}: must be in [0, 1]", o.idle_fraction));
  }
  if (o.idle_fraction > 0) {
    if (o.close_mode) return Invalid("--idle-fraction: only for keep-alive connections (not with --close)");
    if (o.burst <= Duration::zero()) return Invalid("--burst: must be positive");
    if (o.idle <= Duration::zero()) return Invalid("--idle: must be positive");
  }
  if (o.watches < 0 || o.watches > 10000) return Invalid(fmt::format("--watches {}: must be in 0..10000", o.watches));
  if (o.watch_from && *o.watch_from == 0) return Invalid("--watch-from: revisions start at 1");
  if (o.watch_wait < Duration::zero()) return Invalid("--watch-wait: must be >= 0");
  return {};
}

}  // namespace baton::load
