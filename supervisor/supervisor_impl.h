// The supervisor behind supervisor.h, private to this directory. One class,
// its parts in several files:
//   supervisor.cc       creation, start and stop, the journal, children, events
//   handoff_driver.cc   upgrades: feeds the HandoffMachine, executes its actions
//   admin_requests.cc   what the admin socket's requests do
//   probation.cc        after the commit: probation, revert, rollback,
//                       the crash-loop limit (docs/design.md §16)
//   takeover.cc         taking over from a dead supervisor: re-attach to
//                       its serving generation (reattach.h), else adoption
//   self_upgrade.cc     `baton upgrade --self`: pre-flight, state, exec
//   self_resume.cc      ...and the new image taking it all back
//
// Threading: everything runs on the one io_context, from one thread.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "supervisor/adoption.h"
#include "supervisor/admin_server.h"
#include "supervisor/event_fanout.h"
#include "supervisor/child.h"
#include "supervisor/handoff_machine.h"
#include "supervisor/adoption_record.h"
#include "protocol/handover.h"
#include "supervisor/fd_store.h"
#include "supervisor/notify_handoff.h"
#include "supervisor/self_upgrade.h"
#include "supervisor/supervisor.h"

namespace baton::supervisor {

// A handoff in progress: the pure machine and what the driver keeps beside
// it. Created when an upgrade is accepted, released as a whole after it
// finished.
// Why a handoff runs: an operator's upgrade, or a hand-back to the previous
// pinned binary (automatic after a failed probation or a crash loop, or
// `baton rollback`).
enum class HandoffKind { kUpgrade, kRevert, kRollback };

struct Handoff {
  HandoffMachine machine;
  std::string binary;  // the successor's binary and arguments
  std::vector<std::string> args;
  std::shared_ptr<PinnedBinary> pin;  // what the successor runs (opened when accepted)
  HandoffKind kind = HandoffKind::kUpgrade;
  // `baton upgrade --probation D`: the window, and the client is answered
  // when it ends. Unset: the configured window, answered at the commit.
  std::optional<Duration> probation;
  std::shared_ptr<Child> incumbent;    // the generation serving when it started
  std::shared_ptr<Child> successor;    // once spawned
  std::shared_ptr<AdminConnection> client;  // the `baton upgrade` waiting; null for SIGHUP
  bool progress = false;                    // the client asked for phase progress
  TimePoint started;
  v1::UpgradeResult phases;  // the phases done so far
  // protocol notify (docs/design.md §14): this machine drives the handoff
  // instead of `machine`, and `restored` is the previous binary started
  // again by a sequential rollback.
  std::unique_ptr<NotifyHandoffMachine> notify;
  std::shared_ptr<Child> restored;
  // The incumbent's handed-over descriptors (handover_driver.cc): held from
  // its SealComplete until the successor is Ready (then closed: the
  // successor has its own), or sent back to it with Resume.
  std::vector<protocol::HandedFd> held{};
};

// The probation of the generation a handoff just committed to
// (docs/design.md §16). At most one; an upgrade is refused meanwhile.
struct Probation {
  uint64_t seq = 0;                         // tells a stale probe answer apart
  std::shared_ptr<Child> generation;        // on probation
  std::shared_ptr<PinnedBinary> previous;   // what a revert starts
  Duration window{};
  TimePoint started;
  std::shared_ptr<AdminConnection> client;  // `baton upgrade --probation` waiting; null otherwise
  v1::UpgradeResult result;                 // the upgrade's, answered when the probation ends
  uint32_t probe_failures = 0;
  // Once a check failed: which and why (a channel that closed is recorded
  // here and acted on when the generation's exit follows).
  std::string check;
  std::string reason;
  TimePoint failed_at;
  bool reverting = false;
  std::shared_ptr<Child> restored;  // a cold-started previous binary, until its Hello
};

// Which part a child plays in the handoff in progress.
enum class HandoffPart { kNone, kSuccessor, kIncumbent };

// Supervisor::Create() for an image re-executed by a self-upgrade
// (self_resume.cc): the state and descriptors opts.resume_state_fd names.
Result<std::unique_ptr<Supervisor>> CreateResumed(boost::asio::io_context& io, SupervisorOptions opts, LogSink& log);

class SupervisorImpl final : public Supervisor {
 public:
  SupervisorImpl(boost::asio::io_context& io, SupervisorOptions opts, LogSink& log, std::vector<Listener> listeners,
                 CrashRoute crash_route, std::vector<Orphan> orphans, OwnedFd reattach);

