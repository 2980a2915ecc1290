// Structured logging through an injected sink. The library never prints on
// its own: components take a LogSink& and emit Events; the process decides
// where they go (JSON lines on stderr, a file, a test recorder).
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

namespace baton {

enum class Level { kDebug, kInfo, kWarn, kError };
std::string_view LevelName(Level l);

using FieldValue = std::variant<std::string, int64_t, uint64_t, double, bool>;

struct Field {
  std::string key;
  FieldValue value;
};

// One structured fact: "what happened" plus typed fields.
struct Event {
  Level level = Level::kInfo;
  std::string name;     // dotted, stable, e.g. "handoff.phase"
  std::string message;  // human text, may be empty
  std::vector<Field> fields;

  Event& With(std::string key, FieldValue v) {
    fields.push_back({std::move(key), std::move(v)});
    return *this;
  }
  // The value of a field, or nullptr.
  const FieldValue* Get(std::string_view key) const;
  // A string field's value; "" when absent or not a string.
  std::string GetString(std::string_view key) const;
};

// Receives events. Emit may be called from any thread; implementations
// serialise as needed.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Emit(const Event& e) = 0;
};

// Renders an event as one JSON object (no trailing newline). `wall_ms` is the
// wall-clock timestamp in milliseconds since the epoch (0 = omit).
std::string ToJson(const Event& e, int64_t wall_ms = 0);
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

// Convenience: Log(sink, Level::kInfo, "child.exit", "pid {} exited", pid).
template <class... Args>
Event MakeEvent(Level level, std::string name, fmt::format_string<Args...> f, Args&&... args) {
  Event e;
  e.level = level;
  e.name = std::move(name);
  e.message = fmt::format(f, std::forward<Args>(args)...);
  return e;
}

}  // namespace baton
