// A blocking client for the supervisor's admin socket, for the CLI.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "base/errors.h"
#include "protocol/control.pb.h"
#include "protocol/frame.h"

namespace baton::cli {

class AdminClient {
 public:
  // kUnavailable when nothing listens there (exit code 1 territory).
  static Result<AdminClient> Connect(const std::string& runtime_dir);
  AdminClient(AdminClient&& o) noexcept : fd_(o.fd_), decoder_(std::move(o.decoder_)) { o.fd_ = -1; }
  ~AdminClient();

  Status Send(const v1::Envelope& env);
  // The next frame, waiting up to `timeout` (nullopt = forever). kUnavailable
  // when the supervisor closed the connection.
  Result<v1::Envelope> Receive(std::optional<std::chrono::milliseconds> timeout);

 private:
  explicit AdminClient(int fd) : fd_(fd) {}
  int fd_ = -1;
  protocol::FrameDecoder decoder_;
};


}  // namespace baton::cli
