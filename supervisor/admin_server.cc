#include "supervisor/admin_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "protocol/channel.h"

namespace baton::supervisor {

namespace asio = boost::asio;

AdminConnection::AdminConnection(Socket socket, RequestHandler on_request)
    : socket_(std::move(socket)), idle_timer_(socket_.get_executor()), on_request_(std::move(on_request)) {}

void AdminConnection::Start() {
  // A client that connects and never sends a request is dropped; it never
  // blocks anybody else (everything here is asynchronous).
  idle_timer_.expires_after(std::chrono::seconds(10));
  idle_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec && !self->got_request_) self->Close();
  });
  Read();
}

void AdminConnection::Read() {
  socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
    if (self->closed_) return;
    if (ec) {
      self->Close();
      return;
    }
    self->decoder_.Feed(std::string_view(self->buf_, n));
    for (;;) {
      auto r = self->decoder_.Next();
      if (std::holds_alternative<protocol::NeedMore>(r)) break;
      if (auto* err = std::get_if<protocol::FrameError>(&r)) {
        v1::Envelope reply;
        reply.mutable_error()->set_code(v1::Error::BAD_FRAME);
        reply.mutable_error()->set_message(err->message);
        self->SendAndClose(reply);
        return;
      }
      self->got_request_ = true;
      self->on_request_(self, std::get<v1::Envelope>(r));
      if (self->closed_ || self->close_after_write_) return;
    }
    self->Read();
  });
}

void AdminConnection::Send(const v1::Envelope& env) {
  if (closed_ || close_after_write_) return;
  auto frame = protocol::EncodeFrame(env);
  if (!frame) return;
  out_.push_back(std::move(*frame));
  WriteNext();
}

void AdminConnection::SendAndClose(const v1::Envelope& env) {
  Send(env);
  CloseAfterWrites();
}

void AdminConnection::CloseAfterWrites() {
  close_after_write_ = true;
  if (!writing_) Close();
}

void AdminConnection::WriteNext() {
  if (writing_ || closed_) return;
  if (out_.empty()) {
    if (close_after_write_) Close();
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_.front()),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                      self->writing_ = false;
                      if (ec) {
                        self->Close();
                        return;
                      }
                      self->out_.pop_front();
                      self->WriteNext();
                    });
}

void AdminConnection::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  idle_timer_.cancel();
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (on_close_) {
    auto fn = std::move(on_close_);
    fn();
  }
}

Result<std::unique_ptr<AdminServer>> AdminServer::Create(asio::io_context& io, const std::string& runtime_dir,
                                                         std::set<uid_t> allowed_uids,
                                                         AdminConnection::RequestHandler on_request) {
  if (::mkdir(runtime_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError(fmt::format("runtime dir {}", runtime_dir), errno);
  }
  struct stat st {};
  if (::stat(runtime_dir.c_str(), &st) != 0) return ErrnoError(fmt::format("runtime dir {}", runtime_dir), errno);
  if (!S_ISDIR(st.st_mode)) {
    return Error(Errc::kFailedPrecondition, fmt::format("runtime dir {}: not a directory", runtime_dir));
  }
  if (st.st_uid != ::geteuid()) {
    return Error(Errc::kPermissionDenied,
                 fmt::format("runtime dir {} belongs to uid {}, not to us ({})", runtime_dir, st.st_uid, ::geteuid()));
  }
  if ((st.st_mode & 077) != 0 && ::chmod(runtime_dir.c_str(), 0700) != 0) {
    return ErrnoError(fmt::format("chmod 0700 {}", runtime_dir), errno);
  }
  const std::string path = runtime_dir + "/baton.sock";
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Error(Errc::kInvalidArgument, fmt::format("admin socket path {} is too long (max {} bytes)", path,
                                                     sizeof(sockaddr_un::sun_path) - 1));
  }
  // A socket file left by a dead supervisor is removed; a live one is not ours to take.
  if (::lstat(path.c_str(), &st) == 0) {
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    const bool live = ::connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(probe);
    if (live) {
      return Error(Errc::kFailedPrecondition, fmt::format("another supervisor is already running at {}", path));
    }
    ::unlink(path.c_str());
  }
  auto server = std::unique_ptr<AdminServer>(new AdminServer(io, path, std::move(allowed_uids), std::move(on_request)));
  boost::system::error_code ec;
  // Create the socket 0600 from the start: no window where others could connect.
  const mode_t old = ::umask(0177);
  server->acceptor_.open(asio::local::stream_protocol(), ec);
  // Asio opens without O_CLOEXEC; the daemons we spawn must never hold it.
  if (!ec) ::fcntl(server->acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
  if (!ec) server->acceptor_.bind(asio::local::stream_protocol::endpoint(path), ec);
  ::umask(old);
  if (!ec) server->acceptor_.listen(64, ec);
  if (ec) return SystemError(ec, fmt::format("admin socket {}: {}", path, ec.message()));
  server->Accept();
  return server;
}

std::unique_ptr<AdminServer> AdminServer::Adopt(asio::io_context& io, const std::string& runtime_dir, int fd,
                                                std::set<uid_t> allowed_uids,
                                                AdminConnection::RequestHandler on_request) {
  auto server = std::unique_ptr<AdminServer>(
      new AdminServer(io, runtime_dir + "/baton.sock", std::move(allowed_uids), std::move(on_request)));
  server->acceptor_.assign(asio::local::stream_protocol(), fd);
  server->Accept();
  return server;
}

AdminServer::AdminServer(asio::io_context& io, std::string path, std::set<uid_t> allowed,
                         AdminConnection::RequestHandler on_request)
    : acceptor_(io), path_(std::move(path)), allowed_(std::move(allowed)), on_request_(std::move(on_request)) {}

AdminServer::~AdminServer() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  ::unlink(path_.c_str());
}

void AdminServer::Accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, AdminConnection::Socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);  // accept() does not set it
      auto cred = protocol::GetPeerCredentials(socket.native_handle());
      auto conn = std::make_shared<AdminConnection>(std::move(socket), on_request_);
      if (!cred || allowed_.count(cred->uid) == 0) {
        v1::Envelope reply;
        reply.mutable_error()->set_code(v1::Error::PERMISSION_DENIED);
        reply.mutable_error()->set_message(
            cred ? fmt::format("uid {} may not control this supervisor", cred->uid) : cred.error().message);
        conn->SendAndClose(reply);
      } else {
        conn->Start();
      }
    }
    Accept();
  });
}

}  // namespace baton::supervisor
