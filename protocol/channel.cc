#include "protocol/channel.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cstring>

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
  // Readiness, then recvmsg: a plain read would drop (close) any
  // descriptors the peer attached.
  socket_.async_wait(UnixSocket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) { self->OnReadable(ec); });
}

void Channel::OnReadable(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec) {
    OnReadEnd(ec);
    return;
  }
  switch (ReadOnce()) {
    case ReadResult::kData:
      if (DeliverFrames()) ReadSome();
      return;
    case ReadResult::kWouldBlock:
      ReadSome();
      return;
    case ReadResult::kDone:
      return;
  }
}

void Channel::DeliverBuffered() {
  while (!closed_) {
    if (ReadOnce(/*report_end=*/false) != ReadResult::kData || !DeliverFrames()) return;
  }
}

Channel::ReadResult Channel::ReadOnce(bool report_end) {
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerFrame)];
  struct iovec iov {read_buf_, sizeof(read_buf_)};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return ReadResult::kWouldBlock;
    if (report_end) OnReadEnd(boost::system::error_code(err, boost::system::system_category()));
    return ReadResult::kDone;
  }
  // Take every descriptor first, so that whatever happens next closes them.
  std::vector<OwnedFd> fds;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    BadInput(v1::Error::BAD_FRAME,
             Error(Errc::kProtocolError, fmt::format("channel: peer sent more than {} descriptors in one message",
                                                     kMaxFdsPerFrame)));
    return ReadResult::kDone;
  }
  if (n == 0) {
    if (report_end) OnReadEnd(boost::asio::error::eof);
    return ReadResult::kDone;
  }
  if (!fds.empty()) fds_in_.emplace_back(bytes_received_ + static_cast<uint64_t>(n) - 1, std::move(fds));
  bytes_received_ += static_cast<uint64_t>(n);
  liveness_.OnFrameReceived(clock_.Now());  // any byte is proof of life
  decoder_.Feed(std::string_view(read_buf_, static_cast<size_t>(n)));
  return ReadResult::kData;
}

void Channel::BadInput(v1::Error::Code code, const Error& e) {
  SendErrorAndClose(code, e);
  if (callbacks_.on_closed) callbacks_.on_closed(e);
}

void Channel::OnReadEnd(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec == boost::asio::error::eof) {
    if (auto err = decoder_.Finish()) {
      Fail(err->ToError());
    } else {
      Fail(Error(Errc::kUnavailable, "channel: peer closed the connection"));
    }
  } else {
    Fail(SystemError(ec, fmt::format("channel: read: {}", ec.message())));
  }
}

bool Channel::DeliverFrames() {
  for (;;) {
    // The stream offset where the next frame starts.
    const uint64_t start = bytes_received_ - decoder_.buffered();
    DecodeResult r = decoder_.Next();
    if (std::holds_alternative<NeedMore>(r)) break;
    if (auto* err = std::get_if<FrameError>(&r)) {
      BadInput(v1::Error::BAD_FRAME, err->ToError());
      return false;
    }
    const uint64_t end = bytes_received_ - decoder_.buffered();
    std::vector<OwnedFd> fds;
    if (!fds_in_.empty() && fds_in_.front().first < end) {
      if (fds_in_.front().first != start) {
        BadInput(v1::Error::BAD_FRAME,
                 Error(Errc::kProtocolError, "channel: descriptors arrived on a byte that does not start a frame"));
        return false;
      }
      fds = std::move(fds_in_.front().second);
      fds_in_.pop_front();
    }
    auto& env = std::get<v1::Envelope>(r);
    ++frames_received_;
    if (!fds.empty() && !callbacks_.on_message_with_fds) {
      BadInput(v1::Error::UNEXPECTED,
               Error(Errc::kProtocolError, fmt::format("channel: a {} frame carried {} descriptors where none are "
                                                       "accepted",
                                                       MessageName(env), fds.size())));
      return false;
    }
    if (env.has_heartbeat() && fds.empty()) {
      ++heartbeats_received_;
      continue;
    }
    if (env.msg_case() == v1::Envelope::MSG_NOT_SET) {
      BadInput(v1::Error::UNRECOGNISED,
               Error(Errc::kProtocolError, "channel: peer sent an envelope with no message this build knows"));
      return false;
    }
    if (!fds.empty()) {
      callbacks_.on_message_with_fds(std::move(env), std::move(fds));
    } else if (callbacks_.on_message) {
      callbacks_.on_message(std::move(env));
    }
    if (closed_) return false;  // the callback may close us
  }
  return true;
}

void Channel::Send(const v1::Envelope& env, std::function<void()> on_written) {
  if (closed_) return;
  auto frame = EncodeFrame(env);
  if (!frame) {
    Fail(frame.error());
    return;
  }
  out_.push_back({std::move(*frame), std::move(on_written), {}});
  WriteNext();
}

Status Channel::SendWithFds(const v1::Envelope& env, const std::vector<int>& fds, std::function<void()> on_written) {
  if (fds.size() > kMaxFdsPerFrame) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("channel: {} descriptors in one frame (at most {})", fds.size(), kMaxFdsPerFrame));
  }
  if (closed_) return Error(Errc::kUnavailable, "channel: closed");
  auto frame = EncodeFrame(env);
  if (!frame) return frame.error();
  std::vector<OwnedFd> dups;
  for (int fd : fds) {
    OwnedFd d(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!d.valid()) return ErrnoError(fmt::format("channel: dup descriptor {}", fd), errno);
    dups.push_back(std::move(d));
  }
  out_.push_back({std::move(*frame), std::move(on_written), std::move(dups)});
  WriteNext();
  return {};
}

void Channel::WriteNext() {
  if (writing_ || out_.empty() || closed_) return;
  writing_ = true;
  liveness_.OnWriteStarted(clock_.Now());
  Rearm();
  if (!out_.front().fds.empty()) {
    SendFdsByte();
    return;
  }
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

// The first byte of a frame with descriptors goes alone, with them, so
// that the receiver can tell which frame they belong to.
void Channel::SendFdsByte() {
  socket_.async_wait(UnixSocket::wait_write, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->closed_) return;
    if (ec) {
      self->writing_ = false;
      self->Fail(SystemError(ec, fmt::format("channel: write: {}", ec.message())));
      return;
    }
    Outgoing& o = self->out_.front();
    std::vector<char> control(CMSG_SPACE(sizeof(int) * o.fds.size()));
    struct iovec iov {o.frame.data(), 1};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * o.fds.size());
    for (size_t i = 0; i < o.fds.size(); ++i) {
      const int fd = o.fds[i].get();
      std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
    }
    const ssize_t n = ::sendmsg(self->socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
        self->SendFdsByte();
        return;
      }
      self->writing_ = false;
      self->Fail(ErrnoError("channel: sendmsg (descriptors)", err));
      return;
    }
    // In flight: the kernel holds its own references now.
    o.fds.clear();
    o.frame.erase(0, 1);
    self->writing_ = false;
    self->WriteNext();
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
