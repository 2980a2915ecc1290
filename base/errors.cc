#include "base/errors.h"

#include <cstring>
#include <stdexcept>

#include <boost/throw_exception.hpp>
#include <fmt/format.h>

namespace baton {
namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "baton"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
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
    }
    return fmt::format("unknown baton error {}", ev);
  }
};

}  // namespace

const boost::system::error_category& BatonCategory() noexcept {
  static const Category category;
  return category;
}

std::string Error::ToString() const {
  return fmt::format("{} ({}:{})", message, code.category().name(), code.message());
}

Error ErrnoError(std::string_view what, int err) {
  return Error(boost::system::error_code(err, boost::system::system_category()),
               fmt::format("{}: {}", what, std::strerror(err)));
}

void throw_exception_from_error(const Error& e, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(e.ToString()), loc);
}

}  // namespace baton
