// The run: spawn the first daemon, attack until the duration ends (or walk
// every crash point), drain, report; the watchdog and the progress line.
#include "runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "live_children.hpp"
#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/percentile.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/recovery.hpp"

namespace memlink::chaos {

using namespace std::chrono_literals;
using shm::platform::monotonic_ns;

// No hang: while messages wait in c2d and a daemon is serving, the daemon's
// consumed counter must move.
void Runner::watchdog() {
  if (through_driver()) {
    watch_driver_logs();
    return;
  }
  if (!observer_) {
    auto c = shm::Client::connect(o_.process.segment, 1);
    if (!c) return;
    observer_.emplace(std::move(c.value()));
    observer_->shutdown();  // not counted as a client; the mapping stays readable
    // The clock starts now: before this the runner could not see the rings.
    watch_tail_ = observer_->control().daemon_tail.load(std::memory_order_relaxed);
    watch_since_ns_ = monotonic_ns();
    return;
  }
  const std::uint64_t tail = observer_->control().daemon_tail.load(std::memory_order_relaxed);
  const std::uint64_t now = monotonic_ns();
  if (tail != watch_tail_ || observer_->outbound().pending_total() == 0) {
    watch_tail_ = tail;
    watch_since_ns_ = now;
    return;
  }
  if (now - watch_since_ns_ > static_cast<std::uint64_t>(o_.hang_timeout_s * 1e9)) {
    runner_violations_.push_back("hang: " + std::to_string(observer_->outbound().pending_total()) +
                                 " c2d messages waited " + std::to_string(o_.hang_timeout_s) +
                                 " s without the daemon consuming any");
    watch_since_ns_ = now;
  }
}

// Driver mode, from the logs, once a second: acknowledged c2d and d2c
// messages wait while the number of deliveries does not move.
void Runner::watch_driver_logs() {
  const std::uint64_t now = monotonic_ns();
  if (now - last_pending_check_ns_ < 1'000'000'000ULL) return;
  last_pending_check_ns_ = now;
  std::uint64_t excused = 0;
  const std::uint64_t pending = pending_from_logs(&excused);
  std::uint64_t deliveries = 0;
  for (const Proc& p : procs_)
    if (p.role != Role::Writer) {
      std::error_code ec;
      deliveries += std::filesystem::file_size(p.log_path, ec) / sizeof(Record);
    }
  report_writers_stuck_in_a_write(now);
  if (deliveries != watch_tail_ || pending <= excused || watch_since_ns_ == 0) {
    watch_tail_ = deliveries;
    watch_since_ns_ = now;
  } else if (now - watch_since_ns_ > static_cast<std::uint64_t>(o_.hang_timeout_s * 1e9)) {
    runner_violations_.push_back("hang: " + std::to_string(pending) + " acknowledged messages waited " +
                                 std::to_string(o_.hang_timeout_s) + " s without any consumer recording anything");
    watch_since_ns_ = now;
  }
}

// A live writer whose last record is an Intent older than the hang timeout
// is stuck inside one write: its transport blocked it (reported once).
void Runner::report_writers_stuck_in_a_write(std::uint64_t now) {
  for (const Proc& p : procs_) {
    if (p.role != Role::Writer || p.done || p.stopped) continue;
    const auto records = read_log(p.log_path);
    // (An Intent logged after `now` was read is no older than 0 s.)
    if (records.empty() || records.back().type != RecordType::Intent || records.back().t_ns >= now) continue;
    const double inside_s = static_cast<double>(now - records.back().t_ns) / 1e9;
    if (inside_s > o_.hang_timeout_s && !stuck_reported_.count(p.instance)) {
      stuck_reported_.insert(p.instance);
      runner_violations_.push_back("hang: writer " + std::to_string(p.instance) + " has been inside one write for " +
                                   std::to_string(static_cast<int>(inside_s)) + " s (" +
                                   to_string(records.back().id()) + "); the transport blocked it");
    }
  }
}

void Runner::progress(bool force) {
  const std::uint64_t now = monotonic_ns();
  if (o_.quiet || (!force && now - last_progress_ns_ < 5'000'000'000ULL)) return;
  last_progress_ns_ = now;
  std::uint64_t k = 0;
  for (auto& [kind, n] : kills_) k += n;
  if (through_driver()) {
    std::uint64_t records = 0;
    for (const Proc& p : procs_) {
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(p.log_path, ec);  // a log not written yet: an error, not a size
      if (!ec) records += bytes / sizeof(Record);
    }
    std::fprintf(stderr, "memlink-chaos: %5.1f s, %" PRIu64 " faults, %u daemons, %" PRIu64 " records logged\n",
                 static_cast<double>(now - start_ns_) / 1e9, k, next_instance_[0], records);
    return;
  }
  std::fprintf(stderr, "memlink-chaos: %5.1f s, %" PRIu64 " faults, %u daemons, c2d consumed %" PRIu64 "\n",
               static_cast<double>(now - start_ns_) / 1e9, k, next_instance_[0],
               observer_ ? observer_->control().daemon_tail.load() : 0);
}

int Runner::run() {
  kill_live_children_on_interrupt();
  start_ns_ = last_progress_ns_ = monotonic_ns();
  if (!through_driver()) (void)shm::RecoveryManager(o_.process.segment).cleanup_orphaned_shm();
  spawn(Role::Daemon);
  if (through_driver() && (driver_broken_ || current(Role::Daemon) == nullptr)) {
    std::fprintf(stderr, "memlink-chaos: the driver's first daemon did not start: %s\n",
                 runner_violations_.empty() ? "it died" : runner_violations_.front().c_str());
    return 2;
  }
  if (!through_driver() &&
      (!wait_for([&] { return shm::Client::connect(o_.process.segment, 1).ok() || current(Role::Daemon) == nullptr; },
                 5000ms) ||
       current(Role::Daemon) == nullptr)) {
    std::fprintf(stderr, "memlink-chaos: the first daemon did not start (see its stderr above)\n");
    return 2;
  }
  keep_alive();
  watchdog();
  if (o_.crash_walk) {
    std::this_thread::sleep_for(100ms);
    crash_walk();
  } else {
    const std::uint64_t end = start_ns_ + static_cast<std::uint64_t>(o_.duration_s * 1e9);
    std::exponential_distribution<double> gap(1.0 / 0.35);  // a fault every 350 ms on average
    std::uint64_t next_fault = monotonic_ns() + static_cast<std::uint64_t>(gap(rng_) * 1e9);
    while (monotonic_ns() < end && !driver_broken_) {
      keep_alive();
      watchdog();
      if (monotonic_ns() >= next_fault) {
        random_fault();
        next_fault = monotonic_ns() + static_cast<std::uint64_t>(gap(rng_) * 1e9);
      }
      resume_held(false);
      progress(false);
      std::this_thread::sleep_for(5ms);
    }
  }
  resume_held(true);
  drain();
  return report();
}

}  // namespace memlink::chaos
