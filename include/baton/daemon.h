// The daemon side of baton: what a daemon links to be upgradable.
//
//   auto daemon = baton::Daemon::Create({.build_id = "kvd 1.2"});  // before threads
//   int fd = *daemon->Listener("http");          // inherited (or opened by you when standalone)
//   MyHooks hooks(...);                          // implements baton::Hooks
//   daemon->Start(hooks);                        // cold start / standalone: takes the data-dir lock now
//   ... serve ...
//   return daemon->WaitForExit();                // returns once this generation must exit
//
// Role detection: started by `baton supervise` as a cold start or as the
// successor of a handoff, or with no supervisor at all — then the daemon just
// runs (Start takes the data-dir lock, no hook is ever called).
//
// Threading: hooks are called one at a time from a library thread, never
// concurrently with each other. They may block for a long time: the library
// keeps heartbeating on its own thread meanwhile. Only silence or the
// handoff's wall-clock deadline aborts a handoff.
//
// Errors: nothing here throws; fallible calls return Status or Result<T>
// (baton/errors.h). A hook that throws is treated as a hook that failed.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/errors.h"
#include "baton/export.h"
#include "baton/lease.h"
#include "baton/log.h"

namespace baton {

enum class Role {
  kStandalone,  // no supervisor
  kColdStart,   // started by the supervisor, first of its line (or a restart)
  kSuccessor,   // started by the supervisor for a handoff
};

struct InheritedSocket {
  std::string name{};
  // A listening stream socket (tcp://, unix:), or for a udp:// listener a
  // bound, unconnected SOCK_DGRAM socket (SO_TYPE tells them apart; read
  // it with recvfrom, answer with sendto). O_CLOEXEC; the daemon owns it
  // once Start() returns, and keeps it open across a drain.
  int fd = -1;
};

// What the incumbent sealed, handed to the successor's Begin.
struct SealedState {
  // false when the incumbent died before sealing: there is nothing to
  // verify against; recover from disk (every acknowledged write was fsynced).
  bool sealed = true;
  uint64_t revision = 0;
  std::string fingerprint{};
  uint64_t data_generation = 0;
  uint64_t lease_epoch = 0;
};

// What a descriptor handed over in a handoff is (docs/integrate.md,
// "Handing over connections").
enum class HandoverKind {
  kConnection,  // a connected SOCK_STREAM socket (TCP, Unix)
  kFile,        // any other descriptor, unchecked
};

// A descriptor handed over, as the successor's Begin (or, after a
// rollback, the incumbent's Resume) receives it. `fd` is O_CLOEXEC and
// owned by whoever called Daemon::TakeHandedOver.
struct HandedOverFd {
  std::string name{};      // as the incumbent named it
  HandoverKind kind = HandoverKind::kFile;
  int fd = -1;
  std::string metadata{};  // the incumbent's bytes, e.g. what it read but did not process
};

// What a daemon's seal reports.
struct SealReport {
  uint64_t revision = 0;    // the last durable revision
  std::string fingerprint{};  // a digest of the state at `revision`
};

// The daemon's part of a handoff. Every hook runs on the library's hook
// thread, one at a time; the object must outlive the Daemon it is started
// with.
class BATON_EXPORT Hooks {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  virtual ~Hooks() = default;
  // Successor, before the incumbent is touched: slow start-up that needs no
  // ownership (open caches, read-only replay of the data dir).
  virtual Status Warm() = 0;
  // Incumbent: stop accepting new connections, finish in-flight requests by
  // `deadline`, close keep-alive connections at response boundaries, fsync.
  // Listening FDs must stay open (close only your own dups, if any): the
  // supervisor keeps them for the successor.
  virtual Status Drain(Deadline deadline) = 0;
  // Incumbent: flush and close the writer. After it returns ok the library
  // releases the data-dir lock: no write may happen after this returns.
  // If the writer failed earlier, report the last durable revision: the
  // successor replays from disk.
  virtual Result<SealReport> Seal() = 0;
  // Successor: the library holds the data-dir lock and bumped the data
  // generation. Replay the tail, verify `sealed` (an error rolls back), open
  // the writer, start accepting.
  virtual Status Begin(const SealedState& sealed) = 0;
  // Incumbent after a rollback, the lock re-taken: accept and write again.
  // `data_changed`: another process owned the data meanwhile; reload it from
  // disk rather than trusting memory.
  virtual Status Resume(bool data_changed) = 0;
  // Incumbent after Commit: stop serving (finish remaining reads). After it
  // returns, WaitForExit() returns and the process should exit 0.
  virtual void Retire() = 0;
};

// Every member has a default, so designated initialisers may name any
// subset of them (also under -Wextra).
struct DaemonOptions {
  std::string build_id{};         // shown by `baton status`
  uint32_t state_schema_min = 1;  // on-disk state versions this build reads and writes
  uint32_t state_schema_max = 1;
  std::string data_dir{};         // default: $BATON_DATA_DIR; required
  // Where the library's events go; not owned, must outlive the Daemon.
  // nullptr: JSON lines on stderr.
  LogSink* log = nullptr;
  // A Postgres leader lease this daemon holds while it serves, handed to
  // the successor inside Seal (see baton/lease.h). Unset: the lease of the
  // supervisor's [lease] section if it has one (LeaseOptionsFromEnvironment),
  // else no lease, and libpq is never loaded. With a lease, Create loads
  // libpq (libpq.so.5) and fails with kFailedPrecondition if it cannot.
  std::optional<LeaseOptions> lease{};
};

// One generation of a daemon. Create it once per process; destroy it only
// after WaitForExit() returned (or Start() failed).
class BATON_EXPORT Daemon {
 public:
  virtual ~Daemon() = default;

