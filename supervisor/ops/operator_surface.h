// Everything an operator sees besides the admin socket's own replies: the
// events journal (<runtime-dir>/events.jsonl), the Prometheus metrics (for
// `baton metrics` and --metrics-listen), and systemd notifications. It is a
// pure consumer of the supervisor's events: Attach() installs its hooks in
// SupervisorOptions before Supervisor::Create.
//
// Threading: the supervisor's io_context, one thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/log.h"
#include "supervisor/ops/events_file.h"
#include "supervisor/ops/metrics.h"
#include "supervisor/ops/metrics_http.h"
#include "supervisor/ops/notify.h"
#include "supervisor/supervisor.h"

namespace baton::supervisor {

struct OperatorOptions {
  std::string service;      // name for metrics and STATUS=
  std::string runtime_dir;  // events.jsonl goes here (created by the admin server)
  uint64_t events_max_bytes = 4u << 20;
  Duration handoff_deadline = seconds(300);  // for EXTEND_TIMEOUT_USEC
  bool notify = false;                       // send sd_notify messages
};

class OperatorSurface {
 public:
  OperatorSurface(OperatorOptions opts, LogSink& log);
  // Installs on_event and metrics_text in `opts` (this must outlive the
  // supervisor).
  void Attach(SupervisorOptions& opts);
  // Serves GET /metrics on `listen` (HOST:PORT).
  Status ServeMetrics(boost::asio::io_context& io, const std::string& listen);
  // ...or on `fd`, the listener a self-upgrade carried across its exec.
  Status AdoptMetrics(boost::asio::io_context& io, int fd);
  std::string MetricsAddress() const { return http_ ? http_->Address() : ""; }
  // Parks the listeners in systemd's FD store (FDSTORE=1, FDNAME=<name>).
  Status ParkListeners(const Supervisor& sup);

  void OnEvent(const Event& e, const std::string& json);
  std::string MetricsText() const { return metrics_.Render(); }
  // The supervisor's listeners for baton_listener_info (Supervisor::Addresses()).
  void SetListeners(std::vector<std::string> listeners) { metrics_.SetListeners(std::move(listeners)); }

 private:
  OperatorOptions opts_;
  LogSink& log_;
  std::optional<EventsFile> events_file_;
  bool events_file_failed_ = false;
  Metrics metrics_;
  NotifyPolicy notify_;
  std::unique_ptr<MetricsHttpServer> http_;
};

}  // namespace baton::supervisor
