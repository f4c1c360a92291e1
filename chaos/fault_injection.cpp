// The faults: a random one, the crash walk (every crash point in order),
// the pause walk (every pause point), and a daemon stopped and replaced.
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

namespace {

std::vector<std::string> points_with_prefix(std::initializer_list<const char*> prefixes) {
  std::vector<std::string> out;
  for (auto p : shm::kCrashPoints)
    for (const char* pre : prefixes)
      if (p.substr(0, std::strlen(pre)) == pre) out.emplace_back(p);
  return out;
}

}  // namespace

// SIGSTOP the daemon past the heartbeat timeout, start a new one, resume the
// old one: it must notice it was fenced and exit (SPEC K-FENCE).
void Runner::stop_and_replace_daemon() {
  Proc* old = current(Role::Daemon);
  // Only a daemon that serves: one stopped while starting never served, and
  // on resuming finds its successor alive (AlreadyExists), which is right.
  if (old == nullptr || !has_served(*old)) return;
  const pid_t old_pid = old->pid;
  const std::uint32_t old_instance = old->instance;
  ::kill(old_pid, SIGSTOP);
  old->stopped = true;
  ++kills_["stop"];
  replace_stopped_daemon(old_pid, old_instance, monotonic_ns());
}

// The daemon `old_instance` is stopped (or its heartbeat is): once the
// heartbeat timeout has passed, a new daemon takes over; resumed, the old
// one must notice it was fenced and exit.
void Runner::replace_stopped_daemon(pid_t old_pid, std::uint32_t old_instance, std::uint64_t t_stop) {
  std::this_thread::sleep_for(std::chrono::milliseconds(o_.process.heartbeat_timeout_ms * 3 / 2));
  const std::uint32_t next = restart_daemon().instance;
  recoveries_.push_back({t_stop, next, true});
  // Resume the old daemon only once the new one serves (or gave up): a
  // daemon resumed while its successor still watches its heartbeat stamps
  // again, the successor rightly finds it alive and leaves, and nothing
  // fences it. How long the takeover takes is the machine's business; the
  // bound is a hang guard, not a timing check.
  wait_for([&] { return has_served(*find(Role::Daemon, next)) || find(Role::Daemon, next)->done; }, 30000ms);
  const bool replaced = has_served(*find(Role::Daemon, next));
  if (!replaced)
    runner_violations_.push_back("takeover: daemon " + std::to_string(next) + " did not take over from daemon " +
                                 std::to_string(old_instance) + ", stopped past the heartbeat timeout (" +
                                 (find(Role::Daemon, next)->done ? "it exited" : "still not serving after 30 s") + ")");
  ::kill(old_pid, SIGCONT);
  if (!replaced) return;
  Proc* old = find(Role::Daemon, old_instance);
  if (!wait_for([&] { return (old = find(Role::Daemon, old_instance))->done; }, 30000ms)) {
    runner_violations_.push_back("fence: daemon " + std::to_string(old_instance) +
                                 " was replaced while stopped and had not stopped 30 s after it resumed");
    kill_proc(*old, "kill daemon");
    return;
  }
  const Proc& p = *old;
  if (p.hit_crash_point()) return;  // it died at its armed point on resuming: fine
  if (!(WIFEXITED(p.status) && WEXITSTATUS(p.status) == kExitFenced))
    runner_violations_.push_back("fence: daemon " + std::to_string(old_instance) +
                                 " did not exit as fenced after it was replaced (status " + std::to_string(p.status) +
                                 ")");
}

