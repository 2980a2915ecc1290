#include "tools/bench/prefill.h"

#include <chrono>

#include <boost/json.hpp>

#include "tools/harness/cluster.h"

namespace baton::bench {

Result<PrefillResult> PrefillWal(const std::string& data_dir, uint64_t records, std::size_t value_size,
                                 uint64_t keys) {
  PrefillResult out;
  if (records == 0) return out;
  // A million records of 100 bytes take a few seconds; allow for a slow disk.
  const auto r = harness::RunCommand({harness::BinPath("kvd"), "--prefill", std::to_string(records),
                                      "--prefill-value-bytes", std::to_string(value_size), "--prefill-keys",
                                      std::to_string(keys), "--data-dir", data_dir},
                                     std::chrono::minutes(10));
  if (r.exit_code != 0 || !r.json.is_object()) {
    return Error(Errc::kInternal, "kvd --prefill exited with " + std::to_string(r.exit_code) + ": " + r.err + r.out);
  }
  const auto& o = r.json.as_object();
  if (!o.contains("records") || !o.contains("bytes")) return Error(Errc::kInternal, "kvd --prefill printed " + r.out);
  out.records = o.at("records").to_number<uint64_t>();
  out.bytes = o.at("bytes").to_number<uint64_t>();
  return out;
}

}  // namespace baton::bench
