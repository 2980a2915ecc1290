// What one HTTP round trip produced and what it means for the run: transport
// error classification, the success/error judgement of load requests and of
// verification reads. Pure (error codes in, verdicts out).
#pragma once

#include <boost/system/error_code.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "tools/load/stats.h"

namespace baton::load {

// How far a request got before a transport failure.
enum class Stage {
  kConnect,  // nothing sent: the write certainly did not happen
  kSend,     // some or all of the request may have reached the server
  kReceive,  // the request was sent; no complete response
};

// refused (ECONNREFUSED, or a missing unix socket), reset
// (ECONNRESET/EPIPE/EOF before the response completed), timeout (our
// deadline), other (anything else: parse errors, ...).
ErrorKind ClassifyTransport(const boost::system::error_code& ec, Stage stage);

// The peer had closed the connection: EOF, ECONNRESET, EPIPE. On a reused
// keep-alive connection with zero bytes written this is the idle-close race
// and the request may be retried once on a new connection.
bool IsPeerClosed(const boost::system::error_code& ec);

// The result of HttpConnection::RoundTrip.
struct Exchange {
  std::optional<ErrorKind> error;  // set on transport failure
  Stage stage = Stage::kConnect;   // meaningful when `error` is set
  std::string detail;              // error message, for logs
  unsigned status = 0;
  std::string body;
  bool server_closed = false;  // response had "Connection: close" (not an error)
};

// How a load-phase request counts.
struct Outcome {
  std::optional<ErrorKind> error;  // unset: success, latency is recorded
  bool write_acked = false;        // a PUT answered 2xx
  bool write_unknown = false;      // a PUT that may or may not have been applied
  bool read_mismatch = false;      // a GET of an acked key returned another value
};

// `expected` is the value a GET must return (ignored for PUTs). A GET
// answered 404 is non2xx: we only read keys the server acknowledged.
Outcome Judge(bool write, const Exchange& ex, std::string_view expected);

enum class VerifyVerdict { kOk, kLost, kRetry };
// 200 with the value: ok; 200 with another value or 404: lost; transport
// errors and other statuses (e.g. 503 while draining): retry.
VerifyVerdict JudgeVerify(const Exchange& ex, std::string_view expected);

}  // namespace baton::load
