#include "server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

namespace cxxd {

struct KvServer::Conn {
  int fd = -1;
  std::string in;
  std::string out;
  bool waiting_commit = false;  // one of its PUTs is in the batch being committed
  bool keep_alive = true;       // of the PUT waiting for its commit
  bool close_after = false;     // close once `out` is written
  bool lingering = false;       // send side shut down; discarding input until EOF
  bool peer_eof = false;
  bool dead = false;
  Clock::time_point linger_until{};

  bool Idle() const { return in.empty() && out.empty() && !waiting_commit && !lingering; }
};

KvServer::KvServer(Store& store, int listen_fd, Options options)
    : store_(store), listen_fd_(listen_fd), opts_(std::move(options)) {}

KvServer::~KvServer() { Stop(); }

baton::Status KvServer::Start() {
  if (::pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) {
    return baton::Error(baton::Errc::kInternal, std::string("pipe: ") + std::strerror(errno));
  }
  // accept4 must never block: another process sharing the socket may take
  // the connection poll reported.
  const int flags = ::fcntl(listen_fd_, F_GETFL);
  if (flags < 0 || ::fcntl(listen_fd_, F_SETFL, flags | O_NONBLOCK) != 0) {
    return baton::Error(baton::Errc::kInternal, std::string("listener: ") + std::strerror(errno));
  }
  thread_ = std::thread([this] { Loop(); });
  return {};
}

void KvServer::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  (void)!::write(wake_[1], "x", 1);
  thread_.join();
  for (auto& c : conns_) ::close(c->fd);
  conns_.clear();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

baton::Status KvServer::Call(std::function<void(Done)> f) {
  auto promise = std::make_shared<std::promise<baton::Status>>();
  auto result = promise->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back([f = std::move(f), promise] { f([promise](baton::Status st) { promise->set_value(st); }); });
  }
  (void)!::write(wake_[1], "x", 1);
  return result.get();
}

void KvServer::Accept(bool on) {
  accepting_ = on;
  if (on) {
    draining_ = false;
    drain_done_ = nullptr;
  }
}

void KvServer::Drain(Clock::time_point deadline, std::chrono::milliseconds idle_wait, std::function<void()> done) {
  accepting_ = false;
  draining_ = true;
  hard_deadline_ = deadline;
  idle_deadline_ = std::min(deadline, Clock::now() + idle_wait);
  drain_done_ = std::move(done);
  // Idle connections learn of the drain with their next response; nothing
  // in flight changes.
  CheckDrained();
}

void KvServer::Loop() {
  std::vector<pollfd> fds;
  std::vector<Conn*> polled;
  for (;;) {
    fds.clear();
    polled.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    const bool poll_listener = accepting_;
    if (poll_listener) fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& c : conns_) {
      short events = c->peer_eof ? 0 : POLLIN;
      if (!c->out.empty()) events |= POLLOUT;
      fds.push_back({c->fd, events, 0});
      polled.push_back(c.get());
    }
    if (::poll(fds.data(), fds.size(), NextTimeoutMs(Clock::now())) < 0 && errno != EINTR) return;

    if (fds[0].revents != 0) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof(buf)) > 0) {
      }
      std::vector<std::function<void()>> work;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        work.swap(posted_);
      }
      for (auto& w : work) w();
    }
    const size_t first_conn = poll_listener ? 2 : 1;
    if (poll_listener && fds[1].revents != 0 && accepting_) AcceptAll();
    for (size_t i = 0; i < polled.size(); ++i) {
      Conn& c = *polled[i];
      const short rev = fds[first_conn + i].revents;
      if (c.dead) continue;
      if (rev & POLLOUT) Flush(c);
      if (rev & (POLLIN | POLLHUP | POLLERR)) ReadIn(c);
    }
    Serve();
    Timers(Clock::now());
    // Closed by the peer with nothing left to answer, or done otherwise.
    for (auto& c : conns_) {
      if (c->peer_eof && !c->waiting_commit && c->out.empty()) c->dead = true;
      if (c->dead) ::close(c->fd);
    }
    std::erase_if(conns_, [](const auto& c) { return c->dead; });
    CheckDrained();
  }
}

void KvServer::AcceptAll() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN (none left, or another process took it), or a transient error
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails harmlessly on Unix sockets
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    conns_.push_back(std::move(c));
  }
}

void KvServer::ReadIn(Conn& c) {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      if (!c.lingering) c.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 || c.lingering) {
      c.dead = true;  // reset, or the client closed after our last response
    } else {
      c.peer_eof = true;
    }
    return;
  }
}

