// The admin socket <runtime-dir>/baton.sock (dir 0700, socket 0600): the CLI
// talks to the supervisor here. Every connection's peer uid is checked with
// SO_PEERCRED against an allow-list (our own uid and root by default).
// Frames are the same as on the control channel (docs/protocol.md).
//
// Threading: everything runs on the supervisor's executor.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/errors.h"
#include "protocol/control.pb.h"
#include "protocol/frame.h"

namespace baton::supervisor {

class AdminConnection : public std::enable_shared_from_this<AdminConnection> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  using RequestHandler = std::function<void(std::shared_ptr<AdminConnection>, const v1::Envelope&)>;

  AdminConnection(Socket socket, RequestHandler on_request);
  void Start();
  void Send(const v1::Envelope& env);
  // Sends `env` then closes once it is written.
  void SendAndClose(const v1::Envelope& env);
  // Closes once everything queued is written.
  void CloseAfterWrites();
  void Close();
  bool closed() const { return closed_; }
  int native_handle() { return socket_.native_handle(); }
  // Called once when the connection closes (peer gone or Close()).
  void OnClose(std::function<void()> fn) { on_close_ = std::move(fn); }

 private:
  void Read();
  void WriteNext();

  Socket socket_;
  boost::asio::steady_timer idle_timer_;
  RequestHandler on_request_;
  std::function<void()> on_close_;
  protocol::FrameDecoder decoder_;
  std::deque<std::string> out_;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
  bool got_request_ = false;
  char buf_[4096];
};

class AdminServer {
 public:
  // Creates <runtime_dir> (0700) if needed and binds baton.sock (0600).
  // Refuses if another live supervisor already answers there.
  static Result<std::unique_ptr<AdminServer>> Create(boost::asio::io_context& io, const std::string& runtime_dir,
                                                     std::set<uid_t> allowed_uids,
                                                     AdminConnection::RequestHandler on_request);
  // Takes `fd`, the listening admin socket of <runtime_dir> that this
  // process bound before its own exec (docs/design.md §15).
  static std::unique_ptr<AdminServer> Adopt(boost::asio::io_context& io, const std::string& runtime_dir, int fd,
                                            std::set<uid_t> allowed_uids, AdminConnection::RequestHandler on_request);
  ~AdminServer();
  const std::string& path() const { return path_; }
  int native_handle() { return acceptor_.native_handle(); }

 private:
  AdminServer(boost::asio::io_context& io, std::string path, std::set<uid_t> allowed,
              AdminConnection::RequestHandler on_request);
  void Accept();

  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  std::set<uid_t> allowed_;
  AdminConnection::RequestHandler on_request_;
};

}  // namespace baton::supervisor
