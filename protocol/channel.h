// An Asio control channel over a connected AF_UNIX stream socket: framed
// Envelopes in both directions, heartbeats every interval, a liveness timer
// that reports a silent peer, a send timeout, MSG_NOSIGNAL on every write.
//
// Threading: a Channel lives on one executor (one io_context per process,
// run by one thread, or a strand). Every public method must be called from
// that executor; callbacks run on it too.
// Ownership: the Channel owns its socket (O_CLOEXEC as Asio opens/assigns
// it). Handlers hold a shared_ptr, so the Channel outlives pending I/O.
//
// Descriptors (SCM_RIGHTS): a frame sent with SendWithFds carries them on
// its first byte, which goes alone in one sendmsg; Linux never merges that
// byte's ancillary data with later bytes, and a recvmsg that returns
// descriptors ends with that byte. So the receiver binds the descriptors
// of a read to the frame starting at the read's last byte; descriptors on
// any other byte, a truncated control message (MSG_CTRUNC) or descriptors
// where the owner takes none close the channel as bad input. Received
// descriptors are O_CLOEXEC (MSG_CMSG_CLOEXEC).
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/clock.h"
#include "base/errors.h"
#include "base/owned_fd.h"
#include "protocol/control.pb.h"
#include "protocol/frame.h"
#include "protocol/liveness.h"

namespace baton::protocol {

using UnixSocket = boost::asio::local::stream_protocol::socket;

struct ChannelCallbacks {
  // Every frame except heartbeats (which only prove liveness).
  std::function<void(v1::Envelope)> on_message;
  // Called exactly once when the channel closes for any reason other than a
  // local Close(): peer EOF, bad frame, silence, stuck send, I/O error.
  std::function<void(const Error&)> on_closed;
  // Frames that carried descriptors (owned by the callee from here). Unset:
  // such a frame is bad input (Error UNEXPECTED, then closed).
  std::function<void(v1::Envelope, std::vector<OwnedFd>)> on_message_with_fds;
};

// The kernel's limit of descriptors in one message (SCM_MAX_FD).
inline constexpr size_t kMaxFdsPerFrame = 253;

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  static std::shared_ptr<Channel> Create(UnixSocket socket, LivenessOptions opts, const Clock& clock,
                                         ChannelCallbacks callbacks);
  ~Channel();

  // Starts reading and the heartbeat/liveness timer.
  void Start();
  // Queues one envelope. Encoding errors close the channel (it is our bug or
  // an oversize message); write errors close it too.
  // `on_written` (optional) runs once the frame is fully written to the
  // socket: the point where "after sending X" is true.
  void Send(const v1::Envelope& env, std::function<void()> on_written = {});
  // Like Send, with `fds` attached to the frame (at most kMaxFdsPerFrame).
  // The caller keeps its descriptors: the channel sends duplicates, closed
  // once the frame's first byte is written (the kernel then holds them) or
  // the channel closes. Fails (and sends nothing) if a dup fails.
  Status SendWithFds(const v1::Envelope& env, const std::vector<int>& fds, std::function<void()> on_written = {});
  // Frames queued or being written.
  size_t pending_writes() const { return out_.size(); }
  // Runs `fn` once every frame queued so far is written, or the channel has
  // closed; at once (before returning) if nothing is pending or it is
  // closed already. For "send the last word, then exit" without polling.
  void WhenFlushed(std::function<void()> fn);
  // Best effort: writes an Error frame without waiting, then closes.
  void SendErrorAndClose(v1::Error::Code code, const Error& reason);
  // Closes without calling on_closed. Idempotent.
  void Close();
  // Delivers, now and without waiting, every frame the peer wrote that is
  // still in the socket's receive buffer: for a peer known to be dead (its
  // exit reaped), whose last words must count before its death does — the
  // exit and the readable socket are two events with no order between them.
  // Stops at an empty buffer or end of stream without calling on_closed (the
  // caller acts on the death); bad input still closes as in a read.
  void DeliverBuffered();
  // New heartbeat/liveness settings (e.g. from HelloAck), effective at once.
  void SetLivenessOptions(LivenessOptions opts);

  // Carrying the channel across an exec (docs/design.md §15): the bytes
  // read but not yet decoded (a partial frame), and, on the new side before
  // Start(), the same bytes fed back so that no frame is lost or cut.
  std::string Unconsumed() const { return std::string(decoder_.unconsumed()); }
  void Prime(std::string_view bytes) { decoder_.Feed(bytes); }

  bool closed() const { return closed_; }
  int native_handle() { return socket_.native_handle(); }
  uint64_t frames_received() const { return frames_received_; }
  uint64_t heartbeats_received() const { return heartbeats_received_; }

 private:
  Channel(UnixSocket socket, LivenessOptions opts, const Clock& clock, ChannelCallbacks callbacks);

  void ReadSome();
  void OnReadable(const boost::system::error_code& ec);
  // One recvmsg without waiting: kData fed the decoder; kWouldBlock read
  // nothing yet; kDone is the end (closed as bad input, or, if report_end,
  // through OnReadEnd for end of stream and read errors).
  enum class ReadResult { kData, kWouldBlock, kDone };
  ReadResult ReadOnce(bool report_end = true);
  // End of stream or a read error: closes and reports it.
  void OnReadEnd(const boost::system::error_code& ec);
  // Decodes what was read; false if the channel closed meanwhile.
  bool DeliverFrames();
  void BadInput(v1::Error::Code code, const Error& e);
  void SendFdsByte();
  void WriteNext();
  void OnTimer();
  void Rearm();
  void Fail(const Error& reason);
  void SendHeartbeat();
  void RunFlushed();

  UnixSocket socket_;
  boost::asio::steady_timer timer_;
  const Clock& clock_;
  ChannelCallbacks callbacks_;
  Liveness liveness_;
  FrameDecoder decoder_;
  struct Outgoing {
    std::string frame;
    std::function<void()> on_written;
    std::vector<OwnedFd> fds;  // sent with the first byte, then closed
  };
  std::deque<Outgoing> out_;
  std::vector<std::function<void()>> flushed_;  // WhenFlushed callbacks waiting for out_ to empty
  bool writing_ = false;
  bool closed_ = false;
  TimePoint timer_deadline_ = TimePoint::max();
  uint64_t heartbeat_seq_ = 0;
  uint64_t frames_received_ = 0;
  uint64_t heartbeats_received_ = 0;
  uint64_t bytes_received_ = 0;  // stream offset of the next byte read
  // Descriptors received, by the stream offset of the byte that carried them.
  std::deque<std::pair<uint64_t, std::vector<OwnedFd>>> fds_in_;
  char read_buf_[64 * 1024];
};

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};
// SO_PEERCRED of a connected AF_UNIX socket.
Result<PeerCredentials> GetPeerCredentials(int fd);

}  // namespace baton::protocol
