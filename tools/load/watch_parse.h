// The pure half of baton-load's watch streams: the response parser of one
// `GET /watch?from=REV` (status line, headers, chunked body split into
// NDJSON lines, in whatever pieces the reads deliver) and the continuity
// check of one stream across its reconnects. No I/O, no clock;
// single-threaded (the io_context thread).
//
// The stream kvd sends: `200`, `Transfer-Encoding: chunked`, one line
// `{"rev":N,"key":"...","value":"..."}` per committed write with revision
// >= REV, in order, each exactly once; `410` with body
// `{"error":"compacted","oldest":N}` when REV is too old, and a stream that
// cannot continue ends with such a line and the terminating chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/errors.h"

namespace baton::load {

// What one NDJSON line of a watch stream (or a non-200 body) says.
struct WatchLine {
  enum class Kind { kEvent, kCompacted, kBad };
  Kind kind = Kind::kBad;
  uint64_t rev = 0;     // kEvent
  uint64_t oldest = 0;  // kCompacted: the oldest revision still available
};

// `line` without its '\n'. An event is `{"rev":N,...}` (rev first, as kvd
// writes it); a compacted error holds `"error":"compacted"` and
// `"oldest":N`; anything else is kBad.
WatchLine ParseWatchLine(std::string_view line);

// Parses one watch response from its first byte. Feed() takes the bytes in
// any split (a chunk header, a chunk, a line may each span reads) and
// appends the complete lines seen so far to `out`.
class WatchResponseParser {
 public:
  // Bounds against a broken server: headers, one chunk-size or trailer
  // line, one NDJSON line, a non-200 body.
  static constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
  static constexpr std::size_t kMaxLineBytes = 4 * 1024 * 1024;

  // kProtocolError on malformed HTTP (then the parser is Failed and takes
  // no more bytes). A 200 that is not chunked is malformed too: a watch
  // never ends by itself.
  Status Feed(std::string_view bytes, std::vector<WatchLine>& out);

  bool HeadersDone() const { return state_ > State::kHeaders; }
  unsigned status() const { return status_; }  // 0 until the headers are read
  // The terminating chunk (and its trailers) of a 200, or the whole body of
  // another status, has been read.
  bool Done() const { return state_ == State::kDone; }
  bool Failed() const { return state_ == State::kFailed; }
  // Bytes of an incomplete line held back (a stream must end after a
  // complete line).
  std::size_t Pending() const { return line_.size(); }
  // The body of a non-200 answer, once Done (the body of a 410 is also
  // returned to Feed's `out` as one line).
  const std::string& ErrorBody() const { return body_; }
  // For a non-200 answer without Content-Length: the connection's end ends
  // the body. Call when the read returned end of file; true if that ended
  // the response properly (the body is then in ErrorBody).
  bool FinishAtEof(std::vector<WatchLine>& out);

 private:
  enum class State { kHeaders, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kBody, kDone, kFailed };
  Status Fail(std::string msg);
  Status ParseHeaders(std::string_view head);
  Status TakeLineBytes(std::string_view data, std::vector<WatchLine>& out);
  void EndBody(std::vector<WatchLine>& out);

  State state_ = State::kHeaders;
  std::string buf_;   // headers, a chunk-size line or a trailer line being assembled
  std::string line_;  // an NDJSON line being assembled across chunks
  std::string body_;  // a non-200 body
  unsigned status_ = 0;
  bool chunked_ = false;
  bool has_length_ = false;
  uint64_t remaining_ = 0;  // of the current chunk, or of a non-200 body with Content-Length
};

// A stream's counters (the `watch` object of the report sums them).
struct WatchCounts {
  uint64_t events = 0;               // event lines received
  uint64_t gaps = 0;                 // an event whose rev skipped ahead of last + 1
  uint64_t duplicates = 0;           // an event whose rev is <= the last one
  uint64_t resets = 0;               // the connection failed mid-stream (EOF or error without the terminating chunk)
  uint64_t server_ends = 0;          // the server ended the stream with the terminating chunk
  uint64_t compacted = 0;            // a 410 or a compacted line: the stream cannot continue
  uint64_t reconnects = 0;           // connections opened after the stream's first
  uint64_t errors = 0;               // failed connects, bad statuses, malformed HTTP or lines
  uint64_t first_gap_rev = 0;        // the first offending revision, 0 = none
  uint64_t first_duplicate_rev = 0;  // likewise

  void Add(const WatchCounts& o);
  // No gap, no duplicate, no reset, no compacted, no reconnect, no error.
  bool Continuous() const {
    return gaps == 0 && duplicates == 0 && resets == 0 && compacted == 0 && reconnects == 0 && errors == 0;
  }
};

// Continuity of one stream across its connections: every event must be
// exactly last + 1.
class WatchChecker {
 public:
  // `from`: the first revision the stream asked for.
  explicit WatchChecker(uint64_t from) : next_(from) {}
  // One event line. A gap moves the expectation past it (so one missing
  // range counts once); a duplicate does not.
  void OnEvent(uint64_t rev, WatchCounts& counts);
  // What to ask for on reconnect: from=last+1.
  uint64_t Next() const { return next_; }
  // The last revision received, or from - 1 before any.
  uint64_t Last() const { return next_ - 1; }

 private:
  uint64_t next_;
};

}  // namespace baton::load
