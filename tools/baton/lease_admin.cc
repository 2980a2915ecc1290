// `baton lease status|release|transfer NAME`: the lease row and its
// candidates for operators, and the two changes an operator may make
// without breaking the fencing rules (docs/lease.md "Operators"):
// release is fenced on the holding it saw and keeps that holding's expiry;
// transfer only asks the holder to hand over to a live candidate.
#include <chrono>
#include <optional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "base/duration.h"
#include "base/log.h"
#include "baton/lease.h"
#include "ownership/lease_store.h"
#include "tools/baton/commands.h"
#include "tools/baton/lease_cmd.h"

namespace baton::cli {
namespace {

namespace asio = boost::asio;
using ownership::LeaseStore;
using ownership::LeaseView;

constexpr Duration kOpTimeout = seconds(5);

void Say(const std::string& what) { fmt::print(stderr, "baton lease: {}\n", what); }

// One connection, statements run to completion one at a time.
class Admin {
 public:
  static Result<std::unique_ptr<Admin>> Open(const LeaseArgs& a) {
    ownership::StoreSettings s;
    s.dsn = ResolveLeaseDsn(a.dsn);
    s.application_name = "baton lease";
    s.statement_timeout = kOpTimeout;
    s.lock_timeout = kOpTimeout / 2;
    auto info = ownership::BuildConnInfo(s);
    if (!info) return info.error();
    return std::unique_ptr<Admin>(new Admin(std::move(*info)));
  }

  template <class T>
  T Run(asio::awaitable<T> a) {
    std::optional<T> out;
    asio::co_spawn(io_, std::move(a), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(v));
    });
    io_.restart();
    io_.run();
    return std::move(*out);
  }
  TimePoint Deadline() const { return RealClock().Now() + kOpTimeout; }
  LeaseStore& store() { return store_; }

 private:
  explicit Admin(std::vector<std::pair<std::string, std::string>> info) : store_(io_.get_executor(), std::move(info)) {}
  asio::io_context io_;
  LeaseStore store_;
};

bool Live(const LeaseView& v) { return !v.holder.empty() && v.expires_in_ms && *v.expires_in_ms > 0; }

int ErrorExit(const Error& e) {
  Say(e.message);
  if (e.Is(Errc::kInvalidArgument) || e.Is(Errc::kFailedPrecondition)) return kExitUsage;
  if (e.Is(Errc::kPermissionDenied)) return kExitRefused;
  return kExitUnreachable;
}

std::string ViewJson(const std::string& name, const LeaseView& v) {
  std::string c;
  for (const auto& k : v.candidates) {
    c += fmt::format("{}{{\"holder\":{},\"expires_in_ms\":{},\"requested\":{}}}", c.empty() ? "" : ",",
                     JsonQuote(k.holder), k.expires_in_ms, k.requested);
  }
  return fmt::format(
      "{{\"name\":{},\"exists\":{},\"holder\":{},\"epoch\":{},\"expires_at\":{},\"expires_in_ms\":{},\"live\":{},"
      "\"candidates\":[{}]}}",
      JsonQuote(name), v.exists, v.holder.empty() ? "null" : JsonQuote(v.holder), v.epoch,
      v.expires_at.empty() ? "null" : JsonQuote(v.expires_at),
      v.expires_in_ms ? std::to_string(*v.expires_in_ms) : "null", Live(v), c);
}

void PrintView(const std::string& name, const LeaseView& v) {
  if (!v.exists) {
    fmt::print("lease '{}': never taken\n", name);
  } else if (v.holder.empty()) {
    fmt::print("lease '{}': free at epoch {}{}\n", name, v.epoch,
               v.expires_in_ms && *v.expires_in_ms > 0
                   ? fmt::format(" (released by an operator: not acquirable for {} ms more)", *v.expires_in_ms)
                   : "");
  } else {
    fmt::print("lease '{}': held by {} at epoch {}, {} ({})\n", name, v.holder, v.epoch,
               Live(v) ? fmt::format("expires in {} ms", *v.expires_in_ms)
                       : fmt::format("EXPIRED {} ms ago", v.expires_in_ms ? -*v.expires_in_ms : 0),
               v.expires_at);
  }
  fmt::print("candidates: {}\n", v.candidates.size());
  for (const auto& c : v.candidates) {
    fmt::print("  {}  live for {} ms{}\n", c.holder, c.expires_in_ms, c.requested ? "  (handover requested)" : "");
  }
}

// Withdraws a transfer request that was not honored, so it is not honored
// by surprise later.
void Withdraw(Admin& admin, const LeaseArgs& a) {
  if (auto st = admin.Run(admin.store().CancelRequest(a.name, a.to, admin.Deadline())); !st) {
    Say(fmt::format("could not withdraw the request (it lapses with {}'s candidacy): {}", a.to, st.error().message));
  }
}

}  // namespace

