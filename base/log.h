// Structured logging through an injected sink. The library never prints on
// its own: components take a LogSink& and emit Events (both public, in
// baton/log.h); the process decides where they go (JSON lines on stderr, a
// file, a test recorder). MakeEvent builds one with fmt formatting.
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "baton/log.h"

namespace baton {

// JSON string escaping (quotes included).
std::string JsonQuote(std::string_view s);

// Writes JSON lines to a FILE* (not owned), e.g. stderr.
class JsonLinesSink final : public LogSink {
 public:
  explicit JsonLinesSink(std::FILE* out, Level min_level = Level::kInfo)
      : out_(out), min_level_(min_level) {}
  void Emit(const Event& e) override;

 private:
  std::mutex mu_;
  std::FILE* out_;
  Level min_level_;
};

class NullSink final : public LogSink {
 public:
  void Emit(const Event&) override {}
};

// Keeps every event; for tests.
class RecordingSink final : public LogSink {
 public:
  void Emit(const Event& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(e);
  }
  std::vector<Event> Events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  bool Has(std::string_view name) const;

 private:
  mutable std::mutex mu_;
  std::vector<Event> events_;
};

// Convenience: sink.Emit(MakeEvent(Level::kInfo, "child.exit", "pid {} exited", pid)).
template <class... Args>
Event MakeEvent(Level level, std::string name, fmt::format_string<Args...> f, Args&&... args) {
  Event e;
  e.level = level;
  e.name = std::move(name);
  e.message = fmt::format(f, std::forward<Args>(args)...);
  return e;
}

}  // namespace baton