void Runner::random_fault() {
  // Through a driver: the points it names, if it claims any.
  const bool points = !through_driver() || o_.hello.has("crash_points");
  auto concat = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const auto daemon_points =
      through_driver() ? concat(concat(driver_points("read."), driver_points("daemon.")), driver_points("recovery."))
                       : points_with_prefix({"read.", "daemon.", "recovery."});
  const auto writer_points = through_driver() ? driver_points("write.") : points_with_prefix({"write."});
  const auto reader_points = through_driver() ? driver_points("read.") : points_with_prefix({"read."});
  auto pick = [&](const std::vector<std::string>& v) {
    return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng_)];
  };
  auto occurrence = [&](long hi) { return std::uniform_int_distribution<long>(1, hi)(rng_); };
  const int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
  if (roll < 30 || (roll < 50 && (!points || daemon_points.empty()))) {
    if (Proc* d = current(Role::Daemon)) {
      recoveries_.push_back({monotonic_ns(), next_instance_[0], false});
      kill_proc(*d, "kill daemon");
      restart_daemon();
    }
  } else if (roll < 50 && points && !daemon_points.empty()) {
    if (Proc* d = current(Role::Daemon)) {
      recoveries_.push_back({monotonic_ns(), next_instance_[0], false});
      kill_proc(*d, "kill daemon");
      const std::string point = pick(daemon_points);
      restart_daemon(Arm{point, point.rfind("recovery.", 0) == 0 ? 1 : occurrence(30)});
    }
  } else if (roll < 63 || (roll < 78 && (!points || writer_points.empty()))) {
    if (Proc* w = current(Role::Writer)) kill_proc(*w, "kill writer");
  } else if (roll < 78) {
    if (Proc* w = current(Role::Writer)) kill_proc(*w, "kill writer");
    spawn(Role::Writer, Arm{pick(writer_points), occurrence(50)});
  } else if (roll < 83 || (roll < 90 && (!points || reader_points.empty()))) {
    if (Proc* r = current(Role::Reader)) kill_proc(*r, "kill reader");
  } else if (roll < 90) {
    if (Proc* r = current(Role::Reader)) kill_proc(*r, "kill reader");
    spawn(Role::Reader, Arm{pick(reader_points), occurrence(30)});
  } else if (roll < 95 && through_driver()) {
    if (Proc* w = current(Role::Writer)) kill_proc(*w, "kill writer");  // DRIVER.md has no pause points
  } else if (roll < 95) {
    // A writer held at a point of its write past the claim timeout, then
    // resumed (resume_held() lets it go).
    if (Proc* w = current(Role::Writer)) kill_proc(*w, "kill writer");
    const std::uint32_t inst = spawn(Role::Writer, Arm{pick(writer_points), occurrence(50), true}).instance;
    held_.push_back({inst, monotonic_ns() + 2ULL * o_.process.claim_timeout_ms * 1'000'000ULL, false});
  } else if (!through_driver() || o_.hello.has("takeover")) {
    stop_and_replace_daemon();
  } else if (Proc* d = current(Role::Daemon)) {
    recoveries_.push_back({monotonic_ns(), next_instance_[0], false});
    kill_proc(*d, "kill daemon");
    restart_daemon();
  }
}

// Every crash point at least once, in order, then one stop-and-fence.
void Runner::crash_walk() {
  for (std::string_view sv : shm::kCrashPoints) {
    const std::string point(sv);
    auto hits_before = crash_hits_[point];
    auto hit = [&] { return crash_hits_[point] > hits_before; };
    if (point.rfind("write.", 0) == 0) {
      spawn(Role::Writer, Arm{point, 2});
    } else {
      if (Proc* d = current(Role::Daemon)) {
        recoveries_.push_back({monotonic_ns(), next_instance_[0], false});
        kill_proc(*d, "kill daemon");
      }
      restart_daemon(Arm{point, point.rfind("recovery.", 0) == 0 ? 1 : 2});
    }
    if (!wait_for(hit, 3000ms))
      runner_violations_.push_back("crash walk: point " + point + " was not reached within 3 s");
    keep_alive();
    // The reading client at the same points of the d2c direction.
    if (point == "read.after-take" || point == "read.before-done" || point == "read.after-done") {
      if (Proc* r = current(Role::Reader)) kill_proc(*r, "kill reader");
      hits_before = crash_hits_[point];
      spawn(Role::Reader, Arm{point, 2});
      if (!wait_for(hit, 3000ms))
        runner_violations_.push_back("crash walk: reader point " + point + " was not reached within 3 s");
      keep_alive();
    }
    std::this_thread::sleep_for(50ms);
    progress(false);
  }
  stop_and_replace_daemon();
  keep_alive();
  pause_walk();
}

