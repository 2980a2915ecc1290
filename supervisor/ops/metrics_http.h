// `--metrics-listen HOST:PORT`: a tiny HTTP/1.1 server (Boost.Beast) that
// answers GET /metrics with the Prometheus text of Metrics::Render(). One
// request per connection (Connection: close); anything but GET /metrics is
// a 404; a client that sends nothing is dropped after 10 s.
//
// Threading: the supervisor's io_context; `render` is called on it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/errors.h"

namespace baton::supervisor {

class MetricsHttpServer {
 public:
  // Binds HOST:PORT (port 0 = any; see Address()).
  static Result<std::unique_ptr<MetricsHttpServer>> Start(boost::asio::io_context& io, const std::string& listen,
                                                           std::function<std::string()> render);
  // Takes over `fd`, a metrics listener served before our own exec.
  static Result<std::unique_ptr<MetricsHttpServer>> Adopt(boost::asio::io_context& io, int fd,
                                                           std::function<std::string()> render);
  virtual ~MetricsHttpServer() = default;
  virtual int native_handle() = 0;
  // "127.0.0.1:9100" as actually bound.
  virtual std::string Address() const = 0;
};

}  // namespace baton::supervisor
