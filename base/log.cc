#include "base/log.h"

#include <chrono>
#include <cmath>

#include "base/journal_stream.h"
#include "base/utf8.h"

namespace baton {

std::string_view LevelName(Level l) noexcept {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "unknown";
}

std::string JsonQuote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  while (!s.empty()) {
    const unsigned char c = static_cast<unsigned char>(s.front());
    if (c >= 0x80) {
      // JSON is UTF-8: a well-formed sequence is kept, each byte of an
      // ill-formed one becomes U+FFFD, so the output always parses.
      const size_t n = Utf8SequenceLength(s);
      if (n == 0) {
        out += "\\ufffd";
        s.remove_prefix(1);
      } else {
        out.append(s.substr(0, n));
        s.remove_prefix(n);
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    s.remove_prefix(1);
  }
  out.push_back('"');
  return out;
}

namespace {

std::string RenderValue(const FieldValue& v) {
  struct Visitor {
    std::string operator()(const std::string& s) const { return JsonQuote(s); }
    std::string operator()(int64_t i) const { return fmt::format("{}", i); }
    std::string operator()(uint64_t u) const { return fmt::format("{}", u); }
    std::string operator()(double d) const {
      return std::isfinite(d) ? fmt::format("{}", d) : std::string("null");
    }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
  };
  return std::visit(Visitor{}, v);
}

}  // namespace

std::string ToJson(const Event& e, int64_t wall_ms) {
  std::string out = "{";
  if (wall_ms != 0) out += fmt::format("\"ts_ms\":{},", wall_ms);
  out += fmt::format("\"level\":{},\"event\":{}", JsonQuote(LevelName(e.level)), JsonQuote(e.name));
  if (!e.message.empty()) out += fmt::format(",\"msg\":{}", JsonQuote(e.message));
  for (const auto& f : e.fields) {
    out += fmt::format(",{}:{}", JsonQuote(f.key), RenderValue(f.value));
  }
  out += "}";
  return out;
}

void JsonLinesSink::Emit(const Event& e) {
  if (e.level < min_level_) return;
  const int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  // When `out_` is the journal, the "<N>" prefix is the line's syslog
  // priority to journald (base/journal_stream.h); without it every line is
  // filed at info, warnings included. Checked per line (an fstat) because
  // lines are few and stderr may be re-pointed after the sink was made.
  std::string line = IsJournalStream(::fileno(out_)) ? fmt::format("<{}>", JournalPriority(e.level)) : std::string();
  line += ToJson(e, wall_ms);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

std::unique_ptr<LogSink> NewJsonLinesSink(std::FILE* out, Level min_level) {
  return std::make_unique<JsonLinesSink>(out, min_level);
}

bool RecordingSink::Has(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : events_) {
    if (e.name == name) return true;
  }
  return false;
}

}  // namespace baton