// Resumes the held writers whose time has come (all: every one, at the end).
void Runner::resume_held(bool all) {
  for (Held& h : held_) {
    for (Proc& p : procs_) {
      if (p.role != Role::Writer || p.instance != h.writer || p.done) continue;
      std::ifstream stat("/proc/" + std::to_string(p.pid) + "/stat");
      std::string s;
      std::getline(stat, s);
      const auto close = s.rfind(')');
      const bool stopped = close != std::string::npos && close + 2 < s.size() && s[close + 2] == 'T';
      if (stopped && !h.counted) {
        h.counted = true;
        ++pause_holds_[p.arm.point];
        h.resume_ns =
            std::max<std::uint64_t>(h.resume_ns, monotonic_ns() + 2ULL * o_.process.claim_timeout_ms * 1000000ULL);
      }
      if (all || (stopped && monotonic_ns() >= h.resume_ns)) ::kill(p.pid, SIGCONT);
    }
  }
}

bool Runner::wait_stopped(const Proc& p, std::chrono::milliseconds limit) {
  return wait_for(
             [&] {
               if (p.done) return true;
               std::ifstream stat("/proc/" + std::to_string(p.pid) + "/stat");
               std::string all;
               std::getline(stat, all);
               const auto close = all.rfind(')');
               return close != std::string::npos && close + 2 < all.size() && all[close + 2] == 'T';
             },
             limit) &&
         !p.done;
}

// Every pause point: the process (or, for the heartbeat, the thread) held
// at the point while the others act, then resumed; the history checker
// judges the whole run as for a crash.
// Every pause point: the process (or, for the heartbeat, the thread) held
// at the point while the others act, then resumed; the history checker
// judges the whole run as for a crash.
void Runner::pause_walk() {
  for (std::string_view sv : shm::kCrashPoints) {
    const std::string point(sv);
    const bool held = point.rfind("write.", 0) == 0 ? pause_writer_at(point) : pause_daemon_at(point);
    if (!held) continue;
    keep_alive();
    std::this_thread::sleep_for(50ms);
    progress(false);
  }
}

// A writer held at `point` past the claim timeout, then resumed. False if
// it never got there.
bool Runner::pause_writer_at(const std::string& point) {
  const std::uint32_t inst = spawn(Role::Writer, Arm{point, 2, true, {}}).instance;
  Proc* w = find(Role::Writer, inst);
  if (!wait_stopped(*w, 3000ms)) {
    runner_violations_.push_back("pause walk: writer point " + point + " was not reached within 3 s");
    return false;
  }
  ++pause_holds_[point];
  // Held past the claim timeout: the daemon may reclaim a claimed,
  // still Empty position, and must leave a live writer's slot alone.
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * o_.process.claim_timeout_ms));
  ::kill(w->pid, SIGCONT);
  return true;
}