  void SetAdmin(std::unique_ptr<AdminServer> admin) { admin_ = std::move(admin); }

  void Start() override;
  void Stop(std::function<void()> done) override;
  std::vector<std::string> Addresses() const override;
  std::vector<std::pair<std::string, int>> ListenerFds() const override;
  void UpgradeTo(const std::string& binary, const std::vector<std::string>& args) override;
  void SelfUpgrade(const std::string& binary) override;
  int InheritedMetricsFd() const override { return inherited_metrics_fd_; }

  // ---- the new image of a self-upgrade (self_resume.cc): takes back the
  // serving generation and the rest of `state`; Start() then resumes.
  Status Resume(const selfstate::v1::SelfState& state, int caller_fd, const std::string& fallback);

  // ---- admin requests (admin_requests.cc)
  void OnAdminRequest(std::shared_ptr<AdminConnection> conn, const v1::Envelope& env);

 private:
  void FillStatus(v1::StatusReply* s);

  // ---- a previous supervisor's generations (takeover.cc): adoption.h...
  void AdoptOrphans();
  void CheckOrphans();
  void UpdateAdoptionRecord();  // (supervisor.cc)

  // ---- ...and re-attach to the orphan through `reattach_` (reattach.h)
  void StartReattach();
  // With a handoff settling at our start: once one orphan is left and
  // listens, re-attach to it (true) rather than end it.
  bool ReattachSettled();
  void OnReattachMessage(const std::shared_ptr<Child>& g, const v1::Envelope& env);
  // Gives up on re-attaching (says why) and adopts the orphans instead.
  void ReattachFailed(const std::string& why);

  // ---- children
  ChildCallbacks Callbacks();
  Result<std::shared_ptr<Child>> Spawn(ChildRole role, const std::shared_ptr<PinnedBinary>& pin);
  void ColdStart();
  void ScheduleRestart();
  HandoffPart PartOf(const std::shared_ptr<Child>& g) const;
  void OnChildMessage(const std::shared_ptr<Child>& g, const v1::Envelope& env);
  void OnChildClosed(const std::shared_ptr<Child>& g, const Error& e);
  // ---- descriptor handover (handover_driver.cc)
  void OnChildFds(const std::shared_ptr<Child>& g, v1::Envelope env, std::vector<OwnedFd> fds);
  // Closes g's channel as bad input (an Error frame, then closed).
  void RefuseChild(const std::shared_ptr<Child>& g, v1::Error::Code code, const Error& why);
  // false (and the session closed) if a SealComplete's count does not match what arrived.
  bool CheckHandoverCount(const std::shared_ptr<Child>& g, const v1::Envelope& env);
  // Sends the held descriptors before `env` (a Begin or a Resume) and sets its count.
  void SendHeld(const std::shared_ptr<Child>& to, v1::Envelope& env);
  void CloseHeld(const char* why);
  void OnChildExit(const std::shared_ptr<Child>& g, const ChildExit& exit);
  void MaybeStopped();
  void Emit(Event e);

