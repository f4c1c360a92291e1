// Judging a daemon's heartbeat (SPEC K-HEARTBEAT): is a heartbeat that looks
// old by the clock really stale, or was the observer itself not running?
//
// A clock reading says how long ago the daemon stamped, not whether it had a
// chance to: when a loaded machine (or a paused VM) leaves both processes
// unscheduled for seconds, whichever runs first sees a heartbeat "older than
// the timeout" from a daemon that is alive and about to stamp. So an old
// heartbeat condemns the daemon only after this process has watched it stay
// unchanged for two more heartbeat intervals, polling while it watches.
// A stopped or hung daemon is still declared unresponsive, two intervals
// later than the clock alone would.
#pragma once

#include <cstdint>

#include "memlink/shm/layout.hpp"

namespace memlink::shm {

// A stamp further ahead of the reader's clock than this cannot come from a
// daemon stamping CLOCK_MONOTONIC on this boot (one read just after it was
// made leads by microseconds at most): it is garbage, or forged by a peer.
inline constexpr std::uint64_t kHeartbeatFutureSlackNs = 1'000'000'000;
// heartbeat_age_ns's answer for such a stamp.
inline constexpr std::uint64_t kHeartbeatFromTheFuture = ~0ULL;

// How old `heartbeat_ns` (stamped at `stamped_ns`) is at `now_ns`. A stamp
// from the future beyond the slack counts as infinitely old, so that it is
// judged like a heartbeat that stopped: K-TAKEOVER and the client condemn the
// daemon only if the value then stays unchanged while they watch. (It used to
// count as fresh, and a peer that wrote one blocked every takeover.)
inline std::uint64_t heartbeat_age_ns(std::uint64_t stamped_ns, std::uint64_t now_ns) noexcept {
  if (stamped_ns <= now_ns) return now_ns - stamped_ns;
  return stamped_ns - now_ns > kHeartbeatFutureSlackNs ? kHeartbeatFromTheFuture : 0;
}

// True if `ctl.heartbeat_ns` still holds `seen` after this process watched it
// for two heartbeat intervals (the interval recorded in the control region;
// 100 ms if none is recorded), polling eight times. False as soon as it changes.
// Sleeps: call it only once the clock already says the heartbeat is old.
bool heartbeat_stays_still(const ControlRegion& ctl, std::uint64_t seen) noexcept;

}  // namespace memlink::shm
