// kvd's baton::Hooks: what a handoff asks of the daemon, done for real on
// kvd's state. This and main.cc are the whole baton integration.
//
// Threading: baton calls the hooks one at a time from its own thread. Every
// hook posts its work to kvd's io_context and blocks until it has run, so the
// Store, the committer and the server are only ever touched by the io thread.
// The same holds for StartServing and Shutdown, called from main. One
// exception: Warm replays on a thread of its own at a lower CPU priority
// (nothing else touches the store before Begin, and joining that thread
// orders its writes before everything after).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include <boost/asio/io_context.hpp>

#include "baton/daemon.h"
#include "http_server.h"
#include "service.h"

namespace kvd {

struct HookOptions {
  bool fail_seal = false;                      // test knob: Seal reports an error
  std::chrono::milliseconds warm_delay{0};     // test knob: slow warm-up
  bool hang_in_warm = false;                   // test knob: Warm never returns
  bool fail_begin = false;                     // test knob: Begin reports an error (after the replay)
  std::chrono::milliseconds seal_delay{0};     // test knob: slow seal (before closing the WAL)
  std::chrono::milliseconds retire_grace{5000};
  // Warm's replay runs at this much lower CPU priority (nice increment), so
  // that on a busy machine the incumbent, still serving, keeps its CPU. 0:
  // the same priority.
  int warm_nice = 10;
  // Drain hands idle and partly read connections to the successor instead
  // of closing them (docs/integrate.md); false: they are closed at response
  // boundaries as before, and clients reconnect.
  bool hand_over = true;
  // Begin (and Resume) take what is handed over, and this generation says
  // so before Start (Daemon::AcceptHandover). false: like a daemon built
  // without handover, it takes nothing, and its incumbent hands nothing
  // over to it.
  bool accept_handover = true;
};

class KvdHooks final : public baton::Hooks {
 public:
  KvdHooks(boost::asio::io_context& io, KvService& service, HttpServer& server, baton::LogSink& log,
           HookOptions options)
      : io_(io), service_(service), server_(server), log_(log), opts_(options) {}

  // Successor: read-only replay of the WAL as it is now (in passes, until
  // the tail is small); remembers where it stopped.
  baton::Status Warm() override;
  // Incumbent: stop accepting, answer in-flight requests; hand every
  // connection between requests (or before a request's header is complete)
  // over to the successor with its unread bytes, and every /watch stream
  // between two chunks with its next revision (without hand_over: answer
  // with Connection: close, end streams with the terminating chunk and
  // close idle connections by the deadline); returns
  // once no request is in flight and every acked write is fsynced.
  baton::Status Drain(Deadline deadline) override;
  // Incumbent: fsync + close the WAL; reports revision and fingerprint.
  baton::Result<baton::SealReport> Seal() override;
  // Successor: replay the tail after Warm's position, verify against the
  // seal, open the writer, accept on the inherited listener.
  baton::Status Begin(const baton::SealedState& sealed) override;
  // Incumbent after a rollback: reload if the data changed, reopen the
  // writer, accept again on the same listener, serve the connections it
  // had handed over (they come back).
  baton::Status Resume(bool data_changed) override;
  // Successor, once Daemon::Start returned (Ready is sent: nobody else can
  // serve them now): serve the connections the incumbent handed over.
  void AdoptHandedOver();
  // The Daemon whose HandOver and TakeHandedOver the hooks use (none: no handover).
  void set_daemon(baton::Daemon* daemon) { daemon_ = daemon; }
  // Incumbent after Commit: finish what is left and stop serving.
  void Retire() override;

  // Cold start / standalone, after Daemon::Start took the lock: recover the
  // WAL (repairing a torn tail), open the writer, accept.
  baton::Status StartServing();
  // Graceful stop (standalone SIGTERM): drain, fsync, close the writer.
  baton::Status Shutdown(std::chrono::milliseconds grace);

 private:
  // Runs `f` on the io thread and waits. `f` gets a completion to call
  // (possibly later, from another io callback) with the hook's result.
  template <class T>
  T OnIo(std::function<void(std::function<void(T)>)> f);
  baton::Status Serve(const char* phase);
  // On the io thread: serves every connection the library has for us.
  void AdoptOnIo();

  boost::asio::io_context& io_;
  KvService& service_;
  HttpServer& server_;
  baton::LogSink& log_;
  HookOptions opts_;
  baton::Daemon* daemon_ = nullptr;
};

}  // namespace kvd
