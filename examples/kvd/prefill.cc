#include "prefill.h"

#include <algorithm>

#include <fmt/format.h>

namespace kvd {
namespace {

constexpr uint64_t kBatchRecords = 4096;

}  // namespace

Result<PrefillResult> PrefillWal(const std::string& data_dir, uint64_t records, std::size_t value_size,
                                 uint64_t rotate_bytes, uint64_t keys) {
  PrefillResult out;
  if (records == 0) return out;
  auto writer = WalWriter::Open(data_dir, WalPosition{}, rotate_bytes);
  if (!writer) return writer.error();
  std::string batch;
  std::string value(value_size, 'v');
  uint64_t revision = 0;
  while (revision < records) {
    batch.clear();
    const uint64_t end = std::min(records, revision + kBatchRecords);
    while (revision < end) {
      ++revision;
      const std::string key = fmt::format("prefill-{:09}", keys == 0 ? revision : (revision - 1) % keys + 1);
      // Vary the value so the fingerprint covers real content.
      const std::string tail = fmt::format("{:016x}", revision * 0x9e3779b97f4a7c15ULL);
      value.replace(0, std::min(tail.size(), value.size()), tail, 0, std::min(tail.size(), value.size()));
      batch += EncodeRecord({revision, key, value});
    }
    if (auto st = writer->Append(batch, revision); !st) return st.error();
    out.bytes += batch.size();
  }
  if (auto st = writer->Close(); !st) return st.error();
  out.records = records;
  return out;
}

}  // namespace kvd
