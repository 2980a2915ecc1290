#include "http_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include <fmt/format.h>

#include "http_session.h"
#include "log.h"

namespace kvd {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;
using boost::system::error_code;

HttpServer::HttpServer(asio::io_context& io, Handler handler, baton::LogSink& log, HttpOptions options)
    : handler_(std::move(handler)),
      log_(log),
      opts_(options),
      acceptor_(io),
      accept_retry_(io),
      idle_deadline_(io),
      hard_deadline_(io),
      stop_timer_(io) {}

HttpServer::~HttpServer() = default;

void HttpServer::StartAccepting() {
  draining_ = false;
  handover_ = false;
  handover_done_ = nullptr;
  idle_expired_ = false;
  past_deadline_ = false;
  drain_done_ = nullptr;
  idle_deadline_.cancel();
  hard_deadline_.cancel();
  accepting_ = true;
  if (!accept_pending_) DoAccept();
}

void HttpServer::StopAccepting() {
  accepting_ = false;
  accept_retry_.cancel();
  error_code ignored;
  // cancel(), never close() or shutdown(): the listening socket is shared.
  if (accept_pending_) acceptor_.cancel(ignored);
}

void HttpServer::DoAccept() {
  accept_pending_ = true;
  acceptor_.async_accept([this](error_code ec, Protocol::socket socket) {
    accept_pending_ = false;
    if (!ec) {
      // Served even if we stopped accepting meanwhile: the client is already
      // connected, and closing it would be a reset.
      const uint64_t id = next_id_++;
      auto session = std::make_shared<HttpSession>(*this, id, std::move(socket));
      sessions_.emplace(id, session);
      session->Start();
    }
    if (!accepting_) {
      // A drain that began while this accept was pending waited for it
      // (CheckDrained): the connection just accepted is one of its sessions,
      // handed over or answered before the drain completes, never a request
      // served after the seal.
      CheckDrained();
      return;
    }
    if (!ec || ec == asio::error::operation_aborted) {
      DoAccept();
      return;
    }
    // EMFILE and friends: back off instead of spinning.
    log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.http.accept_failed", "accept: {}", ec.message()));
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](error_code timer_ec) {
      if (!timer_ec && accepting_ && !accept_pending_) DoAccept();
    });
  });
}

std::chrono::milliseconds HttpServer::IdleWait(std::chrono::milliseconds deadline) const {
  // Leave a little of the deadline for requests that start arriving late.
  const auto margin = std::min(std::chrono::milliseconds(1000), deadline / 10);
  auto idle = deadline - margin;
  if (opts_.idle_wait.count() > 0) idle = std::min(idle, opts_.idle_wait);
  return idle;
}

void HttpServer::Drain(std::chrono::milliseconds deadline, std::function<void()> done) {
  StartDrain(deadline, IdleWait(deadline), std::move(done));
}

void HttpServer::StartDrain(std::chrono::milliseconds deadline, std::chrono::milliseconds idle,
                            std::function<void()> done) {
  StopAccepting();
  draining_ = true;
  drain_done_ = std::move(done);
  idle_deadline_.expires_after(idle);
  idle_deadline_.async_wait([this](error_code ec) {
    if (!ec) OnIdleDeadline();
  });
  hard_deadline_.expires_after(deadline);
  hard_deadline_.async_wait([this](error_code ec) {
    if (!ec) OnHardDeadline();
  });
  log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.http.drain", "draining {} sessions, deadline {} ms",
                             sessions_.size(), deadline.count())
                .With("sessions", uint64_t{sessions_.size()}));
  if (!handover_) {  // streams end now (with handover they move between two chunks)
    std::vector<std::shared_ptr<HttpSession>> all;
    for (auto& [id, s] : sessions_) all.push_back(s);
    for (auto& s : all) s->OnDrain();
  }
  CheckDrained();
}

void HttpServer::DrainForHandover(std::chrono::milliseconds deadline,
                                  std::function<void(std::vector<HandedConnection>)> done) {
  handover_ = true;
  handover_done_ = std::move(done);
  // Idle connections wait for the hard deadline: they are handed over long before.
  StartDrain(deadline, deadline, [this] { FinishHandover(); });
}

