#include "service.h"

#include <unistd.h>

#include <fmt/format.h>

#include "json.h"
#include "log.h"
#include "snapshot.h"
#include "watch_stream.h"

namespace kvd {

namespace http = boost::beast::http;
using baton::Errc;
using baton::Error;

KvService::KvService(boost::asio::io_context& io, baton::LogSink& log, ServiceOptions options)
    : log_(log),
      opts_(std::move(options)),
      history_(opts_.watch_history_bytes),
      committer_(io, store_, log, opts_.group_commit),
      checkpointer_(io, log, store_, committer_,
                    {.data_dir = opts_.data_dir, .min_bytes = opts_.checkpoint_bytes,
                     .rotate_bytes = opts_.rotate_bytes}) {
  if (opts_.lease_epoch) committer_.SetFence(opts_.lease_epoch);
  committer_.SetApplied([this](uint64_t revision, std::string_view key, std::string_view value) {
    history_.Append(revision, key, value);
  });
}

Status KvService::LoadSnapshot() {
  auto snap = LoadLatestSnapshot(opts_.data_dir, &log_);
  if (!snap) return snap.error();
  store_.Clear();
  pos_ = WalPosition{};
  checkpointer_.Loaded({}, 0);
  history_.Reset(1);
  if (!snap->has_value()) return {};
  LoadedSnapshot& s = **snap;
  const size_t keys = s.map.size();
  store_.Restore(std::move(s.map), s.revision, s.history);
  pos_ = s.position;
  checkpointer_.Loaded(s.position, s.bytes);
  history_.Reset(s.revision + 1);  // what came before the snapshot is compacted
  log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.snapshot.loaded", "loaded {} keys at revision {} from {}", keys,
                           s.revision, s.path)
                .With("revision", s.revision)
                .With("keys", uint64_t{keys})
                .With("bytes", s.bytes));
  return {};
}

Result<ReplayResult> KvService::CatchUp(ReplayMode mode) {
  if (pos_ == WalPosition{} && store_.revision() == 0) {
    if (auto st = LoadSnapshot(); !st) return st.error();
  }
  auto r = Replay(mode);
  if (!r && mode == ReplayMode::kReadOnly && r.error().code == Errc::kFailedPrecondition && pos_.segment != 0) {
    // The writer may have checkpointed twice since we loaded and removed
    // the segment we were at; its newest snapshot covers it.
    log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.replay.restart", "{}; starting again from the latest snapshot",
                             r.error().message));
    if (auto st = LoadSnapshot(); !st) return st.error();
    r = Replay(mode);
  }
  if (!r) return r.error();
  pos_ = r->end;
  log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.replay", "replayed {} records, now at revision {} (segment {} offset {})",
                             r->records, store_.revision(), pos_.segment, pos_.offset)
                .With("records", r->records)
                .With("revision", store_.revision())
                .With("fingerprint", store_.fingerprint())
                .With("read_only", mode == ReplayMode::kReadOnly));
  return r;
}

Result<ReplayResult> KvService::Replay(ReplayMode mode) {
  return ReplayWal(
      opts_.data_dir, pos_, mode,
      [this](const WalRecord& rec) -> Status {
        store_.Apply(rec.revision, rec.key, rec.value);
        history_.Append(rec.revision, rec.key, rec.value);
        return {};
      },
      &log_);
}

Status KvService::Reload() {
  store_.Clear();
  pos_ = WalPosition{};
  auto r = CatchUp(ReplayMode::kRepair);
  if (!r) return r.error();
  return {};
}

Status KvService::OpenWriter() {
  if (store_.revision() != pos_.revision) {
    return Error(Errc::kInternal, fmt::format("store at revision {} but the WAL position at {}", store_.revision(),
                                              pos_.revision));
  }
  auto writer = WalWriter::Open(opts_.data_dir, pos_, opts_.rotate_bytes);
  if (!writer) return writer.error();
  committer_.Attach(std::move(*writer));
  checkpointer_.Start();
  return {};
}

Status KvService::CloseWriter() {
  auto end = committer_.Close();
  if (!end) return end.error();
  pos_ = *end;
  return {};
}

Response KvService::Text(const Request& req, unsigned status, std::string body) const {
  Response res{static_cast<http::status>(status), req.version()};
  res.set(http::field::content_type, "text/plain");
  res.body() = std::move(body);
  return res;
}