// A daemon held at `point` (a recovery point: mid-takeover; a heartbeat
// point: only its heartbeat thread), then resumed or replaced; at a read
// point the reading client too. False if it never got there.
bool Runner::pause_daemon_at(const std::string& point) {
  const bool heartbeat = point.rfind("heartbeat.", 0) == 0;
  const bool recovery = point.rfind("recovery.", 0) == 0;
  if (Proc* d = current(Role::Daemon)) {
    recoveries_.push_back({monotonic_ns(), next_instance_[0], false});
    kill_proc(*d, "kill daemon");
  }
  if (recovery) {
    // Give the takeover a slot to recover: a daemon killed holding one.
    const std::uint32_t holder = restart_daemon(Arm{"read.after-take", 1}).instance;
    if (wait_for([&] { return find(Role::Daemon, holder)->done; }, 3000ms)) {
      recoveries_.push_back({monotonic_ns(), next_instance_[0], false});
    } else {
      kill_proc(*find(Role::Daemon, holder), "kill daemon");
    }
  }
  std::string dir;
  if (heartbeat) {
    dir = o_.work_dir + "/pause-" + std::to_string(next_instance_[0]);
    std::filesystem::create_directories(dir);
  }
  const std::uint32_t inst = restart_daemon(Arm{point, recovery ? 1 : heartbeat ? 3 : 2, true, dir}).instance;
  Proc* d = find(Role::Daemon, inst);
  const bool held =
      heartbeat ? wait_for([&] { return std::filesystem::exists(dir + "/paused") || d->done; }, 3000ms) && !d->done
                : wait_stopped(*d, 3000ms);
  if (!held) {
    runner_violations_.push_back("pause walk: daemon point " + point + " was not reached within 3 s");
    return false;
  }
  ++pause_holds_[point];
  if (recovery) {
    // A starter held mid-takeover: it holds the start lock; others wait.
    std::this_thread::sleep_for(500ms);
    ::kill(d->pid, SIGCONT);
  } else if (heartbeat) {
    hold_heartbeat_past_replacement(inst, dir);
  } else {
    d->stopped = true;
    ++kills_["stop"];
    replace_stopped_daemon(d->pid, inst, monotonic_ns());
  }
  // The reading client at the same consumer points of d2c: held, resumed.
  if (point.rfind("read.", 0) == 0) {
    if (Proc* r = current(Role::Reader)) kill_proc(*r, "kill reader");
    const std::uint32_t rinst = spawn(Role::Reader, Arm{point, 2, true, {}}).instance;
    Proc* r = find(Role::Reader, rinst);
    if (wait_stopped(*r, 3000ms)) {
      ++pause_holds_[point];
      std::this_thread::sleep_for(300ms);
      ::kill(r->pid, SIGCONT);
    }
  }
  return true;
}

// Daemon `inst`'s heartbeat thread is held (its marker files in `dir`):
// the daemon keeps serving and stamps on its waits' sleep slices, so a
// starter may find it alive (and give up), or stale and replace it; then it
// must stop, as fenced.
void Runner::hold_heartbeat_past_replacement(std::uint32_t inst, const std::string& dir) {
  std::this_thread::sleep_for(std::chrono::milliseconds(o_.process.heartbeat_timeout_ms * 3 / 2));
  const std::uint32_t next = restart_daemon().instance;
  wait_for([&] { return has_served(*find(Role::Daemon, next)) || find(Role::Daemon, next)->done; }, 30000ms);
  if (has_served(*find(Role::Daemon, next))) {
    recoveries_.push_back({monotonic_ns(), next, true});
    if (!wait_for([&] { return find(Role::Daemon, inst)->done; }, 30000ms)) {
      runner_violations_.push_back("fence: daemon " + std::to_string(inst) +
                                   " kept serving after it was replaced (its heartbeat thread was held)");
      kill_proc(*find(Role::Daemon, inst), "kill daemon");
    } else if (const Proc& p = *find(Role::Daemon, inst);
               !(WIFEXITED(p.status) && WEXITSTATUS(p.status) == kExitFenced)) {
      runner_violations_.push_back("fence: daemon " + std::to_string(inst) +
                                   " did not exit as fenced after it was replaced (status " + std::to_string(p.status) +
                                   ")");
    }
  } else if (find(Role::Daemon, inst)->done) {
    runner_violations_.push_back("heartbeat: daemon " + std::to_string(inst) +
                                 " stopped although no daemon replaced it");
  }
  std::ofstream(dir + "/resume").put('\n');
}

}  // namespace memlink::chaos