void HttpServer::FinishHandover() {
  std::vector<std::shared_ptr<HttpSession>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  std::vector<HandedConnection> out;
  uint64_t unread = 0;
  uint64_t streams = 0;
  for (auto& s : all) {
    if (!s->HandOverable()) continue;
    HandedConnection c = s->Release();
    unread += c.unread.size();
    if (c.fd < 0) continue;
    if (c.stream) ++streams;
    out.push_back(std::move(c));
  }
  handover_ = false;
  auto done = std::move(handover_done_);
  handover_done_ = nullptr;
  log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.http.handover",
                           "{} connections released for handover ({} streams between two chunks), {} bytes read "
                           "but not processed",
                           out.size(), streams, unread)
                .With("connections", uint64_t{out.size()})
                .With("streams", streams)
                .With("unread_bytes", unread));
  done(std::move(out));
}

baton::Result<std::shared_ptr<HttpSession>> HttpServer::AdoptSession(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return baton::ErrnoError("adopt: getsockname", err);
  }
  Protocol::socket socket(acceptor_.get_executor());
  error_code ec;
  socket.assign(Protocol(addr.ss_family, addr.ss_family == AF_UNIX ? 0 : IPPROTO_TCP), fd, ec);
  if (ec) {
    ::close(fd);
    return baton::ErrnoError("adopt", ec.value());
  }
  const uint64_t id = next_id_++;
  auto session = std::make_shared<HttpSession>(*this, id, std::move(socket));
  sessions_.emplace(id, session);
  return session;
}

baton::Status HttpServer::Adopt(int fd, const std::string& unread) {
  auto session = AdoptSession(fd);
  if (!session) return session.error();
  (*session)->Prefill(unread);
  (*session)->Start();
  return {};
}

baton::Status HttpServer::AdoptStream(int fd, std::shared_ptr<ChunkSource> source) {
  auto session = AdoptSession(fd);
  if (!session) return session.error();
  (*session)->ContinueStream(std::move(source));
  return {};
}

void HttpServer::OnIdleDeadline() {
  idle_expired_ = true;
  std::vector<std::shared_ptr<HttpSession>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  for (auto& s : all) s->CloseIfIdle();
}

void HttpServer::OnHardDeadline() {
  idle_expired_ = true;
  past_deadline_ = true;
  std::vector<std::shared_ptr<HttpSession>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  size_t closed = 0;
  for (auto& s : all) {
    if (s->state() != HttpSession::State::kProcessing && s->state() != HttpSession::State::kLingering) ++closed;
    s->CloseUnlessProcessing();
  }
  if (closed > 0) {
    log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.http.drain_deadline",
                               "drain deadline: closed {} sessions still reading or writing", closed)
                  .With("closed", uint64_t{closed}));
  }
}

void HttpServer::CheckDrained() {
  // An accept completed but not yet handled may still bring a session.
  if (!draining_ || !drain_done_ || accept_pending_) return;
  for (auto& [id, s] : sessions_) {
    if (handover_ && s->HandOverable()) continue;
    if (s->state() != HttpSession::State::kLingering && s->state() != HttpSession::State::kClosed) return;
  }
  idle_deadline_.cancel();
  hard_deadline_.cancel();
  auto done = std::move(drain_done_);
  drain_done_ = nullptr;
  done();
}

void HttpServer::Forget(uint64_t id) {
  sessions_.erase(id);
  CheckStopped();
}

void HttpServer::Stop(std::chrono::milliseconds grace, std::function<void()> done) {
  stop_done_ = std::move(done);
  stop_timer_.expires_after(grace + opts_.linger);
  stop_timer_.async_wait([this](error_code ec) {
    if (ec || !stop_done_) return;
    auto d = std::move(stop_done_);
    stop_done_ = nullptr;
    Shutdown();
    d();
  });
  // As gentle as a handoff's drain: an idle keep-alive connection gets the
  // idle wait to send its next request (answered with Connection: close)
  // rather than being closed under a request already on its way, which the
  // client would see as a reset.
  StartDrain(grace, IdleWait(grace), [this] { CheckStopped(); });
}

void HttpServer::CheckStopped() {
  if (!stop_done_ || drain_done_ || !sessions_.empty()) return;
  auto d = std::move(stop_done_);  // first: Shutdown comes back here through Forget
  stop_done_ = nullptr;
  stop_timer_.cancel();
  Shutdown();
  d();
}

void HttpServer::Shutdown() {
  StopAccepting();
  idle_deadline_.cancel();
  hard_deadline_.cancel();
  drain_done_ = nullptr;
  std::vector<std::shared_ptr<HttpSession>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  for (auto& s : all) s->CloseNow();
  sessions_.clear();
  error_code ignored;
  acceptor_.close(ignored);
}

}  // namespace kvd
