#include "checkpointer.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "log.h"
#include "snapshot.h"
#include "baton/testing.h"

namespace kvd {

Checkpointer::Checkpointer(boost::asio::io_context& io, baton::LogSink& log, const Store& store,
                           const Committer& committer, CheckpointOptions options)
    : log_(log), store_(store), committer_(committer), opts_(std::move(options)), timer_(io) {}

Checkpointer::~Checkpointer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void Checkpointer::Loaded(const WalPosition& pos, uint64_t bytes) {
  snap_pos_ = pos;
  snap_bytes_ = bytes;
}

void Checkpointer::Start() {
  if (started_ || opts_.min_bytes == 0) return;
  started_ = true;
  Arm();
}

uint64_t Checkpointer::BytesSinceSnapshot(const WalPosition& now) const {
  if (now.segment == 0 || now.revision <= snap_pos_.revision) return 0;
  if (snap_pos_.segment == 0) return (now.segment - 1) * opts_.rotate_bytes + now.offset;
  if (now.segment == snap_pos_.segment) return now.offset - std::min(now.offset, snap_pos_.offset);
  // Segments end at about rotate_bytes: close enough for a trigger.
  return (opts_.rotate_bytes - std::min(opts_.rotate_bytes, snap_pos_.offset)) +
         (now.segment - snap_pos_.segment - 1) * opts_.rotate_bytes + now.offset;
}

void Checkpointer::Arm() {
  // While a child writes, look for its exit often: what it took is logged.
  timer_.expires_after(pid_ > 0 ? std::chrono::milliseconds(5) : opts_.check_every);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    if (pid_ > 0) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        Reap(status);
      }
    } else if (committer_.writable() && std::chrono::steady_clock::now() >= retry_at_ &&
               BytesSinceSnapshot(committer_.durable()) >= std::max(opts_.min_bytes, snap_bytes_)) {
      TryNow();
    }
    Arm();
  });
}

bool Checkpointer::TryNow() {
  if (pid_ > 0 || !committer_.writable()) return false;
  const WalPosition pos = committer_.durable();
  // Only durable records are in the Store (the committer applies a batch
  // after its fsync), so the two agree at every point the io thread runs.
  if (pos.revision == 0 || pos.revision != store_.revision() || pos.revision == snap_pos_.revision) return false;
  SnapshotWriter writer(opts_.data_dir, pos);  // allocates here, not in the child
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ++failed_;
    log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.checkpoint.failed", "fork: {}", std::strerror(errno)));
    return false;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(ESRCH);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);
    // Nothing of the parent's: not its listeners, its channel, or the open
    // file that holds the data-dir flock.
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    ::_exit(writer.Write(store_) & 0xff);
  }
  pid_ = pid;
  pending_ = pos;
  began_ = std::chrono::steady_clock::now();
  log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.checkpoint.started", "writing a snapshot at revision {} (pid {})",
                           pos.revision, pid)
                .With("revision", pos.revision)
                .With("pid", int64_t{pid}));
  return true;
}

void Checkpointer::Reap(int status) {
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began_).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ++failed_;
    // A full disk or a broken dir fails again at once: back off (1 s, 2 s,
    // ... 1 min) instead of forking every tick.
    backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(1000), std::chrono::milliseconds(60000));
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
    const std::string why = WIFEXITED(status) ? std::strerror(WEXITSTATUS(status))
                                              : fmt::format("killed by signal {}", WTERMSIG(status));
    log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.checkpoint.failed", "snapshot at revision {} failed: {}",
                             pending_.revision, why)
                  .With("revision", pending_.revision)
                  .With("retry_in_ms", int64_t{backoff_.count()}));
    return;
  }
  ++written_;
  backoff_ = std::chrono::milliseconds(0);
  struct stat st {};
  const std::string path = opts_.data_dir + "/" + SnapshotName(pending_.revision);
  snap_bytes_ = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  snap_pos_ = pending_;
  auto event = kvd::MakeEvent(baton::Level::kInfo, "kvd.checkpoint", "snapshot at revision {} written ({} bytes, {:.1f} ms)",
                              pending_.revision, snap_bytes_, ms)
                   .With("revision", pending_.revision)
                   .With("bytes", snap_bytes_)
                   .With("ms", ms);
  // Removing files is the data-dir owner's business: after a seal the
  // successor owns them.
  if (committer_.writable()) {
    baton::testing::CrashPoint("kvd.checkpoint_before_gc");
    auto gc = RemoveObsolete(opts_.data_dir);
    if (gc) {
      event.With("segments_removed", uint64_t{gc->segments_removed})
          .With("snapshots_removed", uint64_t{gc->snapshots_removed});
    } else {
      event.With("gc_error", gc.error().message);
    }
  }
  log_.Emit(std::move(event));
}

}  // namespace kvd
