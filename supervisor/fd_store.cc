#include "supervisor/fd_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

namespace baton::supervisor {

FdStore::AddResult FdStore::Add(const std::string& name, std::vector<OwnedFd> fds) {
  AddResult r;
  for (size_t i = 0; i < fds.size(); ++i) {
    OwnedFd fd = std::move(fds[i]);
    const std::string entry_name = i == 0 ? name : fmt::format("{}-{}", name, i + 1);
    struct stat st {};
    if (reserved_.count(entry_name) != 0 || ::fstat(fd.get(), &st) != 0) {
      ++r.refused;
      continue;  // closed here
    }
    const auto dev = static_cast<unsigned long long>(st.st_dev);
    const auto ino = static_cast<unsigned long long>(st.st_ino);
    // The same open file (a socket's inode is unique to it) is stored once.
    auto same = std::find_if(entries_.begin(), entries_.end(),
                             [&](const Entry& e) { return e.dev == dev && e.ino == ino; });
    if (same != entries_.end()) {
      ++r.duplicates;
      continue;
    }
    auto named = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == entry_name; });
    if (named != entries_.end()) {
      named->fd = std::move(fd);  // closes the old one
      named->dev = dev;
      named->ino = ino;
      ++r.replaced;
      ++r.stored;
      continue;
    }
    if (entries_.size() >= max_) {
      ++r.refused;
      continue;
    }
    entries_.push_back(Entry{entry_name, std::move(fd), dev, ino});
    ++r.stored;
  }
  return r;
}

size_t FdStore::Remove(const std::string& name) {
  const size_t before = entries_.size();
  const std::string prefix = name + "-";
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) {
                                  if (e.name == name) return true;
                                  if (e.name.rfind(prefix, 0) != 0) return false;
                                  const std::string tail = e.name.substr(prefix.size());
                                  return !tail.empty() && std::all_of(tail.begin(), tail.end(),
                                                                      [](char c) { return c >= '0' && c <= '9'; });
                                }),
                 entries_.end());
  return before - entries_.size();
}

std::vector<std::pair<std::string, int>> FdStore::Entries() const {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& e : entries_) out.emplace_back(e.name, e.fd.get());
  return out;
}

}  // namespace baton::supervisor
