// The verification phase: read back every acknowledged write and count the
// ones the server lost. Asio driver; the verdicts come from JudgeVerify.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <exception>
#include <string>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "tools/load/options.h"
#include "tools/load/workload.h"

namespace baton::load {

struct VerifyResult {
  uint64_t verified = 0;  // read back with the acknowledged value
  uint64_t lost = 0;      // 404 or another value
  uint64_t errors = 0;    // unreadable after retries, or not reached before the deadline
  Duration elapsed{};
};

struct VerifyConfig {
  int connections = 4;
  Duration request_timeout = seconds(5);
  Duration verify_timeout = seconds(60);
  int attempts = 5;                     // per key, for transport errors and non-404 statuses
  Duration backoff = milliseconds(20);  // multiplied by the attempt number
};

// GETs every id in workload.AckedIds() over `cfg.connections` keep-alive
// connections. Runs `ioc` until done on the calling thread (the caller must
// not have other work queued on it). Emits "load.lost_write" and
// "load.verify_error" warnings for the first few keys.
// Errors: kInternal if a coroutine threw (a bug).
Result<VerifyResult> VerifyWrites(boost::asio::io_context& ioc, const Target& target, const Workload& workload,
                                  const VerifyConfig& cfg, LogSink& log);

// what() of an exception from a coroutine, for error messages.
std::string DescribeException(const std::exception_ptr& e);

}  // namespace baton::load
