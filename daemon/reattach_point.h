// Where an orphaned generation waits for the next supervisor
// (docs/design.md §15): a Unix socket at protocol::ReattachSocketPath(the
// supervisor's runtime dir, our pid), mode 0600, accepting only a peer of
// our own uid or root (the admin socket's rule). The daemon runtime opens it
// when its control channel closed while it serves, passes each accepted
// connection on as the candidate new control channel, and closes it once a
// supervisor re-attached. One connection at a time: the next is accepted
// only after AcceptNext().
//
// Threading: the daemon's io thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "base/errors.h"
#include "base/log.h"
#include "protocol/channel.h"

namespace baton::detail {

class ReattachPoint {
 public:
  using OnPeer = std::function<void(protocol::UnixSocket)>;
  ReattachPoint(boost::asio::io_context& io, std::string path, LogSink& log, OnPeer on_peer);
  // Closes and removes the socket.
  ~ReattachPoint();
  ReattachPoint(const ReattachPoint&) = delete;
  ReattachPoint& operator=(const ReattachPoint&) = delete;

  // Binds (replacing a stale file of ours), listens and accepts the first
  // connection. Errors name the path.
  Status Open();
  // Accepts the next connection (after a candidate failed its Hello).
  void AcceptNext();
  // Stops listening and removes the socket file. Idempotent.
  void Close();
  bool open() const { return acceptor_.is_open(); }
  const std::string& path() const { return path_; }

 private:
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  LogSink& log_;
  OnPeer on_peer_;
  // Outlives `this` in pending handlers: they check it before touching us.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace baton::detail
