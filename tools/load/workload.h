// What baton-load sends: unique keys and deterministic values, the PUT/GET
// choice, the set of acknowledged writes, and request pacing. Pure; the
// engine owns one Workload and calls it from the io_context thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/clock.h"

namespace baton::load {

using Rng = std::mt19937_64;

// A write is identified by (connection, sequence) packed into 64 bits. Its key
// and value are derived from the id and the run nonce, so the engine keeps
// only ids (8 bytes per acknowledged write), not values.
class Workload {
 public:
  struct Op {
    bool write = false;
    uint64_t id = 0;
  };

  // `key_space`: GETs choose among the last K acknowledged writes (0 = all).
  // `max_writes`: once that many writes are acknowledged, GETs only (0 = no
  // limit), so a run creates a bounded number of keys.
  Workload(uint64_t nonce, int connections, std::size_t value_size, double write_ratio, uint64_t key_space,
           uint64_t max_writes = 0);

  static uint64_t MakeId(uint32_t conn, uint64_t seq) { return (uint64_t{conn} << 40) | seq; }

  // "r<nonce>-c<conn>-<seq>": unique per run, so reruns against a durable
  // kvd never read an older run's value.
  std::string Key(uint64_t id) const;
  // `value_size` alphanumeric bytes, a pure function of (nonce, id).
  std::string Value(uint64_t id) const;

  // The next request for connection `conn`: a PUT of a fresh key with
  // probability write_ratio (always while nothing is acknowledged yet;
  // never once `max_writes` are), else a GET of an acknowledged key.
  Op Next(uint32_t conn, Rng& rng);

  // A PUT was answered 2xx: the write is durable and must survive.
  void Acked(uint64_t id) { acked_.push_back(id); }
  const std::vector<uint64_t>& AckedIds() const { return acked_; }

 private:
  uint64_t nonce_;
  std::size_t value_size_;
  double write_ratio_;
  uint64_t key_space_;
  uint64_t max_writes_;
  std::vector<uint64_t> next_seq_;
  std::vector<uint64_t> acked_;
};

// Spaces request starts `1/rps` apart across all connections. It does not
// catch up after a stall: a slot in the past becomes "now".
class Pacer {
 public:
  explicit Pacer(double rps);  // rps <= 0: unlimited
  bool Unlimited() const { return interval_ == Duration::zero(); }
  // When the caller may send its next request (>= now).
  TimePoint Reserve(TimePoint now);

 private:
  Duration interval_{};
  bool started_ = false;
  TimePoint next_{};
};

// --idle-fraction: whether connection `conn` of `connections` idles between
// bursts. round(fraction * connections) of them do, spread evenly over the
// indices (0.5: every other one).
bool IdlesBetweenBursts(uint32_t conn, int connections, double fraction);

// The burst/idle cycle of a half-idle connection: `burst` of requests, then
// `idle` without any, repeated; the cycle starts `phase` into a burst
// (phase < burst, so the connection is opened before its first idle).
class BurstCycle {
 public:
  BurstCycle(TimePoint start, Duration burst, Duration idle, Duration phase)
      : start_(start - phase), burst_(burst), idle_(idle) {}
  // Inside an idle period: when it ends; inside a burst: nullopt.
  std::optional<TimePoint> IdleUntil(TimePoint now) const;

 private:
  TimePoint start_;
  Duration burst_;
  Duration idle_;
};

}  // namespace baton::load
