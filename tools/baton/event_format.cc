#include "tools/baton/event_format.h"

#include <time.h>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace baton::cli {
namespace {

std::string Str(const boost::json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return "";
  return std::string(it->value().as_string());
}

std::string Timestamp(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000);
  tm t{};
  ::gmtime_r(&secs, &t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour,
                     t.tm_min, t.tm_sec, ms % 1000);
}

}  // namespace

std::string HumanEventLine(const std::string& json) {
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return json;
  const auto& o = v.as_object();
  std::string ts = "-";
  if (auto it = o.find("ts_ms"); it != o.end() && it->value().is_int64()) ts = Timestamp(it->value().as_int64());
  return fmt::format("{} {:<5} {:<22} {}", ts, Str(o, "level"), Str(o, "event"), Str(o, "msg"));
}

}  // namespace baton::cli
