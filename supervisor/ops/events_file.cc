#include "supervisor/ops/events_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include <fmt/format.h>

namespace baton::supervisor {

Result<EventsFile> EventsFile::Open(const std::string& runtime_dir, uint64_t max_bytes) {
  const std::string path = runtime_dir + "/events.jsonl";
  // "e": O_CLOEXEC, so no child inherits the journal.
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) return ErrnoError(fmt::format("open {}", path), errno);
  ::chmod(path.c_str(), 0600);
  struct stat st {};
  const uint64_t size = ::fstat(::fileno(f), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return EventsFile(path, f, size, max_bytes);
}

EventsFile::EventsFile(EventsFile&& o) noexcept
    : path_(std::move(o.path_)), f_(o.f_), size_(o.size_), max_bytes_(o.max_bytes_) {
  o.f_ = nullptr;
}

EventsFile::~EventsFile() {
  if (f_ != nullptr) std::fclose(f_);
}

Status EventsFile::Rotate() {
  std::fclose(f_);
  f_ = nullptr;
  const std::string old = path_ + ".1";
  if (std::rename(path_.c_str(), old.c_str()) != 0) return ErrnoError(fmt::format("rotate {}", path_), errno);
  f_ = std::fopen(path_.c_str(), "ae");
  if (f_ == nullptr) return ErrnoError(fmt::format("open {}", path_), errno);
  ::chmod(path_.c_str(), 0600);
  size_ = 0;
  return {};
}

Status EventsFile::Append(const std::string& json) {
  const uint64_t n = json.size() + 1;
  if (f_ != nullptr && size_ > 0 && size_ + n > max_bytes_ / 2) {
    if (auto st = Rotate(); !st) return st;
  }
  if (f_ == nullptr) {
    f_ = std::fopen(path_.c_str(), "ae");
    if (f_ == nullptr) return ErrnoError(fmt::format("open {}", path_), errno);
  }
  if (std::fwrite(json.data(), 1, json.size(), f_) != json.size() || std::fputc('\n', f_) == EOF ||
      std::fflush(f_) != 0) {
    return ErrnoError(fmt::format("write {}", path_), errno);
  }
  size_ += n;
  return {};
}

}  // namespace baton::supervisor
