// kvd's in-memory state: the key-value map, the revision of the last record
// applied and a fingerprint of the whole history.
//
// The fingerprint is a running 64-bit FNV-1a over every record in revision
// order (revision, key length, key, value length, value; integers
// little-endian), shown as 16 hex digits. Two processes that applied the same
// records agree on it; it is what the incumbent seals and the successor checks.
//
// Threading: not synchronised; kvd touches it from its io thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kvd {

class Store {
 public:
  // Applies one record. The caller guarantees revisions arrive in order.
  void Apply(uint64_t revision, std::string_view key, std::string_view value);
  // The value of `key`, or nullopt.
  std::optional<std::string_view> Get(std::string_view key) const;
  // Back to empty (revision 0).
  void Clear();
  // Replaces everything with a checkpoint's contents: `history` is the
  // running hash the fingerprint shows (history_hash() when it was taken).
  void Restore(std::unordered_map<std::string, std::string> map, uint64_t revision, uint64_t history);

  uint64_t revision() const { return revision_; }
  std::string fingerprint() const;  // 16 lowercase hex digits
  size_t size() const { return map_.size(); }
  uint64_t history_hash() const { return hash_; }
  const std::unordered_map<std::string, std::string>& map() const { return map_; }

 private:
  static constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
  std::unordered_map<std::string, std::string> map_;
  uint64_t revision_ = 0;
  uint64_t hash_ = kFnvOffset;
};

}  // namespace kvd
