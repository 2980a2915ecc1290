#include "tools/load/watch_parse.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace baton::load {
namespace {

// Digits at the start of `s`; false if there are none or they overflow.
bool LeadingUint(std::string_view s, uint64_t& out) {
  const auto* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && p != s.data();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

WatchLine ParseWatchLine(std::string_view line) {
  WatchLine w;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  constexpr std::string_view kRev = "{\"rev\":";
  if (line.starts_with(kRev)) {
    std::string_view rest = line.substr(kRev.size());
    uint64_t rev = 0;
    if (!LeadingUint(rest, rev)) return w;
    const std::size_t digits = rest.find_first_not_of("0123456789");
    if (digits == std::string_view::npos || (rest[digits] != ',' && rest[digits] != '}') || !line.ends_with('}')) {
      return w;
    }
    w.kind = WatchLine::Kind::kEvent;
    w.rev = rev;
    return w;
  }
  constexpr std::string_view kOldest = "\"oldest\":";
  const auto oldest = line.find(kOldest);
  if (line.starts_with('{') && line.ends_with('}') && line.find("\"error\":\"compacted\"") != std::string_view::npos &&
      oldest != std::string_view::npos && LeadingUint(line.substr(oldest + kOldest.size()), w.oldest)) {
    w.kind = WatchLine::Kind::kCompacted;
  }
  return w;
}

Status WatchResponseParser::Fail(std::string msg) {
  state_ = State::kFailed;
  return Error(Errc::kProtocolError, "watch: " + std::move(msg));
}

Status WatchResponseParser::ParseHeaders(std::string_view head) {
  // head: everything before the blank line, lines separated by CRLF.
  std::size_t eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (!status_line.starts_with("HTTP/1.")) return Fail(fmt::format("bad status line '{}'", status_line));
  const auto sp = status_line.find(' ');
  uint64_t code = 0;
  if (sp == std::string_view::npos || !LeadingUint(status_line.substr(sp + 1), code) || code < 100 || code > 999) {
    return Fail(fmt::format("bad status line '{}'", status_line));
  }
  status_ = static_cast<unsigned>(code);
  while (eol != std::string_view::npos) {
    const std::size_t start = eol + 2;
    eol = head.find("\r\n", start);
    const std::string_view field = head.substr(start, eol == std::string_view::npos ? head.npos : eol - start);
    const auto colon = field.find(':');
    if (colon == std::string_view::npos) return Fail(fmt::format("bad header line '{}'", field));
    const std::string name = Lower(Trim(field.substr(0, colon)));
    const std::string value = Lower(Trim(field.substr(colon + 1)));
    if (name == "transfer-encoding") {
      chunked_ = value.find("chunked") != std::string::npos;
    } else if (name == "content-length") {
      if (!LeadingUint(value, remaining_)) return Fail(fmt::format("bad Content-Length '{}'", value));
      has_length_ = true;
    }
  }
  if (status_ == 200) {
    if (!chunked_) return Fail("a 200 answer to /watch must be chunked");
    state_ = State::kChunkSize;
  } else if (chunked_) {
    state_ = State::kChunkSize;  // an error body sent chunked: its lines are judged like a stream's
  } else {
    state_ = State::kBody;
  }
  return {};
}

Status WatchResponseParser::TakeLineBytes(std::string_view data, std::vector<WatchLine>& out) {
  while (!data.empty()) {
    const auto nl = data.find('\n');
    if (nl == std::string_view::npos) {
      if (line_.size() + data.size() > kMaxLineBytes) return Fail("line longer than 4 MiB");
      line_.append(data);
      return {};
    }
    line_.append(data.substr(0, nl));
    data.remove_prefix(nl + 1);
    if (!line_.empty()) out.push_back(ParseWatchLine(line_));
    if (status_ != 200) body_ += line_ + "\n";
    line_.clear();
  }
  return {};
}

void WatchResponseParser::EndBody(std::vector<WatchLine>& out) {
  if (!body_.empty() && body_.back() == '\n') body_.pop_back();
  if (!body_.empty()) out.push_back(ParseWatchLine(body_));
  state_ = State::kDone;
}

bool WatchResponseParser::FinishAtEof(std::vector<WatchLine>& out) {
  if (state_ != State::kBody || has_length_) return false;
  EndBody(out);
  return true;
}

Status WatchResponseParser::Feed(std::string_view data, std::vector<WatchLine>& out) {
  while (!data.empty()) {
    switch (state_) {
      case State::kFailed:
        return Error(Errc::kProtocolError, "watch: parser already failed");
      case State::kDone:
        return Fail(fmt::format("{} bytes after the end of the response", data.size()));
      case State::kHeaders: {
        // The blank line may straddle reads: search from a little before
        // the new bytes.
        const std::size_t from = buf_.size() < 3 ? 0 : buf_.size() - 3;
        buf_.append(data);
        data = {};
        const auto end = buf_.find("\r\n\r\n", from);
        if (end == std::string::npos) {
          if (buf_.size() > kMaxHeaderBytes) return Fail("headers longer than 64 KiB");
          break;
        }
        std::string rest = buf_.substr(end + 4);
        const std::string head = buf_.substr(0, end);
        buf_.clear();
        if (auto st = ParseHeaders(head); !st) return st;
        if (state_ == State::kBody && has_length_ && remaining_ == 0) EndBody(out);
        // The bytes after the headers go round the loop again.
        return rest.empty() ? Status{} : Feed(rest, out);
      }
      case State::kChunkSize:
      case State::kTrailers: {
        const auto nl = data.find('\n');
        const std::string_view part = nl == std::string_view::npos ? data : data.substr(0, nl);
        if (buf_.size() + part.size() > kMaxHeaderBytes) return Fail("chunk-size or trailer line too long");
        buf_.append(part);
        if (nl == std::string_view::npos) {
          data = {};
          break;
        }
        data.remove_prefix(nl + 1);
        if (buf_.empty() || buf_.back() != '\r') return Fail("chunk-size or trailer line not ended by CRLF");
        buf_.pop_back();
        if (state_ == State::kTrailers) {
          if (buf_.empty()) {
            // A chunked error body already went to `out` line by line.
            if (!body_.empty() && body_.back() == '\n') body_.pop_back();
            state_ = State::kDone;
          }
          buf_.clear();
          break;
        }
        // "1a" or "1a;ext=1"
        const std::string_view size_text = std::string_view(buf_).substr(0, buf_.find(';'));
        uint64_t size = 0;
        const auto* end = size_text.data() + size_text.size();
        auto [p, ec] = std::from_chars(size_text.data(), end, size, 16);
        if (size_text.empty() || ec != std::errc() || p != end) {
          return Fail(fmt::format("bad chunk size '{}'", buf_));
        }
        buf_.clear();
        if (size == 0) {
          state_ = State::kTrailers;
        } else {
          remaining_ = size;
          state_ = State::kChunkData;
        }
        break;
      }
      case State::kChunkData: {
        const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(remaining_, data.size()));
        if (auto st = TakeLineBytes(data.substr(0, n), out); !st) return st;
        data.remove_prefix(n);
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kChunkDataEnd;
        break;
      }
      case State::kChunkDataEnd: {
        // The CRLF after a chunk's data, possibly split across reads.
        buf_.push_back(data.front());
        data.remove_prefix(1);
        if (buf_.size() == 2) {
          if (buf_ != "\r\n") return Fail("chunk data not followed by CRLF");
          buf_.clear();
          state_ = State::kChunkSize;
        }
        break;
      }
      case State::kBody: {
        std::size_t n = data.size();
        if (has_length_) n = static_cast<std::size_t>(std::min<uint64_t>(remaining_, n));
        if (body_.size() + n > kMaxHeaderBytes) return Fail("error body longer than 64 KiB");
        body_.append(data.substr(0, n));
        data.remove_prefix(n);
        if (has_length_) {
          remaining_ -= n;
          if (remaining_ == 0) EndBody(out);
        }
        break;
      }
    }
  }
  return {};
}

void WatchCounts::Add(const WatchCounts& o) {
  events += o.events;
  gaps += o.gaps;
  duplicates += o.duplicates;
  resets += o.resets;
  server_ends += o.server_ends;
  compacted += o.compacted;
  reconnects += o.reconnects;
  errors += o.errors;
  if (first_gap_rev == 0) first_gap_rev = o.first_gap_rev;
  if (first_duplicate_rev == 0) first_duplicate_rev = o.first_duplicate_rev;
}

void WatchChecker::OnEvent(uint64_t rev, WatchCounts& counts) {
  ++counts.events;
  if (rev == next_) {
    ++next_;
    return;
  }
  if (rev > next_) {
    ++counts.gaps;
    if (counts.first_gap_rev == 0) counts.first_gap_rev = rev;
    next_ = rev + 1;
    return;
  }
  ++counts.duplicates;
  if (counts.first_duplicate_rev == 0) counts.first_duplicate_rev = rev;
}

}  // namespace baton::load
