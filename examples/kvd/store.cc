#include "store.h"

#include <fmt/format.h>

namespace kvd {
namespace {

constexpr uint64_t kFnvPrime = 0x100000001b3ull;

uint64_t Mix(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

uint64_t MixInt(uint64_t h, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= kFnvPrime;
  }
  return h;
}

}  // namespace

void Store::Apply(uint64_t revision, std::string_view key, std::string_view value) {
  uint64_t h = MixInt(hash_, revision, 8);
  h = MixInt(h, key.size(), 4);
  h = Mix(h, key);
  h = MixInt(h, value.size(), 4);
  hash_ = Mix(h, value);
  revision_ = revision;
  map_.insert_or_assign(std::string(key), std::string(value));
}

std::optional<std::string_view> Store::Get(std::string_view key) const {
  auto it = map_.find(std::string(key));
  if (it == map_.end()) return std::nullopt;
  return std::string_view(it->second);
}

void Store::Clear() {
  map_.clear();
  revision_ = 0;
  hash_ = kFnvOffset;
}

void Store::Restore(std::unordered_map<std::string, std::string> map, uint64_t revision, uint64_t history) {
  map_ = std::move(map);
  revision_ = revision;
  hash_ = history;
}

std::string Store::fingerprint() const { return fmt::format("{:016x}", hash_); }

}  // namespace kvd
