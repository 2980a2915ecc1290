#include "base/errors.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <boost/asio/error.hpp>
#include <fmt/format.h>

namespace baton {

std::string_view ErrcName(Errc code) noexcept {
  switch (code) {
    case Errc::kOk: return "ok";
    case Errc::kUnavailable: return "unavailable";
    case Errc::kAborted: return "aborted";
    case Errc::kFailedPrecondition: return "failed precondition";
    case Errc::kDeadlineExceeded: return "deadline exceeded";
    case Errc::kProtocolError: return "protocol error";
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kBusy: return "busy";
    case Errc::kNotFound: return "not found";
    case Errc::kPermissionDenied: return "permission denied";
    case Errc::kInternal: return "internal error";
    case Errc::kIncompatible: return "incompatible";
    case Errc::kIoError: return "io error";
  }
  return "unknown error";
}

Errc ErrcFromErrno(int err) noexcept {
  switch (err) {
    case 0: return Errc::kOk;
    case ENOENT: return Errc::kNotFound;
    case EACCES:
    case EPERM: return Errc::kPermissionDenied;
    case EAGAIN:
    case EINTR: return Errc::kUnavailable;
    case ETIMEDOUT: return Errc::kDeadlineExceeded;
    case EBUSY: return Errc::kBusy;
    case EINVAL: return Errc::kInvalidArgument;
    default: return Errc::kIoError;
  }
}

Error ErrnoError(std::string_view what, int err) {
  return Error(ErrcFromErrno(err), fmt::format("{}: {}", what, std::strerror(err)));
}

Error SystemError(const boost::system::error_code& ec, std::string message) {
  Errc code = Errc::kIoError;
  if (ec.category() == boost::system::system_category() || ec.category() == boost::system::generic_category()) {
    code = ErrcFromErrno(ec.value());
  } else if (ec == boost::asio::error::eof) {
    code = Errc::kUnavailable;
  }
  return Error(code, std::move(message));
}

namespace detail {

void BadResultAccess(const Error* error) noexcept {
  if (error != nullptr) {
    std::fprintf(stderr, "baton: value() of a Result holding an error: %s\n", error->ToString().c_str());
  } else {
    std::fprintf(stderr, "baton: error() of a Result holding a value\n");
  }
  std::abort();
}

}  // namespace detail
}  // namespace baton
