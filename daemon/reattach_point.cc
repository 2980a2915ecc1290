#include "daemon/reattach_point.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

namespace baton::detail {

namespace asio = boost::asio;

ReattachPoint::ReattachPoint(asio::io_context& io, std::string path, LogSink& log, OnPeer on_peer)
    : acceptor_(io), path_(std::move(path)), log_(log), on_peer_(std::move(on_peer)) {}

ReattachPoint::~ReattachPoint() {
  *alive_ = false;
  Close();
}

Status ReattachPoint::Open() {
  if (acceptor_.is_open()) return {};
  // Our pid names the file, so one left there is ours from an earlier
  // orphaned spell (or a dead process that had our pid): replace it.
  ::unlink(path_.c_str());
  boost::system::error_code ec;
  acceptor_.open(asio::local::stream_protocol(), ec);
  // Asio opens without O_CLOEXEC; nothing we spawn may hold it.
  if (!ec) ::fcntl(acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
  if (!ec) acceptor_.bind(asio::local::stream_protocol::endpoint(path_), ec);
  // 0600 before listen(): nobody can connect before then. (Not umask: it is
  // process-wide and the daemon's other threads may be creating files.)
  if (!ec && ::chmod(path_.c_str(), 0600) != 0) ec = {errno, boost::system::system_category()};
  if (!ec) acceptor_.listen(4, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    ::unlink(path_.c_str());
    return SystemError(ec, fmt::format("re-attach socket {}: {}", path_, ec.message()));
  }
  AcceptNext();
  return {};
}

void ReattachPoint::AcceptNext() {
  if (!acceptor_.is_open()) return;
  acceptor_.async_accept([this, alive = alive_](const boost::system::error_code& ec, protocol::UnixSocket socket) {
    if (!*alive || ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      log_.Emit(MakeEvent(Level::kWarn, "daemon.reattach_accept", "{}: {}", path_, ec.message()));
      return AcceptNext();
    }
    ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);  // accept() does not set it
    auto cred = protocol::GetPeerCredentials(socket.native_handle());
    if (!cred || (cred->uid != ::geteuid() && cred->uid != 0)) {
      log_.Emit(MakeEvent(Level::kWarn, "daemon.reattach_refused", "{}",
                          cred ? fmt::format("uid {} may not re-attach to this generation", cred->uid)
                               : cred.error().message));
      return AcceptNext();  // closing `socket` hangs up on it
    }
    on_peer_(std::move(socket));
  });
}

void ReattachPoint::Close() {
  if (!acceptor_.is_open()) return;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  ::unlink(path_.c_str());
}

}  // namespace baton::detail
