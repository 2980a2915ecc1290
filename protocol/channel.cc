#include "protocol/channel.h"

#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

namespace baton::protocol {

std::shared_ptr<Channel> Channel::Create(UnixSocket socket, LivenessOptions opts, const Clock& clock,
                                         ChannelCallbacks callbacks) {
  return std::shared_ptr<Channel>(new Channel(std::move(socket), opts, clock, std::move(callbacks)));
}

Channel::Channel(UnixSocket socket, LivenessOptions opts, const Clock& clock, ChannelCallbacks callbacks)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      clock_(clock),
      callbacks_(std::move(callbacks)),
      liveness_(opts, clock.Now()) {}

Channel::~Channel() {
  flushed_.clear();  // their owners are going away with us
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void Channel::Start() {
  ReadSome();
  Rearm();
}

void Channel::SetLivenessOptions(LivenessOptions opts) {
  const TimePoint now = clock_.Now();
  liveness_ = Liveness(opts, now);
  timer_deadline_ = TimePoint::max();
  Rearm();
}

void Channel::ReadSome() {
  if (closed_) return;
  socket_.async_read_some(boost::asio::buffer(read_buf_),
                          [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                            self->OnRead(ec, n);
                          });
}

void Channel::OnRead(const boost::system::error_code& ec, size_t n) {
  if (closed_) return;
  if (ec) {
    if (ec == boost::asio::error::eof) {
      if (auto err = decoder_.Finish()) {
        Fail(err->ToError());
      } else {
        Fail(Error(Errc::kUnavailable, "channel: peer closed the connection"));
      }
    } else {
      Fail(SystemError(ec, fmt::format("channel: read: {}", ec.message())));
    }
    return;
  }
  liveness_.OnFrameReceived(clock_.Now());  // any byte is proof of life
  decoder_.Feed(std::string_view(read_buf_, n));
  for (;;) {
    DecodeResult r = decoder_.Next();
    if (std::holds_alternative<NeedMore>(r)) break;
    if (auto* err = std::get_if<FrameError>(&r)) {
      SendErrorAndClose(v1::Error::BAD_FRAME, err->ToError());
      if (callbacks_.on_closed) callbacks_.on_closed(err->ToError());
      return;
    }
    auto& env = std::get<v1::Envelope>(r);
    ++frames_received_;
    if (env.has_heartbeat()) {
      ++heartbeats_received_;
      continue;
    }
    if (env.msg_case() == v1::Envelope::MSG_NOT_SET) {
      Error e(Errc::kProtocolError, "channel: peer sent an envelope with no message this build knows");
      SendErrorAndClose(v1::Error::UNRECOGNISED, e);
      if (callbacks_.on_closed) callbacks_.on_closed(e);
      return;
    }
    if (callbacks_.on_message) callbacks_.on_message(std::move(env));
    if (closed_) return;  // the callback may close us
  }
  ReadSome();
}

void Channel::Send(const v1::Envelope& env, std::function<void()> on_written) {
  if (closed_) return;
  auto frame = EncodeFrame(env);
  if (!frame) {
    Fail(frame.error());
    return;
  }
  out_.push_back({std::move(*frame), std::move(on_written)});
  WriteNext();
}

void Channel::WriteNext() {
  if (writing_ || out_.empty() || closed_) return;
  writing_ = true;
  liveness_.OnWriteStarted(clock_.Now());
  Rearm();
  // Asio sends on stream sockets with MSG_NOSIGNAL on Linux, so a dead peer
  // is an EPIPE result here, never a SIGPIPE.
  boost::asio::async_write(socket_, boost::asio::buffer(out_.front().frame),
                           [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                             self->writing_ = false;
                             if (self->closed_) return;
                             if (ec) {
                               self->Fail(SystemError(ec, fmt::format("channel: write: {}", ec.message())));
                               return;
                             }
                             self->liveness_.OnWriteCompleted(self->clock_.Now());
                             auto done = std::move(self->out_.front().on_written);
                             self->out_.pop_front();
                             if (done) done();
                             if (self->out_.empty()) self->RunFlushed();
                             if (self->closed_) return;
                             self->WriteNext();
                             self->Rearm();  // the next heartbeat may now be due earlier
                           });
}

void Channel::SendHeartbeat() {
  v1::Envelope env;
  env.mutable_heartbeat()->set_seq(++heartbeat_seq_);
  Send(env);
}

void Channel::Rearm() {
  if (closed_) return;
  const Liveness::Tick tick = liveness_.Poll(clock_.Now());
  if (tick.peer != PeerState::kAlive || tick.send_heartbeat) {
    // Something is due now: handle it from the timer path, not re-entrantly.
    boost::asio::post(socket_.get_executor(), [self = shared_from_this()] { self->OnTimer(); });
    return;
  }
  if (tick.next_deadline >= timer_deadline_) return;  // the armed timer fires early enough
  timer_deadline_ = tick.next_deadline;
  timer_.expires_after(tick.next_deadline - clock_.Now());
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    self->timer_deadline_ = TimePoint::max();
    self->OnTimer();
  });
}

void Channel::OnTimer() {
  if (closed_) return;
  const Liveness::Tick tick = liveness_.Poll(clock_.Now());
  if (tick.peer == PeerState::kSilent) {
    Fail(Error(Errc::kDeadlineExceeded,
               fmt::format("channel: peer silent for {} ms (liveness timeout)",
                           ToMillis(liveness_.options().liveness_timeout))));
    return;
  }
  if (tick.peer == PeerState::kSendStuck) {
    Fail(Error(Errc::kDeadlineExceeded,
               fmt::format("channel: a write has been pending for {} ms (send timeout)",
                           ToMillis(liveness_.options().send_timeout))));
    return;
  }
  if (tick.send_heartbeat) {
    SendHeartbeat();
    if (!writing_) liveness_.OnFrameSent(clock_.Now());
  }
  timer_deadline_ = TimePoint::max();
  timer_.cancel();
  Rearm();
}

void Channel::SendErrorAndClose(v1::Error::Code code, const Error& reason) {
  if (closed_) return;
  v1::Envelope env;
  env.mutable_error()->set_code(code);
  env.mutable_error()->set_message(reason.message);
  if (auto frame = EncodeFrame(env)) {
    // Non-blocking and best effort: a peer that sent garbage may not read.
    [[maybe_unused]] ssize_t n =
        ::send(socket_.native_handle(), frame->data(), frame->size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  Close();
}

void Channel::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.shutdown(UnixSocket::shutdown_both, ignored);
  socket_.close(ignored);
  out_.clear();
  // Nothing more will be written: whoever waits for the flush goes on, from
  // the executor (Close may run inside their own call stack).
  if (!flushed_.empty()) {
    boost::asio::post(socket_.get_executor(), [fns = std::move(flushed_)] {
      for (const auto& fn : fns) fn();
    });
    flushed_.clear();
  }
}

void Channel::WhenFlushed(std::function<void()> fn) {
  if (closed_ || out_.empty()) {
    fn();
    return;
  }
  flushed_.push_back(std::move(fn));
}

void Channel::RunFlushed() {
  auto fns = std::move(flushed_);
  flushed_.clear();
  for (const auto& fn : fns) fn();
}

void Channel::Fail(const Error& reason) {
  if (closed_) return;
  Close();
  if (callbacks_.on_closed) callbacks_.on_closed(reason);
}

Result<PeerCredentials> GetPeerCredentials(int fd) {
  struct ucred cred {};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoError("getsockopt(SO_PEERCRED)", errno);
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

}  // namespace baton::protocol
