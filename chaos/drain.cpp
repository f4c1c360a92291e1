// After the attack: letting the rings drain, what is still pending, and
// that the killed clients were reaped (SPEC K-CLIENTS).
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

#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/percentile.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/recovery.hpp"
#include "runner.hpp"

namespace memlink::chaos {

using namespace std::chrono_literals;
using shm::platform::monotonic_ns;

// Driver mode, where the runner cannot look into the segment: acknowledged
// messages not yet delivered, from the logs; `excused` gets how many of them
// killed consumers may have taken with them (CheckOptions).
std::uint64_t Runner::pending_from_logs(std::uint64_t* excused) {
  std::set<MessageId> acked, delivered;
  std::uint64_t killed_consumers = 0;
  for (const Proc& p : procs_) {
    if (p.role != Role::Writer && p.died_by_sigkill()) ++killed_consumers;
    for (const Record& r : read_log(p.log_path)) {
      if (r.type == RecordType::Ack) acked.insert(r.id());
      if (r.type == RecordType::Deliver) delivered.insert(r.id());
    }
  }
  std::uint64_t pending = 0;
  for (const auto& id : acked) pending += !delivered.count(id);
  if (excused) *excused = o_.hello.has("two_step") ? 0 : killed_consumers;
  return pending;
}

bool Runner::drained_now() {
  if (!through_driver())
    return observer_ && observer_->outbound().pending_total() == 0 && observer_->inbound().pending_total() == 0;
  std::uint64_t excused = 0;
  return pending_from_logs(&excused) <= excused;
}

// Writers stop; the last daemon and reader must empty both directions.
bool Runner::drain() {
  for (Proc& p : procs_)
    if (p.role == Role::Writer && !p.done) ::kill(p.pid, SIGTERM);
  wait_for(
      [&] {
        for (const Proc& p : procs_)
          if (p.role == Role::Writer && !p.done) return false;
        return true;
      },
      5000ms);
  for (Proc& p : procs_)
    if (p.role == Role::Writer && !p.done) kill_proc(p, "kill writer");
  // An armed daemon or reader may still die at its point: replace it, a few times.
  bool drained = false;
  for (int attempt = 0; attempt < 5 && !drained; ++attempt) {
    if (current(Role::Daemon) == nullptr) restart_daemon();
    if (current(Role::Reader) == nullptr) spawn(Role::Reader);
    drained = wait_for(
        [&] {
          if (current(Role::Daemon) == nullptr || current(Role::Reader) == nullptr) return false;
          if (through_driver()) {  // the logs are read at most every 100 ms
            if (monotonic_ns() - last_pending_check_ns_ < 100'000'000ULL) return false;
            last_pending_check_ns_ = monotonic_ns();
          }
          return drained_now();
        },
        std::chrono::milliseconds(static_cast<long>(o_.hang_timeout_s * 1000) + 2 * o_.process.claim_timeout_ms));
  }
  if (drained) check_clients_reaped();
  if (!drained && through_driver())
    runner_violations_.push_back("hang: " + std::to_string(pending_from_logs(nullptr)) +
                                 " acknowledged messages were still not delivered at the end");
  else if (!drained)
    runner_violations_.push_back("hang: the rings did not drain at the end (c2d " +
                                 std::to_string(observer_ ? observer_->outbound().pending_total() : 0) + ", d2c " +
                                 std::to_string(observer_ ? observer_->inbound().pending_total() : 0) + " pending)");
  for (Proc& p : procs_)
    if (!p.done) ::kill(p.pid, SIGTERM);
  if (!wait_for(
          [&] {
            for (const Proc& p : procs_)
              if (!p.done) return false;
            return true;
          },
          5000ms)) {
    for (Proc& p : procs_)
      if (!p.done) {
        runner_violations_.push_back("hang: " + to_string(p.role) + " " + std::to_string(p.instance) +
                                     " did not stop within 5 s of SIGTERM");
        kill_proc(p, "kill at end");
      }
  }
  return drained;
}

// SPEC K-CLIENTS, once the writers are gone and the rings drained: within
// the hang timeout, every table entry of a killed client is reaped (the
// daemon reaps once a second). Not client_count itself: a client killed
// between its entry and its count leaves the count off by one, which SPEC
// allows. Through a driver the table is the transport's own.
void Runner::check_clients_reaped() {
  if (through_driver() || !observer_) return;
  const shm::ControlRegion& ctl = observer_->control();
  std::string dead;
  const bool reaped = wait_for(
      [&] {
        dead.clear();
        for (const auto& entry : ctl.client_pids)
          if (const std::uint32_t pid = entry.load(std::memory_order_acquire);
              pid != 0 && !shm::owner_process_alive(pid))
            dead += (dead.empty() ? "" : ", ") + std::to_string(pid);
        return dead.empty();
      },
      std::chrono::milliseconds(static_cast<long>(o_.hang_timeout_s * 1000)));
  if (!reaped)
    runner_violations_.push_back("K-CLIENTS: the client table still names dead processes (pids " + dead + ") " +
                                 ms(o_.hang_timeout_s * 1e9) +
                                 " ms after the writers stopped: killed clients are never taken off client_count");
}

}  // namespace memlink::chaos