  // Reads and removes the supervisor's environment contract (LISTEN_FDS,
  // LISTEN_FDNAMES, BATON_CONTROL_FD, BATON_ROLE, ...) and arms
  // BATON_CRASH_AT. Call once, before starting any thread. Errors say what is
  // wrong with the environment (a daemon must not run on a half-valid
  // contract).
  static Result<std::unique_ptr<Daemon>> Create(DaemonOptions options);

  // The accessors are thread-safe (the values never change after Create).
  virtual Role role() const = 0;
  virtual const std::vector<InheritedSocket>& listeners() const = 0;
  // The inherited listener with this name (kNotFound otherwise), a
  // listening stream socket or a udp:// listener's datagram socket (see
  // InheritedSocket). The fd stays owned by the Daemon until Start()
  // returns, then by the caller.
  virtual Result<int> Listener(std::string_view name) const = 0;
  virtual const std::string& data_dir() const = 0;
  // The lease, when there is one (DaemonOptions::lease; nullptr otherwise). Owned
  // by the daemon; valid until it is destroyed.
  virtual const Lease* lease() const = 0;

  // Cold start / standalone: takes the data-dir lock (kFailedPrecondition if
  // another process holds it) and bumps the data generation. With a lease,
  // first checks it can use the lease table (a missing privilege fails
  // here; an unreachable Postgres does not: the lease keeps trying), then
  // campaigns for the lease without waiting for it. Successor: takes part in
  // the handoff; Warm and Begin are called from here on. Returns once the
  // daemon may serve (successor: after Begin succeeded). Does not call hooks
  // when standalone. Call once (kFailedPrecondition the second time);
  // `hooks` must outlive the Daemon. Blocks the calling thread.
  virtual Status Start(Hooks& hooks) = 0;

  // Blocks until this generation must exit: after Retire (committed away),
  // when the supervisor is gone and the failure rules say to exit, or after
  // RequestExit(). Returns the exit code the process should use. May be
  // called from any thread, by several at once.
  virtual int WaitForExit() = 0;

  // Makes WaitForExit() return `code` (the first request wins), e.g. from
  // the daemon's own SIGTERM handling thread; a Start() still waiting fails
  // with kAborted. The library installs no signal handlers: the daemon owns
  // its signals. Thread-safe; not async-signal-safe (call it from a thread
  // that waits for signals, not from a signal handler).
  virtual void RequestExit(int code) = 0;

  // Tells the supervisor this generation is not healthy, `reason` saying
  // why (copied). During the probation after an upgrade the supervisor then
  // reverts to the previous binary (a handoff: Drain, Seal and Retire run
  // here as for any upgrade); outside one it is recorded as an event.
  // Returns once the report is queued, not when it is acted on.
  // kFailedPrecondition: no supervisor (standalone), before the supervisor
  // accepted this generation (cold start: after Start() returned), or a
  // supervisor too old to take health reports. Thread-safe.
  virtual Status ReportUnhealthy(std::string_view reason) = 0;

  // ---- descriptor and state handover (docs/integrate.md) ----
  // Incumbent, only from inside Drain or Seal: hands `fd` to the successor
  // instead of closing it, under `name` (unique in this handoff), with
  // `metadata` (at most 256 KiB, opaque to baton). On success the library
  // owns `fd`: stop using it at once. On error the caller still owns it.
  // Until the commit it stays this generation's: the library keeps it, no
  // process serves it, and on any rollback TakeHandedOver returns it to this
  // generation's Resume. A kConnection must be a connected SOCK_STREAM socket.
  // Check SuccessorAcceptsHandover() before releasing connections for it.
  // kFailedPrecondition: not inside Drain or Seal, the successor does not
  // accept handed-over descriptors, or over the supervisor's per-handoff
  // maximum (1024 by default); kInvalidArgument: a bad name, kind or
  // metadata. Thread-safe.
  virtual Status HandOver(HandoverKind kind, std::string_view name, int fd, std::string_view metadata) = 0;
  // Incumbent, only from inside Drain or Seal: `bytes` (any size; copied
  // into a sealed memfd) go to the successor as its state; a second call
  // replaces the first. On rollback it comes back to Resume. Fails like
  // HandOver when the successor does not accept a handover. Thread-safe.
  virtual Status SetHandoverState(std::string_view bytes) = 0;
  // Successor from Begin on: the descriptors the incumbent handed over.
  // Incumbent from Resume on (after a rollback): its own, back. Each call
  // returns what has not been taken yet; the caller owns the fds.
  // Thread-safe.
  virtual std::vector<HandedOverFd> TakeHandedOver() = 0;
  // Like TakeHandedOver, for the state blob; nullopt if there is none.
  virtual std::optional<std::string> TakeHandoverState() = 0;

  // Before Start(), from the thread that calls it: says that this build
  // takes what an incumbent hands over (TakeHandedOver, TakeHandoverState)
  // in Begin. The successor's Hello carries it to the supervisor, which
  // tells the incumbent. A generation that does not say so is never handed
  // anything: its incumbent's HandOver and SetHandoverState fail, so the
  // incumbent closes its connections politely instead of leaving them to a
  // process that would never serve them. kFailedPrecondition after Start().
  virtual Status AcceptHandover() = 0;
  // Incumbent, inside Drain or Seal: whether this handoff's successor
  // called AcceptHandover (false outside a handoff, and when the successor
  // or the supervisor is older than ABI 1.3). When false, drain without
  // handing over. Thread-safe.
  virtual bool SuccessorAcceptsHandover() const = 0;
};

}  // namespace baton
