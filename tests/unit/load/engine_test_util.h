// Shared by the engine tests: the options of a short run against the
// in-process KV server, and a report rendered for failure messages.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tools/load/options.h"
#include "tools/load/report.h"

namespace baton::load::test {

inline LoadOptions EngineOptions(const std::string& url, Duration duration = milliseconds(800)) {
  LoadOptions o;
  auto target = ParseTarget(url);
  EXPECT_TRUE(target) << url;
  if (target) o.target = *target;
  o.connections = 4;
  o.duration = duration;
  o.seed = 1234;
  o.request_timeout = seconds(5);
  o.verify_timeout = seconds(30);
  return o;
}

inline std::string Describe(const LoadReport& r) { return FormatJson(r); }

}  // namespace baton::load::test
