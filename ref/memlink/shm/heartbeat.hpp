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

// How old `heartbeat_ns` (stamped at `stamped_ns`) is at `now_ns`. A stamp
// from the future (a clock from another boot, or garbage) counts as fresh
// here; K-TAKEOVER and the client treat it like any other stamp that stays
// unchanged.
inline std::uint64_t heartbeat_age_ns(std::uint64_t stamped_ns, std::uint64_t now_ns) noexcept {
  return stamped_ns < now_ns ? now_ns - stamped_ns : 0;
}

// True if `ctl.heartbeat_ns` still holds `seen` after this process watched it
// for two heartbeat intervals (the interval recorded in the control region;
// 100 ms if none is recorded), polling eight times. False as soon as it changes.
// Sleeps: call it only once the clock already says the heartbeat is old.
bool heartbeat_stays_still(const ControlRegion& ctl, std::uint64_t seen) noexcept;

}  // namespace memlink::shm
