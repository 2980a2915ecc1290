#include "supervisor/probe.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "supervisor/child_process.h"

extern char** environ;

namespace baton::supervisor {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// One network attempt: the socket, its deadline and the answer, shared by
// the handlers until the first of them finishes it.
struct NetProbe : std::enable_shared_from_this<NetProbe> {
  NetProbe(asio::io_context& io, ProbeSpec s, ProbeDone d)
      : spec(std::move(s)), socket(io), timer(io), done(std::move(d)) {}
  ProbeSpec spec;
  tcp::socket socket;
  asio::steady_timer timer;
  ProbeDone done;
  std::string request;
  std::string response;
  bool finished = false;

  void Finish(bool ok, const std::string& why) {
    if (finished) return;
    finished = true;
    timer.cancel();
    boost::system::error_code ec;
    socket.close(ec);
    done(ok, why);
  }

  void Start(Duration timeout) {
    timer.expires_after(timeout);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->Finish(false, "timed out");
    });
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(spec.host, ec);
    if (ec) return Finish(false, fmt::format("bad probe host '{}'", spec.host));
    socket.async_connect(tcp::endpoint(addr, static_cast<uint16_t>(spec.port)),
                         [self = shared_from_this()](const boost::system::error_code& ec) { self->Connected(ec); });
  }

  void Connected(const boost::system::error_code& ec) {
    if (ec) return Finish(false, "connect: " + ec.message());
    if (spec.kind == ProbeSpec::Kind::kTcp) return Finish(true, "connected");
    request = fmt::format("GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: baton-probe\r\n\r\n", spec.path, spec.host);
    asio::async_write(socket, asio::buffer(request),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                        if (ec) return self->Finish(false, "send: " + ec.message());
                        self->ReadStatus();
                      });
  }

  void ReadStatus() {
    response.resize(64);
    socket.async_read_some(asio::buffer(response), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                               size_t n) {
      if (ec && n == 0) return self->Finish(false, "no response: " + ec.message());
      // "HTTP/1.x NNN": the status is at offset 9.
      const std::string line = self->response.substr(0, n);
      if (line.size() < 12 || line.rfind("HTTP/1.", 0) != 0) return self->Finish(false, "not an HTTP response");
      if (line[9] == '2') return self->Finish(true, "status " + line.substr(9, 3));
      self->Finish(false, "status " + line.substr(9, 3));
    });
  }
};

void RunExec(asio::io_context& io, const ProbeSpec& spec, pid_t pid, Duration timeout, ProbeDone done) {
  std::vector<std::string> env_store;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env_store.emplace_back(*e);
  env_store.push_back(fmt::format("BATON_PROBE_PID={}", pid));
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = spec.command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  const pid_t child = ::fork();
  if (child < 0) return done(false, fmt::format("fork: {}", std::strerror(errno)));
  if (child == 0) {
    ::execve("/bin/sh", argv, envp.data());
    ::_exit(127);
  }
  auto proc = ChildProcess::Adopt(io.get_executor(), child);
  if (!proc) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return done(false, proc.error().message);
  }
  std::shared_ptr<ChildProcess> p = std::move(*proc);
  auto timer = std::make_shared<asio::steady_timer>(io, timeout);
  timer->async_wait([weak = std::weak_ptr<ChildProcess>(p)](const boost::system::error_code& ec) {
    if (auto p = weak.lock(); p && !ec) p->Signal(SIGKILL);
  });
  p->AsyncWaitExit([p, timer, done = std::move(done)](int status) {
    timer->cancel();
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return done(true, "exit 0");
    done(false, WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status)) : "killed (timed out?)");
  });
}

}  // namespace

void RunProbe(asio::io_context& io, const ProbeSpec& spec, pid_t pid, Duration timeout, ProbeDone done) {
  if (spec.kind == ProbeSpec::Kind::kExec) return RunExec(io, spec, pid, timeout, std::move(done));
  std::make_shared<NetProbe>(io, spec, std::move(done))->Start(timeout);
}

}  // namespace baton::supervisor
