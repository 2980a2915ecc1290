// One HTTP/1.1 connection of kvd's HttpServer (http_server.h): reading a
// request, handing it to the server's handler, writing the response (whole,
// or streamed in chunks from a ChunkSource), the lingering close, and
// giving the connection up for a handover.
//
// A streaming response (state kStreaming) has one write in flight at most.
// Between writes it waits for its source; that is a chunk boundary, where
// it can be handed over (the source's HandoverState says where the next
// generation continues). A drain without handover ends the stream: what
// the source has ready, then the terminating chunk, then a lingering close.
// It also ends (same way) when the source says so. The connection is never
// reused after a stream.
//
// Owned by the server's session map and by every pending handler (shared
// ownership: a completion that runs after the server forgot the session
// still finds it alive and sees state kClosed).
//
// Threading: the io_context's single thread only, like the server.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "http_server.h"

namespace kvd {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  using Protocol = boost::asio::generic::stream_protocol;
  enum class State { kIdle, kReading, kProcessing, kWriting, kStreaming, kLingering, kClosed };

  HttpSession(HttpServer& server, uint64_t id, Protocol::socket socket)
      : server_(server), id_(id), socket_(std::move(socket)), timer_(socket_.get_executor()) {}

  State state() const { return state_; }
  void Start() { WaitForRequest(); }

  // Handover: between requests, or before a request's header is complete
  // (every byte of it is still raw in buffer_, see ReadRequest).
  // A stream: between two chunks.
  bool HandOverable() const {
    return state_ == State::kIdle || (state_ == State::kReading && header_pending_) ||
           (state_ == State::kStreaming && !stream_writing_);
  }
  // Gives up the connection without closing it: its fd and unread bytes.
  HandedConnection Release();
  // Handed over to us: what the previous generation read but did not process.
  void Prefill(const std::string& bytes);
  // Handed over to us between two chunks of a streaming response.
  void ContinueStream(std::shared_ptr<ChunkSource> source);
  // A drain began: a stream without handover ends now.
  void OnDrain();

  // Drain, idle deadline: close unless a request has begun to arrive.
  void CloseIfIdle();
  // Drain, hard deadline.
  void CloseUnlessProcessing();
  void CloseNow();

 private:
  bool RequestBytesWaiting();
  void WaitForRequest();
  void ReadRequest();
  bool HeaderBuffered() const;
  void ReadMoreHeader();
  static bool IsExpectContinue(const Request& req);
  void ReadBody(boost::system::error_code ec);
  void OnRequest(boost::system::error_code ec);
  void OnResponse(Response res);
  void OnWritten(boost::system::error_code ec);
  void Linger();
  void Discard();
  void OnStream(Response head, std::shared_ptr<ChunkSource> source);
  void StartStream(std::shared_ptr<ChunkSource> source);
  void Pump();
  void OnStreamWritten(boost::system::error_code ec);
  void WatchForClose();

  HttpServer& server_;
  const uint64_t id_;
  Protocol::socket socket_;
  boost::asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::optional<Response> res_;
  std::array<char, 1024> discard_{};
  State state_ = State::kIdle;
  bool keep_alive_ = true;
  bool close_after_ = false;
  bool header_pending_ = false;  // reading: the header is not complete yet
  unsigned version_ = 11;
  std::shared_ptr<ChunkSource> stream_;
  std::string stream_out_;  // the write in flight (or the head, before the first)
  bool stream_writing_ = false;
  bool stream_ending_ = false;  // the write in flight ends the stream
};

}  // namespace kvd
