// <runtime-dir>/events.jsonl: every supervisor event as one JSON line, so an
// operator can read what happened even when the supervisor is gone. Bounded:
// when the file would grow past half of `max_bytes` it is renamed to
// events.jsonl.1 (replacing the previous one) and a new file starts, so the
// two files together stay under `max_bytes`. Not fsynced: diagnostics, not
// state.
//
// Threading: the supervisor's executor only. Blocking (small appends).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "base/errors.h"

namespace baton::supervisor {

class EventsFile {
 public:
  static Result<EventsFile> Open(const std::string& runtime_dir, uint64_t max_bytes);
  EventsFile(EventsFile&& o) noexcept;
  EventsFile& operator=(EventsFile&&) = delete;
  ~EventsFile();

  // Appends one line (a newline is added). A write error is returned once
  // and journaling goes on with the next line.
  Status Append(const std::string& json);
  const std::string& path() const { return path_; }

 private:
  EventsFile(std::string path, std::FILE* f, uint64_t size, uint64_t max_bytes)
      : path_(std::move(path)), f_(f), size_(size), max_bytes_(max_bytes) {}
  Status Rotate();

  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t size_ = 0;
  uint64_t max_bytes_ = 0;
};

}  // namespace baton::supervisor
