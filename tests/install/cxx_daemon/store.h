// The daemon's state: an append-only log of PUT records, <data-dir>/kv.log,
// and the map it replays into.
//
// Record: u32 key length, u32 value length, u64 FNV-1a of key and value
// (host byte order), then the key and the value. revision() is the number
// of records applied; fingerprint() chains every record's checksum in order,
// so two processes that applied the same log agree on both.
//
// Threading: one thread at a time (the server's loop thread).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <baton/errors.h>

namespace cxxd {

struct Record {
  std::string key;
  std::string value;
};

enum class ReplayMode {
  kReadOnly,  // another process may be appending: stop at a partial record
  kRepair,    // we own the data dir: truncate a torn tail, fail on corruption
};

class Store {
 public:
  explicit Store(std::string data_dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Applies every complete record after offset(); returns how many.
  baton::Result<uint64_t> CatchUp(ReplayMode mode);
  // Forgets memory and replays the whole log (kRepair).
  baton::Status Reload();
  // Opens the log for appending; needs the data-dir lock and a log that
  // ends at offset() (CatchUp(kRepair) first).
  baton::Status OpenWriter();
  // Appends `batch`, fdatasyncs, then applies it: a record is visible (and
  // acknowledged) only once durable.
  baton::Status Commit(const std::vector<Record>& batch);
  // fsync + close; no write may follow until OpenWriter.
  baton::Status CloseWriter();

  bool writable() const { return fd_ >= 0; }
  const std::string* Get(const std::string& key) const;
  uint64_t revision() const { return revision_; }
  uint64_t offset() const { return offset_; }
  std::string fingerprint() const;

 private:
  void Apply(Record record, uint64_t checksum);

  std::string dir_;
  std::string path_;
  int fd_ = -1;
  uint64_t offset_ = 0;  // end of the last record applied
  uint64_t revision_ = 0;
  uint64_t chain_ = 0;
  std::unordered_map<std::string, std::string> map_;
};

}  // namespace cxxd