void KvService::Handle(Request&& req, Respond respond) {
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.starts_with("/kv/")) {
    HandleKv(std::move(req), std::string(path.substr(4)), std::move(respond));
    return;
  }
  if (path == "/watch") {
    const auto q = target.find('?');
    HandleWatch(req, q == std::string_view::npos ? std::string_view() : target.substr(q + 1), std::move(respond));
    return;
  }
  if (req.method() != http::verb::get) {
    respond(Text(req, 405, "method not allowed\n"));
    return;
  }
  Response res{http::status::ok, req.version()};
  res.set(http::field::content_type, "application/json");
  if (path == "/healthz" && opts_.fail_healthz) {
    respond(Text(req, 503, "unhealthy (--fail-healthz)\n"));
    return;
  }
  if (path == "/healthz") {
    res.body() = fmt::format(
        R"({{"status":"ok","pid":{},"role":{},"phase":{},"build_id":{},"revision":{},"writable":{},)"
        R"("lease_epoch":{}}})"
        "\n",
        ::getpid(), JsonString(opts_.role), JsonString(phase_), JsonString(opts_.build_id),
        store_.revision(), committer_.writable(), opts_.lease_epoch ? opts_.lease_epoch() : 0);
  } else if (path == "/stats") {
    const WalPosition& wal = committer_.writable() ? committer_.durable() : pos_;
    res.body() = fmt::format(
        R"({{"revision":{},"fingerprint":"{}","keys":{},"wal_segment":{},"wal_offset":{},"batches":{},)"
        R"("records":{},"checkpoints":{},"snapshot_revision":{}}})"
        "\n",
        store_.revision(), store_.fingerprint(), store_.size(), wal.segment, wal.offset, committer_.batches(),
        committer_.records(), checkpointer_.written(), checkpointer_.snapshot_position().revision);
  } else {
    respond(Text(req, 404, "no such path\n"));
    return;
  }
  respond(std::move(res));
}

void KvService::HandleKv(Request&& req, std::string key, Respond respond) {
  if (key.empty() || key.size() > opts_.max_key_bytes) {
    respond(Text(req, 400, fmt::format("key must be 1..{} bytes\n", opts_.max_key_bytes)));
    return;
  }
  if (req.method() == http::verb::get) {
    auto value = store_.Get(key);
    if (!value) {
      respond(Text(req, 404, "not found\n"));
      return;
    }
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/octet-stream");
    res.set("X-Kvd-Revision", std::to_string(store_.revision()));
    res.body().assign(value->data(), value->size());
    respond(std::move(res));
    return;
  }
  if (req.method() != http::verb::put) {
    Response res = Text(req, 405, "method not allowed\n");
    res.set(http::field::allow, "GET, PUT");
    respond(std::move(res));
    return;
  }
  const unsigned version = req.version();
  committer_.Submit(std::move(key), std::move(req.body()),
                    [respond = std::move(respond), version](Result<uint64_t> rev) {
                      Response res{rev ? http::status::ok : http::status::service_unavailable, version};
                      res.set(http::field::content_type, "text/plain");
                      if (rev) {
                        res.set("X-Kvd-Revision", std::to_string(*rev));
                        res.body() = fmt::format("{}\n", *rev);
                      } else {
                        res.body() = rev.error().message + "\n";
                      }
                      respond(std::move(res));
                    });
}

void KvService::HandleWatch(const Request& req, std::string_view query, Respond respond) {
  if (req.method() != http::verb::get) {
    Response res = Text(req, 405, "method not allowed\n");
    res.set(http::field::allow, "GET");
    respond(std::move(res));
    return;
  }
  if (req.version() < 11) {
    respond(Text(req, 400, "watch needs HTTP/1.1 (chunked encoding)\n"));
    return;
  }
  const uint64_t next = store_.revision() + 1;
  uint64_t from = next;
  // Parameters other than `from` are ignored.
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (!param.starts_with("from=")) continue;
    auto rev = WatchStream::ParseRevision(param.substr(5));
    if (!rev) {
      respond(Text(req, 400, "from must be a revision (a decimal number >= 1)\n"));
      return;
    }
    from = *rev;
  }
  if (from > next) {
    respond(Text(req, 400, fmt::format("from={} is in the future: the next revision is {}\n", from, next)));
    return;
  }
  if (from < history_.oldest()) {
    Response res{http::status::gone, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = history_.CompactedLine();
    respond(std::move(res));
    return;
  }
  Response head{http::status::ok, req.version()};
  head.set(http::field::content_type, "application/x-ndjson");
  respond.Stream(std::move(head), std::make_shared<WatchStream>(history_, from));
}

Result<std::shared_ptr<ChunkSource>> KvService::ResumeWatch(std::string_view state) {
  auto next = WatchStream::ParseHandoverState(state);
  if (!next) return Error(Errc::kInvalidArgument, fmt::format("not a watch's handover state: '{}'", state.substr(0, 64)));
  return std::shared_ptr<ChunkSource>(std::make_shared<WatchStream>(history_, *next));
}

}  // namespace kvd
