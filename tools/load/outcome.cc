#include "tools/load/outcome.h"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace baton::load {
namespace {

namespace aerr = boost::asio::error;
namespace http = boost::beast::http;

bool IsTimeout(const boost::system::error_code& ec) {
  return ec == boost::beast::error::timeout || ec == aerr::timed_out;
}

}  // namespace

bool IsPeerClosed(const boost::system::error_code& ec) {
  return ec == aerr::eof || ec == aerr::connection_reset || ec == aerr::broken_pipe || ec == aerr::connection_aborted ||
         ec == aerr::not_connected || ec == http::error::end_of_stream;
}

ErrorKind ClassifyTransport(const boost::system::error_code& ec, Stage stage) {
  if (IsTimeout(ec)) return ErrorKind::kTimeout;
  if (stage == Stage::kConnect) {
    // A unix socket path that is missing is the same as nobody listening.
    if (ec == aerr::connection_refused || ec == boost::system::errc::no_such_file_or_directory) {
      return ErrorKind::kRefused;
    }
    if (IsPeerClosed(ec)) return ErrorKind::kReset;
    return ErrorKind::kOther;
  }
  if (IsPeerClosed(ec) || ec == http::error::partial_message) return ErrorKind::kReset;
  return ErrorKind::kOther;
}

Outcome Judge(bool write, const Exchange& ex, std::string_view expected) {
  Outcome o;
  if (ex.error) {
    o.error = ex.error;
    o.write_unknown = write && ex.stage != Stage::kConnect;
    return o;
  }
  const bool ok = ex.status >= 200 && ex.status < 300;
  if (!ok) {
    o.error = ErrorKind::kNon2xx;
    // A 5xx may come after the WAL append; we cannot tell.
    o.write_unknown = write;
    return o;
  }
  if (write) {
    o.write_acked = true;
  } else if (ex.body != expected) {
    o.error = ErrorKind::kOther;
    o.read_mismatch = true;
  }
  return o;
}

VerifyVerdict JudgeVerify(const Exchange& ex, std::string_view expected) {
  if (ex.error) return VerifyVerdict::kRetry;
  if (ex.status == 404) return VerifyVerdict::kLost;
  if (ex.status >= 200 && ex.status < 300) {
    return ex.body == expected ? VerifyVerdict::kOk : VerifyVerdict::kLost;
  }
  return VerifyVerdict::kRetry;
}

}  // namespace baton::load
