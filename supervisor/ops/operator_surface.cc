#include "supervisor/ops/operator_surface.h"

#include <time.h>

#include <chrono>

#include <fmt/format.h>

namespace baton::supervisor {
namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t MonotonicUs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

OperatorSurface::OperatorSurface(OperatorOptions opts, LogSink& log)
    : opts_(std::move(opts)),
      log_(log),
      metrics_(opts_.service),
      // systemd waits for the whole handoff plus the slack `baton upgrade` allows.
      notify_(opts_.service, opts_.handoff_deadline + seconds(30)) {}

void OperatorSurface::Attach(SupervisorOptions& opts) {
  opts.on_event = [this](const Event& e, const std::string& json) { OnEvent(e, json); };
  opts.metrics_text = [this] { return MetricsText(); };
  opts.metrics_fd = [this] { return http_ ? http_->native_handle() : -1; };
  opts.save_metrics = [this] { return metrics_.Save(); };
  opts.load_metrics = [this](const std::string& bytes) { metrics_.Load(bytes); };
  opts.on_counted = [this](const Event& e) { metrics_.OnEvent(e, WallMs()); };
}

void OperatorSurface::OnEvent(const Event& e, const std::string& json) {
  metrics_.OnEvent(e, WallMs());
  // The runtime dir exists once the admin server is up, before any event.
  if (!events_file_ && !events_file_failed_) {
    auto j = EventsFile::Open(opts_.runtime_dir, opts_.events_max_bytes);
    if (j) {
      events_file_.emplace(std::move(*j));
    } else {
      events_file_failed_ = true;
      log_.Emit(MakeEvent(Level::kWarn, "events.journal_failed", "{}", j.error().message));
    }
  }
  if (events_file_) {
    if (auto st = events_file_->Append(json); !st) {
      log_.Emit(MakeEvent(Level::kWarn, "events.journal_failed", "{}", st.error().message));
    }
  }
  if (opts_.notify) {
    const std::string msg = notify_.OnEvent(e, MonotonicUs());
    if (!msg.empty()) {
      if (auto st = SdNotifier::Notify(msg); !st) {
        log_.Emit(MakeEvent(Level::kWarn, "notify.failed", "{}", st.error().message));
      }
    }
  }
}

Status OperatorSurface::ServeMetrics(boost::asio::io_context& io, const std::string& listen) {
  auto s = MetricsHttpServer::Start(io, listen, [this] { return MetricsText(); });
  if (!s) return s.error();
  http_ = std::move(*s);
  return {};
}

Status OperatorSurface::AdoptMetrics(boost::asio::io_context& io, int fd) {
  auto s = MetricsHttpServer::Adopt(io, fd, [this] { return MetricsText(); });
  if (!s) return s.error();
  http_ = std::move(*s);
  return {};
}

Status OperatorSurface::ParkListeners(const Supervisor& sup) {
  for (const auto& [name, fd] : sup.ListenerFds()) {
    if (auto st = SdNotifier::StoreFd(name, fd); !st) return st;
  }
  return {};
}

}  // namespace baton::supervisor
