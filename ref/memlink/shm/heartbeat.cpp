#include "memlink/shm/heartbeat.hpp"

#include <algorithm>
#include <chrono>

#include "memlink/shm/platform.hpp"

namespace memlink::shm {

bool heartbeat_stays_still(const ControlRegion& ctl, std::uint64_t seen) noexcept {
  constexpr std::uint64_t kDefaultInterval = 100'000'000;  // ns
  constexpr std::uint64_t kLongestWatch = 2'000'000'000;   // a garbage interval must not hang us
  std::uint64_t interval = ctl.heartbeat_interval_ns.load(std::memory_order_relaxed);
  if (interval == 0) interval = kDefaultInterval;
  const std::uint64_t watch = std::min<std::uint64_t>(2 * interval, kLongestWatch);
  constexpr int kPolls = 8;
  // Counted in polls, not by the clock: if this process is descheduled in
  // the middle of its watch, the daemon still gets the remaining polls.
  for (int i = 0; i < kPolls; ++i) {
    platform::sleep_for(std::chrono::nanoseconds(watch / kPolls));
    if (ctl.heartbeat_ns.load(std::memory_order_acquire) != seen) return false;
  }
  return true;
}

}  // namespace memlink::shm
