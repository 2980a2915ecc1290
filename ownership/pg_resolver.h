// Host names of a lease connection, resolved off the io thread. libpq's
// non-blocking connect still looks host names up synchronously (getaddrinfo
// inside PQconnectStartParams/PQconnectPoll), on the thread that also runs
// the control channel's heartbeats and Stop; a resolver that hangs would
// stall them. So the connection looks the names up first, with getaddrinfo
// on a thread of its own, and hands libpq each address as `hostaddr` beside
// its name in `host` (which libpq still uses for TLS verification, GSSAPI
// and the password file), one entry per address, so libpq never resolves.
//
// What is resolved: the host list of the DSN, else of PGHOST, unless a
// `hostaddr` (or PGHOSTADDR) is given. Unix-socket paths and numeric
// addresses need no lookup. A host that only a service file names
// (`service=`/PGSERVICE without a host) is not known here and is still
// looked up by libpq: name the host in the DSN or PGHOST instead.
//
// Threading: Resolver is used from one executor's thread; its lookups run
// on threads they own, which never touch the Resolver.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "base/clock.h"
#include "base/errors.h"

namespace baton::ownership::pg {

using ConnInfo = std::vector<std::pair<std::string, std::string>>;

// The distinct host names libpq would look up for `info` (reads PGHOST and
// PGHOSTADDR for what `info` leaves unset); empty when there is none.
std::vector<std::string> NamesToResolve(const ConnInfo& info);

// The addresses each name resolved to (none when it did not) and the
// reason of the last failure.
struct Addresses {
  std::map<std::string, std::vector<std::string>> of;
  std::string error;
};

// `info` rewritten so libpq needs no lookup: `host` lists each name once per
// address, `hostaddr` the addresses (empty for Unix sockets), `port`
// expanded to match. kUnavailable (with the resolver's reason) when no
// host is left.
Result<ConnInfo> WithHostAddrs(const ConnInfo& info, const Addresses& addrs);

class Resolver {
 public:
  explicit Resolver(boost::asio::any_io_executor ex);
  // A lookup still running finishes on its own thread and is dropped.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Looks `names` up with getaddrinfo on a thread of its own. At most one
  // lookup runs per Resolver: a call after a deadline passed waits for the
  // lookup already running instead of starting another, so a resolver that
  // hangs costs one thread, not one per attempt. kDeadlineExceeded when
  // `deadline` passes first.
  boost::asio::awaitable<Result<Addresses>> Resolve(std::vector<std::string> names, TimePoint deadline);

 private:
  struct Lookup;
  void Abandon();

  boost::asio::any_io_executor ex_;
  std::shared_ptr<Lookup> inflight_;
};

}  // namespace baton::ownership::pg
