// Structured logging through an injected sink. libbaton never prints on its
// own: it emits Events to the LogSink a daemon passes in DaemonOptions::log
// (default: JSON lines on stderr), and a daemon may send its own events to
// the same sink.
//
//   baton::Event e{baton::Level::kWarn, "kvd.wal", "fsync failed"};
//   sink.Emit(e.With("segment", "wal-000012"));
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "baton/errors.h"
#include "baton/export.h"

namespace baton {

enum class Level { kDebug, kInfo, kWarn, kError };
// "debug", "info", "warn", "error".
BATON_EXPORT std::string_view LevelName(Level l) noexcept;

using FieldValue = std::variant<std::string, int64_t, uint64_t, double, bool>;

struct Field {
  std::string key{};
  FieldValue value{};
};

// One structured fact: what happened, plus typed fields.
struct Event {
  Level level = Level::kInfo;
  std::string name{};     // dotted and stable, e.g. "handoff.phase"
  std::string message{};  // human text, may be empty
  std::vector<Field> fields{};

  Event& With(std::string key, FieldValue v) {
    fields.push_back({std::move(key), std::move(v)});
    return *this;
  }
  // The value of a field, or nullptr. The pointer is valid until `fields`
  // changes.
  const FieldValue* Get(std::string_view key) const {
    for (const auto& f : fields) {
      if (f.key == key) return &f.value;
    }
    return nullptr;
  }
  // A string field's value; "" when absent or not a string.
  std::string GetString(std::string_view key) const {
    const FieldValue* v = Get(key);
    const auto* s = v != nullptr ? std::get_if<std::string>(v) : nullptr;
    return s != nullptr ? *s : std::string();
  }
};

// Receives events. libbaton calls Emit from several of its threads, possibly
// at once: implementations must be thread-safe. Emit must not block for long
// (it runs on the thread that keeps the control channel alive) and must not
// throw.
class BATON_EXPORT LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Emit(const Event& e) = 0;
};

// The event as one JSON object, no trailing newline: {"ts_ms":…,"level":…,
// "event":…,"msg":…,<fields>}. `wall_ms`: milliseconds since the epoch, 0 =
// omitted.
BATON_EXPORT std::string ToJson(const Event& e, int64_t wall_ms = 0);

// A sink writing one JSON line per event at or above `min_level` to `out`
// (not owned; must outlive the sink), e.g. stderr. Thread-safe. When `out`
// is the systemd journal ($JOURNAL_STREAM names it), each line starts with
// the "<N>" syslog priority journald reads, so `journalctl -p warning` shows
// warnings.
BATON_EXPORT std::unique_ptr<LogSink> NewJsonLinesSink(std::FILE* out, Level min_level = Level::kInfo);

// Under systemd a supervised daemon's stderr is the supervisor's journal
// stream, so its lines would carry the supervisor's name. When stderr is the
// journal, this opens a journal stream of the daemon's own announcing
// `identifier` (journalctl's SYSLOG_IDENTIFIER) and "<N>" priority prefixes,
// and puts it on fd 2 (and fd 1 when stdout was the same stream). Call it
// before any thread starts (it updates $JOURNAL_STREAM). Does nothing when
// stderr is not the journal; on an error stderr stays as it was.
BATON_EXPORT Status ReopenStderrInJournal(std::string_view identifier);

}  // namespace baton
