// The runner's processes: starting them (forked, or driver processes),
// finding the current one of a role, killing, reaping and restarting them.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
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
#include "runner.hpp"

namespace memlink::chaos {

using namespace std::chrono_literals;
using shm::platform::monotonic_ns;

// A forked child of the runner leaves the runner's process group for one of
// its own. The runner's group can be orphaned under a run (the shell or CI
// step that started it ends), and the kernel then sends SIGHUP and SIGCONT
// to every member of that group if one is stopped (POSIX): a daemon held
// stopped by a fault died of SIGHUP, and the run blamed the transport for
// it (chaos/orphaned_group_test.sh). A group of its own, whose parent is the
// runner, is not orphaned while the runner lives. Out of the terminal's
// group, Ctrl-C no longer reaches it, so on Linux it dies with the runner
// instead (elsewhere its alarm() ends it).
namespace {
void own_process_group(pid_t runner) {
  ::setpgid(0, 0);
#ifdef __linux__
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != runner) ::_exit(kExitSetup);  // the runner died before the line above
#else
  (void)runner;
#endif
}
}  // namespace

Proc& Runner::spawn(Role role, Arm arm) {
  Proc p;
  p.role = role;
  p.instance = next_instance_[static_cast<int>(role)]++;
  p.arm = std::move(arm);
  p.log_path = o_.work_dir + "/" + to_string(role) + "-" + std::to_string(p.instance) + ".log";
  p.started_ns = monotonic_ns();
  if (through_driver()) {
    start_driver(p);
    procs_.push_back(std::move(p));
    return procs_.back();
  }
  const pid_t runner = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    own_process_group(runner);
    observer_.reset();  // the child must not use the runner's mapping
    const int fd = ::open(p.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) ::_exit(kExitSetup);
    // The child's own messages (crash point notices, errors) go beside its log.
    const std::string err_path = p.log_path.substr(0, p.log_path.size() - 4) + ".stderr";
    if (const int efd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644); efd >= 0) {
      ::dup2(efd, 2);
      ::close(efd);
    }
    ::alarm(static_cast<unsigned>(o_.duration_s + 120));  // never outlive the run by much
    ProcessConfig c = o_.process;
    switch (role) {
      case Role::Daemon: run_daemon(c, fd, p.arm);
      case Role::Writer: run_writer(c, fd, p.instance, p.arm);
      case Role::Reader: run_reader(c, fd, p.arm);
    }
  }
  if (pid > 0) {
    ::setpgid(pid, pid);  // as the child does: whichever runs first
    note_started(pid);
  }
  p.pid = pid;
  procs_.push_back(std::move(p));
  return procs_.back();
}

// D-WORKLOAD: a driver process, its create or connect (retried while a
// predecessor is not yet stale or no daemon serves), its crash point, then
// the role. A process that dies on the way (at its crash point, say) is
// reaped and judged like any other.
nlohmann::json Runner::endpoint_request(Role role) const {
  const ProcessConfig& c = o_.process;
  nlohmann::json r{{"segment", c.segment},
                   {"protocol_version", 1},
                   {"stale_after_ms", 10},
                   {"claim_timeout_ms", c.claim_timeout_ms},
                   {"daemon_timeout_ms", c.heartbeat_timeout_ms}};
  if (role == Role::Daemon) {
    r["op"] = "create";
    r["segment_size"] = c.segment_size;
    r["slot_size"] = c.slot_size;
    r["heartbeat_ms"] = c.heartbeat_ms;
    r["heartbeat_timeout_ms"] = c.heartbeat_timeout_ms;
    if (c.age != shm::SegmentAge::Fresh) r["age"] = shm::to_string(c.age);
  } else {
    r["op"] = "connect";
  }
  return r;
}