  // ---- re-executing ourselves in place (self_upgrade.cc, self_resume.cc)
  void StartSelfUpgrade(std::string binary, std::shared_ptr<AdminConnection> conn);
  // Why a self-upgrade cannot start now ("" = it can); and, once its
  // pre-flight passed, why it cannot go on to the exec.
  std::string SelfBusyReason() const;
  std::string SelfBusyReasonAfterPreflight() const;
  // What the state holds that format 1 cannot carry (empty: format 1 will do).
  std::vector<std::string> SelfStateNeeds() const;
  void OnPreflightDone(int wait_status);
  void ExecSelf();
  Result<selfstate::v1::SelfState> SelfStateNow(int caller_fd, int resumed_fd, pid_t watchdog) const;
  // The new image's environment: ours, socket activation announced again.
  Result<std::vector<std::string>> ExecEnvironment() const;
  // Ends the self-upgrade in this image (refused or failed) and answers.
  void SelfUpgradeEnded(v1::Outcome outcome, const std::string& reason);
  void FinishResume();

  // ---- the handoff (handoff_driver.cc)
  void OnUpgrade(std::shared_ptr<AdminConnection> conn, const v1::UpgradeRequest& req);
  // Why a handoff cannot start now ("" = it can); `self`: the self-upgrade
  // asking, which does not count itself.
  std::string BusyReason(bool self = false) const;
  void BeginHandoff(HandoffKind kind, std::shared_ptr<PinnedBinary> pin, std::vector<std::string> args,
                    std::shared_ptr<AdminConnection> conn, bool progress, std::optional<Duration> probation);
  void Reply(const std::shared_ptr<AdminConnection>& conn, v1::UpgradeResult result);
  // Queues the machine's actions and runs them in order.
  void Execute(Actions actions);
  void Do(SpawnSuccessor&);
  void Do(SendToSuccessor& a);
  void Do(SendToIncumbent& a);
  void Do(SignalSuccessor& a);
  void Do(SignalIncumbent& a);
  void Do(PhaseDone& a);
  void Do(PromoteSuccessor&);
  void Do(Finished& a);
  void Retire(const std::shared_ptr<Child>& g);
  void ArmHandoffTimer();

  // ---- after the commit (probation.cc)
  void StartProbation(Duration window, std::shared_ptr<AdminConnection> client, const v1::UpgradeResult& r);
  void ArmProbationProbe();
  void FailProbation(const std::string& check, const std::string& reason);
  void EndProbation(v1::Outcome outcome, v1::ProbationReport report);
  v1::ProbationReport Report(const std::string& outcome) const;
  // Hands back from the serving generation to `target`: a handoff when the
  // serving one can still take part, else a cold start. Refused (returns the
  // reason) when `target` cannot read the state schema the serving one uses.
  std::string RevertTo(const std::shared_ptr<PinnedBinary>& target, HandoffKind kind, const std::string& check,
                       const std::string& reason, std::shared_ptr<AdminConnection> client, bool progress);
  void ColdRevert(const std::shared_ptr<PinnedBinary>& target, const std::string& check, const std::string& reason);
  void OnReverted(const std::string& check, const std::string& reason, const std::shared_ptr<PinnedBinary>& from,
                  const std::shared_ptr<PinnedBinary>& to);
  void OnRollback(std::shared_ptr<AdminConnection> conn, const v1::RollbackRequest& req);
  void OnHealthReport(const std::shared_ptr<Child>& g, const v1::HealthReport& h);
  // The serving generation exited outside a handoff: a failed probation, a
  // crash loop (revert) or a plain restart.
  void OnServingExit(const std::shared_ptr<Child>& g, const std::string& how, TimePoint now);
  void FinishRevertHandoff(const v1::UpgradeResult& r);