int RunLeaseStatus(const LeaseArgs& a) {
  auto admin = Admin::Open(a);
  if (!admin) return ErrorExit(admin.error());
  auto v = (*admin)->Run((*admin)->store().View(a.name, (*admin)->Deadline()));
  if (!v) return ErrorExit(v.error());
  if (a.json) {
    fmt::print("{}\n", ViewJson(a.name, *v));
  } else {
    PrintView(a.name, *v);
  }
  return kExitOk;
}

int RunLeaseRelease(const LeaseArgs& a) {
  auto admin = Admin::Open(a);
  if (!admin) return ErrorExit(admin.error());
  auto v = (*admin)->Run((*admin)->store().View(a.name, (*admin)->Deadline()));
  if (!v) return ErrorExit(v.error());
  if (!v->exists || v->holder.empty()) {
    Say(fmt::format("lease '{}' is not held: nothing to release", a.name));
    return kExitRefused;
  }
  ownership::Holding seen{v->holder, v->epoch};
  auto r = (*admin)->Run((*admin)->store().OperatorRelease(a.name, seen, (*admin)->Deadline()));
  if (!r) return ErrorExit(r.error());
  if (!*r) {
    Say(fmt::format("lease '{}' moved on while releasing it (it was {} at epoch {}); nothing changed", a.name,
                    seen.holder, seen.epoch));
    return kExitRefused;
  }
  const std::string until = Live(*v) ? fmt::format("; nobody acquires it before {} (its holder may act until then)",
                                                   v->expires_at)
                                     : "";
  if (a.json) {
    fmt::print("{{\"name\":{},\"released_from\":{},\"epoch\":{},\"not_before\":{}}}\n", JsonQuote(a.name),
               JsonQuote(seen.holder), **r, Live(*v) ? JsonQuote(v->expires_at) : "null");
  } else {
    fmt::print("lease '{}' taken from {} (epoch {} -> {}){}\n", a.name, seen.holder, seen.epoch, **r, until);
  }
  return kExitOk;
}

int RunLeaseTransfer(const LeaseArgs& a) {
  auto wait = ParseDuration(a.wait);
  if (!wait) return Say(fmt::format("--wait: {}", wait.error().message)), kExitUsage;
  auto admin = Admin::Open(a);
  if (!admin) return ErrorExit(admin.error());
  auto& store = (*admin)->store();
  auto v = (*admin)->Run(store.View(a.name, (*admin)->Deadline()));
  if (!v) return ErrorExit(v.error());
  if (!Live(*v)) {
    Say(fmt::format("lease '{}' has no live holder to hand over; a candidate acquires it by itself", a.name));
    return kExitRefused;
  }
  if (v->holder == a.to) {
    Say(fmt::format("{} already holds lease '{}'", a.to, a.name));
    return kExitRefused;
  }
  auto asked = (*admin)->Run(store.RequestHandover(a.name, a.to, (*admin)->Deadline()));
  if (!asked) return ErrorExit(asked.error());
  if (!*asked) {
    Say(fmt::format("{} is not a live candidate of lease '{}' (see `baton lease status {}`): refused, a handover "
                    "to a process that is not standing by would leave the lease leaderless",
                    a.to, a.name, a.name));
    return kExitRefused;
  }
  const auto deadline = std::chrono::steady_clock::now() + *wait;
  const uint64_t from_epoch = v->epoch;
  while (std::chrono::steady_clock::now() < deadline) {
    auto now = (*admin)->Run(store.View(a.name, (*admin)->Deadline()));
    if (now && now->epoch != from_epoch) {
      if (now->holder == a.to) {
        if (a.json) {
          fmt::print("{{\"name\":{},\"from\":{},\"to\":{},\"epoch\":{}}}\n", JsonQuote(a.name), JsonQuote(v->holder),
                     JsonQuote(a.to), now->epoch);
        } else {
          fmt::print("lease '{}' handed from {} to {} (epoch {} -> {})\n", a.name, v->holder, a.to, from_epoch,
                     now->epoch);
        }
        return kExitOk;
      }
      Say(fmt::format("lease '{}' moved to {} at epoch {} instead", a.name,
                      now->holder.empty() ? "nobody" : now->holder, now->epoch));
      Withdraw(**admin, a);
      return kExitFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the row, bounded by --wait
  }
  Withdraw(**admin, a);
  Say(fmt::format("{} did not hand lease '{}' over within {} (request withdrawn); a holder that does not "
                  "answer can only be released: `baton lease release {}`",
                  v->holder, a.name, a.wait, a.name));
  return kExitFailed;
}

}  // namespace baton::cli
