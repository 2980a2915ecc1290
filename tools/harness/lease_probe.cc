#include "tools/harness/lease_probe.h"

#include "tools/harness/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>

#include <boost/json.hpp>

namespace baton::harness {

std::vector<LeaderInterval> LeaderIntervals(const std::string& log) {
  std::vector<LeaderInterval> out;
  std::map<std::string, size_t> open;  // holder → index in out
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"lease.leader_") == std::string::npos) continue;
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    if (!o.contains("event") || !o.contains("holder") || !o.contains("mono_us") || !o.contains("epoch")) continue;
    const std::string event(o.at("event").as_string());
    const std::string holder(o.at("holder").as_string());
    const int64_t at = o.at("mono_us").to_number<int64_t>();
    if (event == "lease.leader_start") {
      open[holder] = out.size();
      out.push_back({holder, o.at("epoch").to_number<uint64_t>(), at});
    } else if (event == "lease.leader_end" && open.count(holder) != 0) {
      out[open[holder]].end_us = at;
      open.erase(holder);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.start_us < b.start_us; });
  return out;
}

int64_t ServingEpoch(int port) {
  const std::string body = HttpBody(HttpGet(port, "/healthz"));
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("lease_epoch")) return -1;
  return v.as_object().at("lease_epoch").to_number<int64_t>();
}

int64_t MonoMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace baton::harness