  // ---- systemd's conventions: notify socket, readiness, watchdog, FD store,
  // the notify handoff (notify_driver.cc)
  bool plain() const { return opts_.notify.protocol == ChildProtocol::kNotify; }
  // It serves and may be upgraded: it said Hello, or (protocol notify) READY=1.
  bool Serving(const Child& g) const { return plain() ? g.ready : g.said_hello; }
  void StartNotify(const std::shared_ptr<Child>& g);
  void StopNotify(const std::shared_ptr<Child>& g);
  void OnNotify(const std::shared_ptr<Child>& g, const NotifyDatagram& d, std::vector<OwnedFd> fds);
  void Rejected(const std::shared_ptr<Child>& g, NotifyReject kind, const std::string& reason);
  void StoreFds(const std::shared_ptr<Child>& g, const NotifyMessage& m, std::vector<OwnedFd> fds);
  void OnChildReady(const std::shared_ptr<Child>& g, const std::string& how);
  void OnChildFailed(const std::shared_ptr<Child>& g, const std::string& why);
  void ArmProbe(const std::shared_ptr<Child>& g);
  void ArmWatchdog(const std::shared_ptr<Child>& g, Duration period);
  void StartNotifyHandoff(const std::string& handoff_id);
  void Do(SpawnRestore&);
  // Feeds the machine driving the handoff in progress (native or notify)
  // and executes its answer.
  void Route(const std::function<Actions(HandoffMachine&)>& native,
             const std::function<Actions(NotifyHandoffMachine&)>& notify);

  boost::asio::io_context& io_;
  SupervisorOptions opts_;
  LogSink& log_;
  std::vector<Listener> listeners_;
  std::map<pid_t, std::shared_ptr<boost::asio::steady_timer>> retire_timers_;  // by pid of a retired generation
  std::unique_ptr<AdminServer> admin_;
  boost::asio::steady_timer handoff_timer_;
  boost::asio::steady_timer restart_timer_;
  boost::asio::steady_timer orphan_timer_;
  TimePoint started_;
  CrashRoute crash_route_;
  std::vector<Orphan> orphans_;
  bool orphans_signalled_ = false;
  TimePoint orphan_settle_deadline_;
  TimePoint orphan_kill_deadline_;
  std::string record_path_;
  RecordedProcess self_;  // how the adoption record names us
  OwnedFd reattach_;      // connected to the orphan's re-attach socket, until StartReattach
  std::shared_ptr<Child> reattaching_;  // the orphan until its Hello is accepted
  bool reattach_when_settled_ = false;  // several orphans at our start: ReattachSettled()

  std::map<uint64_t, std::shared_ptr<Child>> children_;
  std::shared_ptr<Child> incumbent_;
  uint64_t spawned_ = 0;  // children spawned: the next Child::number
  // The status's generation: how many children have become the serving one
  // (cold starts and promotions). Not the data generation (ownership/).
  uint64_t generation_number_ = 0;
  uint32_t restarts_ = 0;
  Duration restart_delay_ = milliseconds(100);

  std::unique_ptr<Handoff> handoff_;  // the one in progress, if any
  std::deque<Action> pending_;         // the machine's actions not yet run
  bool executing_ = false;             // Execute() is running them
  std::optional<v1::UpgradeResult> last_result_;

  PinHistory pins_;                      // the serving generation's binary first
  std::unique_ptr<Probation> probation_;  // the one running, if any
  uint64_t probation_seq_ = 0;
  boost::asio::steady_timer probation_timer_;
  boost::asio::steady_timer probation_probe_timer_;
  std::deque<TimePoint> serving_exits_;  // exits of the serving generation (crash-loop limit)
  std::string last_revert_;              // for `baton status`
  std::string takeover_;                 // for `baton status`: re-attached or adopted, "" = neither

  FdStore fd_store_;
  std::set<NotifyReject> rejected_logged_;  // kinds already logged once
  std::map<uint64_t, Duration> watchdog_periods_;  // by child number, when changed by WATCHDOG_USEC=

  std::unique_ptr<SelfUpgradeRun> self_upgrade_;  // this image's, until it execs or ends
  std::unique_ptr<Resumed> resumed_;              // set when this image resumes a self-upgrade
  std::unique_ptr<ChildProcess> watchdog_;        // the last self-upgrade's watchdog, reaped here
  std::string self_binary_;                       // the file this image runs (/proc/self/exe)
  int inherited_metrics_fd_ = -1;                 // the metrics listener a resumed image got

  EventFanOut events_;
  bool stopping_ = false;
  std::function<void()> stop_done_;
};

}  // namespace baton::supervisor