void Runner::start_driver(Proc& p) {
  using conformance::driver::DriverFailure;
  using conformance::driver::DriverProcess;
  const std::string who = to_string(p.role) + " " + std::to_string(p.instance);
  DriverProcess::StartOptions so;
  so.reaps = false;
  so.stderr_path = p.log_path.substr(0, p.log_path.size() - 4) + ".stderr";
  try {
    auto d = DriverProcess::start(o_.driver, who, 10s, so);
    p.pid = d->pid();
    note_started(p.pid);
    drivers_.push_back(std::move(d));
    DriverProcess& dp = *drivers_.back();
    if (!p.arm.point.empty() && o_.hello.has("crash_points")) {
      const auto r = dp.call({{"op", "arm"}, {"point", p.arm.point}, {"occurrence", p.arm.occurrence}});
      if (!r.ok()) throw DriverFailure(who + ": arm " + p.arm.point + ": " + r.error().message());
    }
    for (int attempt = 0;; ++attempt) {
      const auto r = dp.call(endpoint_request(p.role), 20s);
      if (r.ok()) break;
      const auto code = r.error().code;
      const bool transient = code == shm::ErrorCode::AlreadyExists || code == shm::ErrorCode::NotFound ||
                             code == shm::ErrorCode::Disconnected || code == shm::ErrorCode::InvalidState;
      if (!transient || attempt == 500)
        throw DriverFailure(who + ": " + endpoint_request(p.role)["op"].get<std::string>() + ": " +
                            r.error().message());
      std::this_thread::sleep_for(10ms);
    }
    const char* role = p.role == Role::Daemon ? "daemon" : p.role == Role::Writer ? "writer" : "reader";
    const auto r = dp.call({{"op", "workload"},
                            {"role", role},
                            {"log", p.log_path},
                            {"writer", p.instance},
                            {"rate", o_.process.rate},
                            {"seed", o_.seed},
                            {"slot_size", o_.process.slot_size}});
    if (!r.ok()) throw DriverFailure(who + ": workload: " + r.error().message());
    dp.forget();  // from here on the runner signals and reaps it
  } catch (const DriverFailure& e) {
    // Dead on the way (a crash point during create: fine), or a broken driver.
    if (p.pid > 0) {
      int status = 0;
      if (::waitpid(p.pid, &status, WNOHANG) == p.pid) {
        p.done = true;
        p.status = status;
        if (p.hit_crash_point()) {
          ++crash_hits_[p.arm.point];
          ++kills_["crash point"];
          if (p.role == Role::Daemon) recoveries_.push_back({monotonic_ns(), next_instance_[0], false});
          return;
        }
      } else {
        ::kill(p.pid, SIGKILL);
        ::waitpid(p.pid, &status, 0);
        p.done = true;
        p.status = status;
        p.killed_by_runner = true;
      }
    }
    runner_violations_.push_back(std::string("driver: ") + e.what());
    driver_broken_ = true;
  }
}

std::vector<std::string> Runner::driver_points(const char* prefix) const {
  std::vector<std::string> out;
  for (const auto& p : o_.hello.crash_points)
    if (p.rfind(prefix, 0) == 0) out.push_back(p);
  return out;
}

void Runner::reap() {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    note_reaped(pid);
    for (Proc& p : procs_)
      if (p.pid == pid && !p.done) {
        p.done = true;
        p.status = status;
        p.ended_ns = monotonic_ns();
        if (p.hit_crash_point()) {
          ++crash_hits_[p.arm.point];
          ++kills_["crash point"];
          if (p.role == Role::Daemon) recoveries_.push_back({monotonic_ns(), next_instance_[0], false});
        }
      }
  }
}

Proc* Runner::find(Role role, std::uint32_t instance) {
  for (Proc& p : procs_)
    if (p.role == role && p.instance == instance) return &p;
  return nullptr;
}

// Whether a daemon has logged that it serves (its takeover completed).
bool has_served(const Proc& daemon) {
  for (const Record& r : read_log(daemon.log_path))
    if (r.type == RecordType::Serving) return true;
  return false;
}

Proc* Runner::current(Role role) {
  for (auto it = procs_.rbegin(); it != procs_.rend(); ++it)
    if (it->role == role && !it->done && !it->stopped) return &*it;
  return nullptr;
}

void Runner::kill_proc(Proc& p, const std::string& kind) {
  p.killed_by_runner = true;
  ::kill(p.pid, SIGKILL);
  int status = 0;
  if (::waitpid(p.pid, &status, 0) == p.pid) note_reaped(p.pid);
  p.done = true;
  p.status = status;
  p.ended_ns = monotonic_ns();
  ++kills_[kind];
}

Proc& Runner::restart_daemon(Arm arm) { return spawn(Role::Daemon, std::move(arm)); }

bool Runner::wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const std::uint64_t end = monotonic_ns() + static_cast<std::uint64_t>(limit.count()) * 1000000;
  while (monotonic_ns() < end) {
    reap();
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  reap();
  return pred();
}

// Every role keeps one live process: a crash point or a kill is followed by
// a fresh one (for a daemon, a takeover).
void Runner::keep_alive() {
  reap();
  if (current(Role::Daemon) == nullptr) restart_daemon();
  if (current(Role::Reader) == nullptr) spawn(Role::Reader);
  std::uint32_t writers = 0;
  for (const Proc& p : procs_) writers += p.role == Role::Writer && !p.done;
  for (; writers < o_.clients; ++writers) spawn(Role::Writer);
}

}  // namespace memlink::chaos