void KvServer::Flush(Conn& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      c.dead = true;
      return;
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  if (c.close_after && !c.lingering) {
    ::shutdown(c.fd, SHUT_WR);
    c.lingering = true;
    c.in.clear();
    c.linger_until = Clock::now() + opts_.linger;
  }
}

void KvServer::Serve() {
  for (;;) {
    std::vector<Record> batch;
    std::vector<Conn*> writers;
    for (auto& cp : conns_) {
      Conn& c = *cp;
      while (!c.dead && !c.lingering && !c.close_after && !c.waiting_commit && !c.in.empty()) {
        Request req;
        const Parsed p = ParseRequest(c.in, &req);
        if (p.kind == Parsed::kIncomplete) break;
        if (p.kind == Parsed::kBad) {
          Respond(c, p.status, "bad request\n", false);  // the next request cannot be found: close
          break;
        }
        c.in.erase(0, p.consumed);
        Handle(c, std::move(req), batch, writers);
      }
    }
    if (batch.empty()) return;
    // Group commit: one append and one fdatasync for every PUT of the round.
    const baton::Status st = store_.Commit(batch);
    for (Conn* c : writers) {
      c->waiting_commit = false;
      if (st) {
        Respond(*c, 200, std::to_string(store_.revision()) + "\n", c->keep_alive);
      } else {
        Respond(*c, 500, st.error().message + "\n", c->keep_alive);
      }
    }
    // Those connections may hold more (pipelined) requests: another round.
  }
}

void KvServer::Handle(Conn& c, Request req, std::vector<Record>& batch, std::vector<Conn*>& writers) {
  if (req.target == "/healthz") {
    if (req.method != "GET") return Respond(c, 405, "GET only\n", req.keep_alive);
    const std::string body = "{\"status\":\"ok\",\"pid\":" + std::to_string(::getpid()) + ",\"role\":\"" +
                             opts_.role + "\",\"revision\":" + std::to_string(store_.revision()) +
                             ",\"writable\":" + (store_.writable() ? "true" : "false") + "}\n";
    return Respond(c, 200, body, req.keep_alive, "application/json");
  }
  if (req.target.rfind("/kv/", 0) != 0 || req.target.size() == 4 || req.target.size() > 4 + 1024) {
    return Respond(c, 404, "no such resource (GET/PUT /kv/<key>, GET /healthz)\n", req.keep_alive);
  }
  std::string key = req.target.substr(4);
  if (req.method == "GET") {
    const std::string* value = store_.Get(key);
    if (value == nullptr) return Respond(c, 404, "no such key\n", req.keep_alive);
    return Respond(c, 200, *value, req.keep_alive);
  }
  if (req.method == "PUT") {
    if (!store_.writable()) return Respond(c, 503, "not the writer\n", req.keep_alive);
    batch.push_back({std::move(key), std::move(req.body)});
    writers.push_back(&c);
    c.waiting_commit = true;
    c.keep_alive = req.keep_alive;
    return;
  }
  Respond(c, 405, "GET or PUT\n", req.keep_alive);
}

void KvServer::Respond(Conn& c, int status, std::string_view body, bool keep_alive, std::string_view content_type) {
  // A bad request, the client's wish, or a drain: the last response here.
  const bool close = !keep_alive || draining_ || status == 400 || (status >= 413 && status < 500);
  c.out += FormatResponse(status, body, close, content_type);
  if (close) c.close_after = true;
  Flush(c);
}

void KvServer::Timers(Clock::time_point now) {
  for (auto& c : conns_) {
    if (c->lingering && now >= c->linger_until) c->dead = true;
    if (!draining_ || c->lingering) continue;
    if (now >= hard_deadline_) c->dead = true;
    if (now >= idle_deadline_ && c->Idle()) c->dead = true;
  }
}

int KvServer::NextTimeoutMs(Clock::time_point now) const {
  Clock::time_point next = Clock::time_point::max();
  for (const auto& c : conns_) {
    if (c->lingering) next = std::min(next, c->linger_until);
  }
  if (draining_ && now < idle_deadline_) {
    next = std::min(next, idle_deadline_);
  } else if (draining_ && now < hard_deadline_) {
    next = std::min(next, hard_deadline_);
  }
  if (next == Clock::time_point::max()) return -1;
  if (next <= now) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
  return static_cast<int>(std::min<int64_t>(ms, 60'000));
}

void KvServer::CheckDrained() {
  if (!draining_ || !drain_done_) return;
  for (const auto& c : conns_) {
    if (!c->lingering) return;
  }
  auto done = std::move(drain_done_);
  drain_done_ = nullptr;
  done();
}

}  // namespace cxxd
