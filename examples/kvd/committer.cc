#include "committer.h"

#include <memory>
#include <utility>

#include <boost/asio/post.hpp>

#include "log.h"

namespace kvd {

namespace asio = boost::asio;
using baton::Errc;
using baton::Error;

Committer::Committer(asio::io_context& io, Store& store, baton::LogSink& log, std::chrono::microseconds delay)
    : io_(io), store_(store), log_(log), delay_(delay), delay_timer_(io) {}

Committer::~Committer() { disk_.join(); }

void Committer::Attach(WalWriter writer) {
  next_revision_ = writer.position().revision + 1;
  durable_ = writer.position();
  writer_.emplace(std::move(writer));
  failed_ = false;
  rewound_ = {};
}

void Committer::Submit(std::string key, std::string value, Done done) {
  if (!writable()) {
    done(Error(Errc::kUnavailable, failed_ ? "wal failed: writes are refused until restart"
                                           : "not the writer (sealed or not started)"));
    return;
  }
  uint64_t epoch = 0;
  if (fence_) {
    epoch = fence_();
    if (epoch == 0) {
      done(Error(Errc::kUnavailable, "not the leader: this process does not hold the lease"));
      return;
    }
  }
  const uint64_t revision = next_revision_++;
  pending_bytes_ += EncodeRecord(WalRecord{revision, key, value, epoch});
  pending_.push_back(Item{revision, std::move(key), std::move(value), std::move(done)});
  if (in_flight_ || delay_armed_) return;  // joins the next batch
  if (delay_.count() == 0) {
    StartFlush();
    return;
  }
  delay_armed_ = true;
  delay_timer_.expires_after(delay_);
  delay_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // only cancelled by our destructor
    delay_armed_ = false;
    if (!in_flight_ && !pending_.empty()) StartFlush();
  });
}

void Committer::StartFlush() {
  auto batch = std::make_shared<Batch>();
  batch->bytes = std::move(pending_bytes_);
  batch->items = std::move(pending_);
  pending_bytes_.clear();
  pending_.clear();
  in_flight_ = true;
  WalWriter* writer = &*writer_;
  const uint64_t last = batch->items.back().revision;
  asio::post(disk_, [this, writer, batch, last] {
    // Disk thread: the writer is ours until the post back below.
    batch->status = writer->Append(batch->bytes, last);
    if (batch->status) batch->status = writer->Sync();
    batch->end = writer->position();
    asio::post(io_, [this, batch] { FinishFlush(batch); });
  });
}

void Committer::FinishFlush(std::shared_ptr<Batch> batch) {
  in_flight_ = false;
  ++batches_;
  if (!batch->status) {
    failed_ = true;
    log_.Emit(kvd::MakeEvent(baton::Level::kError, "kvd.wal.failed", "{}", batch->status.error().message));
    // The writer is back on the io thread. Nothing of this batch was
    // acknowledged: take it off the log, so that what a successor replays
    // ends at durable_.
    rewound_ = writer_->Rewind(durable_);
    if (!rewound_) {
      log_.Emit(kvd::MakeEvent(baton::Level::kError, "kvd.wal.failed", "{}", rewound_.error().message));
    }
    FailAll(batch->items, batch->status.error());
    FailAll(pending_, batch->status.error());
    pending_bytes_.clear();
  } else {
    durable_ = batch->end;
    for (auto& item : batch->items) {
      store_.Apply(item.revision, item.key, item.value);
      if (applied_) applied_(item.revision, item.key, item.value);
      ++records_;
      item.done(item.revision);
    }
    if (!pending_.empty() && !delay_armed_) StartFlush();
  }
  NotifyIfIdle();
}

void Committer::FailAll(std::vector<Item>& items, const Error& e) {
  auto taken = std::move(items);
  items.clear();
  for (auto& item : taken) item.done(Error(Errc::kUnavailable, e.message));
}

void Committer::WhenIdle(std::function<void()> done) {
  idle_waiters_.push_back(std::move(done));
  NotifyIfIdle();
}

void Committer::NotifyIfIdle() {
  if (!idle() || idle_waiters_.empty()) return;
  auto waiters = std::move(idle_waiters_);
  idle_waiters_.clear();
  for (auto& w : waiters) w();
}

Result<WalPosition> Committer::Close() {
  if (!idle()) return Error(Errc::kInternal, "wal: close with writes in flight");
  if (!writer_) return Error(Errc::kFailedPrecondition, "wal: no writer open");
  const WalPosition pos = writer_->position();
  auto st = writer_->Close();
  writer_.reset();
  if (failed_ && !rewound_) {
    return Error(Errc::kUnavailable,
                 "wal: an earlier write failed and could not be cut off the log: " + rewound_.error().message);
  }
  if (!st) {
    failed_ = true;
    return st.error();
  }
  return pos;
}

}  // namespace kvd
