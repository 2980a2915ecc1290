// Test helpers for kvd: temp dirs, a blocking keep-alive HTTP client, and an
// in-process kvd (io thread + service + server + hooks) the tests drive
// through the same hooks baton calls.
#pragma once

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <type_traits>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "base/log.h"
#include "examples/kvd/http_server.h"
#include "examples/kvd/kvd_hooks.h"
#include "examples/kvd/service.h"
#include "tools/harness/subprocess.h"

namespace kvd::testing {

// A drain deadline `ms` milliseconds from now.
inline baton::Hooks::Deadline InMs(int64_t ms) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
}

// The harness's self-removing /tmp/bt-kvd-XXXXXX (BATON_KEEP_TEST_DIRS=1
// keeps it), plus a path inside it.
class TempDir : public baton::harness::TempDir {
 public:
  TempDir() : baton::harness::TempDir("kvd") {}
  std::string file(const std::string& name) const { return path() + "/" + name; }
};

// One keep-alive connection to 127.0.0.1:port. Blocking; throws on errors
// (gtest reports them), except where an error_code is returned.
class Client {
 public:
  explicit Client(uint16_t port) : socket_(io_) {
    socket_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  }
  explicit Client(const std::string& unix_path) : socket_(io_) {
    socket_.connect(boost::asio::local::stream_protocol::endpoint(unix_path));
  }
  Response Call(boost::beast::http::verb verb, const std::string& target, const std::string& body = "") {
    Request req{verb, target, 11};
    req.set(boost::beast::http::field::host, "127.0.0.1");
    if (verb == boost::beast::http::verb::put) req.body() = body;
    req.prepare_payload();
    boost::beast::http::write(socket_, req);
    return Read();
  }
  Response Put(const std::string& key, const std::string& value) {
    return Call(boost::beast::http::verb::put, "/kv/" + key, value);
  }
  Response Get(const std::string& key) { return Call(boost::beast::http::verb::get, "/kv/" + key); }
  void SendRaw(const std::string& bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes)); }
  Response Read() {
    Response res;
    boost::beast::http::read(socket_, buffer_, res);
    return res;
  }
  // What the next read sees: eof for a clean close (never connection_reset).
  boost::system::error_code ReadUntilError() {
    char c[64];
    boost::system::error_code ec;
    while (!ec) socket_.read_some(boost::asio::buffer(c), ec);
    return ec;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::generic::stream_protocol::socket socket_;
  boost::beast::flat_buffer buffer_;
};

// kvd in this process, wired like main.cc wires it.
class Instance {
 public:
  explicit Instance(const std::string& dir, HttpOptions http = {}, HookOptions hooks = {})
      : service_(io_, log_, {.data_dir = dir}),
        server_(
            io_, [this](Request&& req, Respond respond) { service_.Handle(std::move(req), std::move(respond)); },
            log_, http),
        hooks_(io_, service_, server_, log_, hooks),
        thread_([this] { io_.run(); }) {}
  ~Instance() {
    (void)hooks_.Shutdown(std::chrono::milliseconds(1000));
    io_.stop();
    thread_.join();
  }

  // Runs f on the io thread and returns its result.
  template <class F>
  auto OnIo(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

  baton::Status Bind() {
    return OnIo([this] { return server_.Bind("127.0.0.1", 0); });
  }
  baton::Status Adopt(int fd) {
    return OnIo([this, fd] { return server_.Listen(fd); });
  }
  uint16_t port() {
    return OnIo([this] { return server_.port(); });
  }
  bool draining() {
    return OnIo([this] { return server_.draining(); });
  }
  uint64_t revision() {
    return OnIo([this] { return service_.store().revision(); });
  }
  std::string fingerprint() {
    return OnIo([this] { return service_.store().fingerprint(); });
  }

  KvdHooks& hooks() { return hooks_; }
  KvService& service() { return service_; }
  baton::RecordingSink& log() { return log_; }

 private:
  baton::RecordingSink log_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  KvService service_;
  HttpServer server_;
  KvdHooks hooks_;
  std::thread thread_;
};

// Polls `cond` until true or a generous bound passes (no timing assertion).
template <class F>
bool Eventually(F cond, std::chrono::seconds bound = std::chrono::seconds(30)) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

}  // namespace kvd::testing
