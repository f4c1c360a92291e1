// memlink-chaos: forks a daemon, K writing clients and a reading client on
// one segment, attacks them (SIGKILL at random moments and at every crash
// point, SIGSTOP past the heartbeat timeout, killed clients), starts a new
// daemon each time, and at the end checks the whole history (history.hpp).
// Exit status: 0 no violation, 1 a violation (the seed and the replay
// command are printed), 2 the run could not be set up.
#include "runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "cli_support.hpp"
#include "driver_process.hpp"
#include "history.hpp"
#include "junit.hpp"
#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/percentile.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/recovery.hpp"
#include "memlink/shm/transport.hpp"
#include "picture.hpp"
#include "processes.hpp"

namespace memlink::chaos {
namespace {

using namespace std::chrono_literals;
namespace shm = memlink::shm;
using shm::platform::monotonic_ns;

struct Options {
  double duration_s = 60;
  std::uint64_t seed = 0;
  std::uint32_t clients = 3;
  std::string json_path;
  std::string junit_path;
  std::string work_dir;
  bool crash_walk = false;
  bool keep_logs = false;
  bool quiet = false;
  double hang_timeout_s = 10;
  ProcessConfig process;
  // --driver: the transport a driver command drives (conformance/DRIVER.md),
  // in workload mode, instead of the reference forked in process.
  std::string driver;
  conformance::driver::Hello hello;
};

struct Proc {
  pid_t pid = -1;
  Role role = Role::Writer;
  std::uint32_t instance = 0;
  std::string log_path;
  Arm arm;
  bool killed_by_runner = false;
  bool stopped = false;
  bool done = false;
  int status = 0;
  std::uint64_t started_ns = 0;
  std::uint64_t ended_ns = 0;  // when the runner reaped it
  bool died_by_sigkill() const { return done && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
  bool hit_crash_point() const { return died_by_sigkill() && !killed_by_runner && !arm.point.empty(); }
};

std::vector<std::string> points_with_prefix(std::initializer_list<const char*> prefixes) {
  std::vector<std::string> out;
  for (auto p : shm::kCrashPoints)
    for (const char* pre : prefixes)
      if (p.substr(0, std::strlen(pre)) == pre) out.emplace_back(p);
  return out;
}

class Runner {
 public:
  explicit Runner(Options o) : o_(std::move(o)), rng_(o_.seed) {}
  bool through_driver() const { return !o_.driver.empty(); }

  int run();

 private:
  Proc& spawn(Role role, Arm arm = {});
  void start_driver(Proc& p);
  nlohmann::json endpoint_request(Role role) const;
  std::vector<std::string> driver_points(const char* prefix) const;
  std::uint64_t pending_from_logs(std::uint64_t* excused);
  bool drained_now();
  void reap();
  void kill_proc(Proc& p, const std::string& kind);
  Proc* current(Role role);
  Proc* find(Role role, std::uint32_t instance);  // nullptr if never started
  Proc& restart_daemon(Arm arm = {});
  void random_fault();
  void crash_walk();
  void pause_walk();
  bool pause_writer_at(const std::string& point);
  bool pause_daemon_at(const std::string& point);
  void hold_heartbeat_past_replacement(std::uint32_t inst, const std::string& dir);
  void stop_and_replace_daemon();
  void replace_stopped_daemon(pid_t old_pid, std::uint32_t old_instance, std::uint64_t t_stop);
  bool wait_stopped(const Proc& p, std::chrono::milliseconds limit);
  bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit);
  void keep_alive();
  void watchdog();
  void progress(bool force);
  bool drain();
  void check_clients_reaped();
  int report();
  // report(), step by step.
  struct Figures;
  Figures gather_figures() const;
  void read_logs(Figures& f) const;
  CheckOptions check_options() const;
  void measure_recoveries(Figures& f) const;
  std::string replay_command() const;
  void print_summary(const Figures& f) const;
  void print_faults(const Figures& f) const;
  void print_verdict(const Figures& f) const;
  void print_recovery(const Figures& f) const;
  std::string draw_picture(const Figures& f) const;
  void write_json(const Figures& f) const;
  void write_junit(const Figures& f) const;
  void clean_up(bool ok);
  std::optional<shm::Client> observer_;
  // Driver mode: the processes' pipes (kept open while they run).
  std::vector<std::unique_ptr<conformance::driver::DriverProcess>> drivers_;
  std::uint64_t last_pending_check_ns_ = 0;

  Options o_;
  std::mt19937_64 rng_;
  std::vector<Proc> procs_;
  std::uint32_t next_instance_[3] = {};
  std::map<std::string, std::uint64_t> kills_;           // by kind
  std::map<std::string, std::uint64_t> crash_hits_;      // by crash point
  std::map<std::string, std::uint64_t> pause_holds_;     // by pause point
  struct Held {
    std::uint32_t writer;     // instance of a writer armed to stop at a point
    std::uint64_t resume_ns;  // when to let it go once it stopped
    bool counted;
  };
  std::vector<Held> held_;
  void resume_held(bool all);
  struct Recovery {
    std::uint64_t t_fault;      // kill, crash point death, or SIGSTOP
    std::uint32_t next_daemon;  // the first daemon instance started after it
    bool stop;                  // a stop (the takeover waits for the heartbeat timeout)
  };
  std::vector<Recovery> recoveries_;
  std::vector<std::string> runner_violations_;
  std::uint64_t start_ns_ = 0, last_progress_ns_ = 0;
  std::uint64_t watch_tail_ = 0, watch_since_ns_ = 0;
  bool driver_broken_ = false;  // a driver failed a request (the run ends, FAIL)
  std::set<std::uint32_t> stuck_reported_;  // writers reported stuck inside a write
};

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
  const pid_t pid = ::fork();
  if (pid == 0) {
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
  nlohmann::json r{{"segment", c.segment},       {"protocol_version", 1},
                   {"stale_after_ms", 10},        {"claim_timeout_ms", c.claim_timeout_ms},
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
      if (!transient || attempt == 500) throw DriverFailure(who + ": " + endpoint_request(p.role)["op"].get<std::string>() + ": " + r.error().message());
      std::this_thread::sleep_for(10ms);
    }
    const char* role = p.role == Role::Daemon ? "daemon" : p.role == Role::Writer ? "writer" : "reader";
    const auto r = dp.call({{"op", "workload"}, {"role", role}, {"log", p.log_path}, {"writer", p.instance},
                            {"rate", o_.process.rate}, {"seed", o_.seed}, {"slot_size", o_.process.slot_size}});
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

void Runner::reap() {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
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
  ::waitpid(p.pid, &status, 0);
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
                                 " did not exit as fenced after it was replaced (status " + std::to_string(p.status) + ")");
}

void Runner::random_fault() {
  // Through a driver: the points it names, if it claims any.
  const bool points = !through_driver() || o_.hello.has("crash_points");
  auto concat = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const auto daemon_points = through_driver() ? concat(concat(driver_points("read."), driver_points("daemon.")), driver_points("recovery."))
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
        h.resume_ns = std::max<std::uint64_t>(h.resume_ns, monotonic_ns() + 2ULL * o_.process.claim_timeout_ms * 1000000ULL);
      }
      if (all || (stopped && monotonic_ns() >= h.resume_ns)) ::kill(p.pid, SIGCONT);
    }
  }
}

bool Runner::wait_stopped(const Proc& p, std::chrono::milliseconds limit) {
  return wait_for([&] {
    if (p.done) return true;
    std::ifstream stat("/proc/" + std::to_string(p.pid) + "/stat");
    std::string all;
    std::getline(stat, all);
    const auto close = all.rfind(')');
    return close != std::string::npos && close + 2 < all.size() && all[close + 2] == 'T';
  }, limit) && !p.done;
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

// No hang: while messages wait in c2d and a daemon is serving, the daemon's
// consumed counter must move.
void Runner::watchdog() {
  if (through_driver()) {
    // From the logs, once a second: acknowledged c2d and d2c messages wait
    // while the number of deliveries does not move.
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
    // A live writer whose last record is an Intent older than the hang
    // timeout is stuck inside one write: its transport blocked it.
    for (const Proc& p : procs_) {
      if (p.role != Role::Writer || p.done || p.stopped) continue;
      const auto records = read_log(p.log_path);
      // (An Intent logged after `now` was read is no older than 0 s.)
      if (records.empty() || records.back().type != RecordType::Intent || records.back().t_ns >= now) continue;
      const double inside_s = static_cast<double>(now - records.back().t_ns) / 1e9;
      if (inside_s > o_.hang_timeout_s && !stuck_reported_.count(p.instance)) {
        stuck_reported_.insert(p.instance);
        runner_violations_.push_back("hang: writer " + std::to_string(p.instance) + " has been inside one write for " +
                                     std::to_string(static_cast<int>(inside_s)) + " s (" + to_string(records.back().id()) +
                                     "); the transport blocked it");
      }
    }
    if (deliveries != watch_tail_ || pending <= excused || watch_since_ns_ == 0) {
      watch_tail_ = deliveries;
      watch_since_ns_ = now;
    } else if (now - watch_since_ns_ > static_cast<std::uint64_t>(o_.hang_timeout_s * 1e9)) {
      runner_violations_.push_back("hang: " + std::to_string(pending) + " acknowledged messages waited " +
                                   std::to_string(o_.hang_timeout_s) + " s without any consumer recording anything");
      watch_since_ns_ = now;
    }
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

// Writers stop; the last daemon and reader must empty both directions.
bool Runner::drain() {
  for (Proc& p : procs_)
    if (p.role == Role::Writer && !p.done) ::kill(p.pid, SIGTERM);
  wait_for([&] {
    for (const Proc& p : procs_)
      if (p.role == Role::Writer && !p.done) return false;
    return true;
  }, 5000ms);
  for (Proc& p : procs_)
    if (p.role == Role::Writer && !p.done) kill_proc(p, "kill writer");
  // An armed daemon or reader may still die at its point: replace it, a few times.
  bool drained = false;
  for (int attempt = 0; attempt < 5 && !drained; ++attempt) {
    if (current(Role::Daemon) == nullptr) restart_daemon();
    if (current(Role::Reader) == nullptr) spawn(Role::Reader);
    drained = wait_for([&] {
      if (current(Role::Daemon) == nullptr || current(Role::Reader) == nullptr) return false;
      if (through_driver()) {  // the logs are read at most every 100 ms
        if (monotonic_ns() - last_pending_check_ns_ < 100'000'000ULL) return false;
        last_pending_check_ns_ = monotonic_ns();
      }
      return drained_now();
    }, std::chrono::milliseconds(static_cast<long>(o_.hang_timeout_s * 1000) + 2 * o_.process.claim_timeout_ms));
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
  if (!wait_for([&] {
        for (const Proc& p : procs_)
          if (!p.done) return false;
        return true;
      }, 5000ms)) {
    for (Proc& p : procs_)
      if (!p.done) {
        runner_violations_.push_back("hang: " + to_string(p.role) + " " + std::to_string(p.instance) +
                                     " did not stop within 5 s of SIGTERM");
        kill_proc(p, "kill at end");
      }
  }
  return drained;
}

std::string ms(double ns);  // "12.3" (below, with the reports)

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

int Runner::run() {
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

std::string ms(double ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", ns / 1e6);
  return b;
}

// What report() works from: every figure of the finished run, gathered once.
struct Runner::Figures {
  std::vector<ProcessLog> logs;
  std::vector<ProcessLife> lives;
  std::map<std::uint32_t, std::uint64_t> serving_at;  // daemon instance -> when it started serving
  CheckOptions check;
  Verdict verdict;
  std::vector<double> recovery_ns;       // kill to the next daemon serving, sorted
  std::vector<double> stop_takeover_ns;  // stop to the next daemon serving, sorted
  std::uint64_t kills = 0;
  double duration_s = 0;
  std::vector<std::string> violations;  // the runner's, then the checker's
  bool ok = false;
  std::string replay;
  std::string picture;  // a failing run's timeline, once drawn
};

double max_of(const std::vector<double>& sorted) { return sorted.empty() ? 0.0 : sorted.back(); }
std::uint64_t per_stream(const Verdict& v, const char* stream) {
  const auto it = v.per_stream_delivered.find(stream);
  return it == v.per_stream_delivered.end() ? 0 : it->second;
}

// Every process's log, how it ended, and when each daemon began serving.
void Runner::read_logs(Figures& f) const {
  for (const Proc& p : procs_) {
    ProcessLife life;
    life.started_ns = p.started_ns;
    life.ended_ns = p.ended_ns;
    if (p.hit_crash_point()) life.death = "killed at crash point " + p.arm.point;
    else if (p.died_by_sigkill()) life.death = "killed (SIGKILL) by the runner";
    else if (p.done && WIFSIGNALED(p.status)) life.death = "died of signal " + std::to_string(WTERMSIG(p.status));
    f.lives.push_back(std::move(life));
    ProcessLog l;
    l.role = p.role;
    l.instance = p.instance;
    l.killed = p.died_by_sigkill();
    l.records = read_log(p.log_path);
    if (p.role == Role::Daemon)
      for (const Record& r : l.records)
        if (r.type == RecordType::Serving) f.serving_at[p.instance] = r.t_ns;
    f.logs.push_back(std::move(l));
  }
}

// What the transport promises: everything for the reference, what a
// driver claims (DRIVER.md D-CAPS) for another.
CheckOptions Runner::check_options() const {
  CheckOptions check;
  if (through_driver()) {
    check.sequences = o_.hello.has("sequences");
    check.positions = o_.hello.has("spec_layout");
    check.consumer_kill_may_lose = !o_.hello.has("two_step");
  }
  check.first_epoch = shm::first_epoch(o_.process.age);
  return check;
}

// Recovery time: from the kill (or stop) to the next daemon that served.
void Runner::measure_recoveries(Figures& f) const {
  for (const Recovery& r : recoveries_)
    for (std::uint32_t i = r.next_daemon; i < next_instance_[0]; ++i)
      if (auto it = f.serving_at.find(i); it != f.serving_at.end() && it->second >= r.t_fault) {
        (r.stop ? f.stop_takeover_ns : f.recovery_ns).push_back(static_cast<double>(it->second - r.t_fault));
        break;
      }
  std::sort(f.recovery_ns.begin(), f.recovery_ns.end());
  std::sort(f.stop_takeover_ns.begin(), f.stop_takeover_ns.end());
}

// The command that runs this schedule again.
std::string Runner::replay_command() const {
  char duration[32];
  const double whole = std::floor(o_.duration_s);
  if (whole == o_.duration_s)
    std::snprintf(duration, sizeof duration, "%.0fs", whole);
  else
    std::snprintf(duration, sizeof duration, "%.3fs", o_.duration_s);
  return "scripts/chaos " + (through_driver() ? "--driver '" + o_.driver + "' " : std::string()) + "--seed " +
         std::to_string(o_.seed) + " --clients " + std::to_string(o_.clients) +
         (o_.crash_walk ? std::string(" --crash-walk") : " --duration " + std::string(duration));
}

Runner::Figures Runner::gather_figures() const {
  Figures f;
  read_logs(f);
  f.check = check_options();
  f.verdict = check_history(f.logs, f.check);
  measure_recoveries(f);
  for (auto& [k, n] : kills_) f.kills += n;
  f.duration_s = static_cast<double>(monotonic_ns() - start_ns_) / 1e9;
  f.violations = runner_violations_;
  f.violations.insert(f.violations.end(), f.verdict.violations.begin(), f.verdict.violations.end());
  f.ok = f.verdict.ok() && runner_violations_.empty();
  f.replay = replay_command();
  return f;
}

void Runner::print_faults(const Figures& f) const {
  std::printf("memlink-chaos: seed %" PRIu64 ", %.1f s, %u writers + 1 reader, %u daemons started%s\n", o_.seed,
              f.duration_s, o_.clients, next_instance_[0],
              through_driver() ? (", driver " + o_.hello.name).c_str() : "");
  std::printf("  faults      %" PRIu64 " in all:", f.kills);
  for (auto& [k, n] : kills_) std::printf("  %s %" PRIu64, k.c_str(), n);
  std::printf("\n  crash points hit:");
  for (auto& [k, n] : crash_hits_) std::printf(" %s=%" PRIu64, k.c_str(), n);
  if (!pause_holds_.empty()) {
    std::printf("\n  pause points held:");
    for (auto& [k, n] : pause_holds_) std::printf(" %s=%" PRIu64, k.c_str(), n);
  }
  std::printf("\n");
}

void Runner::print_verdict(const Figures& f) const {
  const Verdict& v = f.verdict;
  std::printf("  messages    intended %" PRIu64 ", acknowledged %" PRIu64 ", refused %" PRIu64 ", delivered %" PRIu64
              " (c2d %" PRIu64 ", d2c %" PRIu64 ")\n",
              v.intended, v.acknowledged, v.refused, v.delivered, per_stream(v, "c2d"), per_stream(v, "d2c"));
  if (v.lost_to_killed_consumers > 0)
    std::printf("  excused     %" PRIu64
                " acknowledged messages not delivered, at most one per consumer killed inside a\n"
                "              read (the driver does not claim two_step: its read is destructive, SPEC K-TWO-STEP)\n",
                v.lost_to_killed_consumers);
  std::printf("  verdict     lost %" PRIu64 ", corrupt %" PRIu64 ", phantom %" PRIu64 ", duplicated %" PRIu64
              " (unexplained %" PRIu64 "), indeterminate %" PRIu64 " (+%" PRIu64 " delivered)\n",
              v.lost, v.corrupt, v.phantom, v.duplicated, v.duplicates_unexplained, v.indeterminate,
              v.indeterminate_delivered);
  std::printf("  order       FIFO violations %" PRIu64 ", priority violations %" PRIu64 " (of %" PRIu64
              " decidable checks), fence violations %" PRIu64 ", sequence violations %" PRIu64
              ", refused but delivered %" PRIu64 "\n",
              v.fifo_violations, v.priority_violations, v.priority_checked, v.fence_violations, v.sequence_violations,
              v.refused_delivered);
}

// Percentiles by nearest rank (memlink/shm/percentile.hpp), as every report here.
void Runner::print_recovery(const Figures& f) const {
  const auto& rec = f.recovery_ns;
  const auto& stop = f.stop_takeover_ns;
  std::printf("  recovery    kill to new daemon serving: p50 %s ms, p99 %s ms, max %s ms (%zu takeovers)\n",
              ms(shm::nearest_rank(rec, 0.5)).c_str(), ms(shm::nearest_rank(rec, 0.99)).c_str(),
              ms(max_of(rec)).c_str(), rec.size());
  std::printf(
      "              stop to new daemon serving (heartbeat timeout %u ms): p50 %s ms, max %s ms (%zu takeovers)\n",
      o_.process.heartbeat_timeout_ms, ms(shm::nearest_rank(stop, 0.5)).c_str(), ms(max_of(stop)).c_str(), stop.size());
}

void Runner::print_summary(const Figures& f) const {
  print_faults(f);
  print_verdict(f);
  print_recovery(f);
  for (const auto& s : f.violations) std::printf("  VIOLATION   %s\n", s.c_str());
  std::printf("%s\n", f.ok ? "memlink-chaos: PASS" : ("memlink-chaos: FAIL; replay with: " + f.replay).c_str());
}

// A failing run's timeline, around its first violation; its path.
std::string Runner::draw_picture(const Figures& f) const {
  const std::string path = o_.work_dir + "/timeline.html";
  std::ofstream(path) << conformance::render_timeline_html(
      chaos_timeline(f.logs, f.lives, f.violations.front(), f.replay));
  std::printf("memlink-chaos: picture of the run: %s\n", path.c_str());
  return path;
}

void Runner::write_json(const Figures& f) const {
  const Verdict& v = f.verdict;
  const auto& rec = f.recovery_ns;
  const auto& stop = f.stop_takeover_ns;
  nlohmann::json j{{"ok", f.ok},
                   {"seed", o_.seed},
                   {"duration_s", f.duration_s},
                   {"clients", o_.clients},
                   {"crash_walk", o_.crash_walk},
                   {"kills", f.kills},
                   {"kills_by_kind", kills_},
                   {"crash_points_hit", crash_hits_},
                   {"pause_points_held", pause_holds_},
                   {"daemons_started", next_instance_[0]},
                   {"intended", v.intended},
                   {"acknowledged", v.acknowledged},
                   {"refused", v.refused},
                   {"delivered", v.delivered},
                   {"deliveries", v.deliveries},
                   {"lost", v.lost},
                   {"duplicated", v.duplicated},
                   {"duplicates_unexplained", v.duplicates_unexplained},
                   {"corrupt", v.corrupt},
                   {"phantom", v.phantom},
                   {"indeterminate", v.indeterminate},
                   {"indeterminate_delivered", v.indeterminate_delivered},
                   {"fifo_violations", v.fifo_violations},
                   {"priority_violations", v.priority_violations},
                   {"priority_checked", v.priority_checked},
                   {"fence_violations", v.fence_violations},
                   {"sequence_violations", v.sequence_violations},
                   {"refused_delivered", v.refused_delivered},
                   {"recovery_ms",
                    {{"count", rec.size()},
                     {"p50", shm::nearest_rank(rec, 0.5) / 1e6},
                     {"p99", shm::nearest_rank(rec, 0.99) / 1e6},
                     {"max", max_of(rec) / 1e6}}},
                   {"stop_takeover_ms",
                    {{"count", stop.size()}, {"p50", shm::nearest_rank(stop, 0.5) / 1e6}, {"max", max_of(stop) / 1e6}}},
                   {"violations", f.violations},
                   {"replay", f.replay},
                   {"lost_to_killed_consumers", v.lost_to_killed_consumers}};
  if (through_driver()) {
    j["driver"] = o_.driver;
    j["driver_name"] = o_.hello.name;
    j["capabilities"] = o_.hello.capabilities;
    j["checks_skipped"] = {{"sequences", !f.check.sequences}, {"positions", !f.check.positions}};
  }
  if (!f.picture.empty()) j["picture"] = f.picture;
  std::ofstream(o_.json_path) << j.dump(2) << "\n";
}

// One test case for the run (conformance/junit.hpp): a failure lists every
// violation; system-out has the replay command (and the picture).
void Runner::write_junit(const Figures& f) const {
  conformance::junit::TestCase tc{"chaos seed " + std::to_string(o_.seed),
                                  "memlink-chaos",
                                  f.duration_s,
                                  {},
                                  std::nullopt,
                                  "replay: " + f.replay + "\n"};
  if (!f.picture.empty()) tc.system_out += "picture: " + f.picture + "\n";
  if (!f.ok) {
    std::string text;
    for (const auto& s : f.violations) text += s + "\n";
    tc.failures.push_back({std::to_string(f.violations.size()) + " violations", text + "replay: " + f.replay});
  }
  if (!conformance::junit::write(o_.junit_path, {"memlink-chaos", f.duration_s, {tc}}))
    std::fprintf(stderr, "memlink-chaos: could not write %s\n", o_.junit_path.c_str());
}

// The segment's leftovers (through the driver, if it cleans up), the
// drivers' pipes, and the logs of a passing run.
void Runner::clean_up(bool ok) {
  if (!through_driver()) {
    (void)shm::RecoveryManager(o_.process.segment).cleanup_orphaned_shm();
  } else if (o_.hello.has("cleanup")) {
    try {
      (void)conformance::driver::DriverProcess::start(o_.driver, "cleanup")->call({{"op", "cleanup"}, {"segment", o_.process.segment}});
    } catch (const conformance::driver::DriverFailure&) {
    }
  }
  drivers_.clear();
  if (!o_.keep_logs && ok) std::filesystem::remove_all(o_.work_dir);
  else if (!ok) std::printf("memlink-chaos: logs kept in %s\n", o_.work_dir.c_str());
}

int Runner::report() {
  Figures f = gather_figures();
  if (!o_.quiet || !f.ok) print_summary(f);
  if (!f.ok) f.picture = draw_picture(f);
  if (!o_.json_path.empty()) write_json(f);
  if (!o_.junit_path.empty()) write_junit(f);
  clean_up(f.ok);
  return f.ok ? 0 : 1;
}

}  // namespace
}  // namespace memlink::chaos

namespace memlink::chaos {
namespace {

void add_options(CLI::App& app, Options& o, std::string& age) {
  // Durations with CLI11's unit support: 90, 90s, 1.5m, 2h, 500ms (seconds when bare).
  const std::map<std::string, double> seconds_units{{"ms", 0.001}, {"s", 1}, {"m", 60}, {"min", 60}, {"h", 3600}};
  o.duration_s = 60;
  app.add_option("--duration", o.duration_s, "How long to attack (e.g. 60s, 10m, 1h; bare numbers are seconds)")
      ->transform(CLI::AsNumberWithUnit(seconds_units, CLI::AsNumberWithUnit::CASE_SENSITIVE, "UNIT"))
      ->check(CLI::Range(0.001, 30.0 * 86400))
      ->default_str("60s");
  app.add_option("--seed", o.seed, "Seed of the fault schedule and the traffic")->capture_default_str();
  app.add_option("--clients", o.clients, "Writing client processes")->capture_default_str()->check(CLI::Range(1, 16));
  app.add_option("--rate", o.process.rate, "Messages per second per writer, between bursts")->capture_default_str();
  app.add_option("--json", o.json_path, "Write the summary as JSON to FILE");
  app.add_option("--junit", o.junit_path, "Write a JUnit XML report to FILE");
  app.add_flag("--crash-walk", o.crash_walk,
               "Instead of random faults, hit every crash point once, in order, then "
               "stop and replace the daemon once (deterministic, a few seconds)");
  app.add_option("--heartbeat-ms", o.process.heartbeat_ms, "Daemon heartbeat interval")->capture_default_str();
  app.add_option("--heartbeat-timeout-ms", o.process.heartbeat_timeout_ms, "Silence after which a daemon is replaced")
      ->capture_default_str();
  app.add_option("--hang-timeout", o.hang_timeout_s, "Time without progress that counts as a hang (e.g. 30s, 2m)")
      ->transform(CLI::AsNumberWithUnit(seconds_units, CLI::AsNumberWithUnit::CASE_SENSITIVE, "UNIT"))
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  app.add_option("--work-dir", o.work_dir, "Where the process logs go (default: a new directory in /tmp)");
  app.add_flag("--keep-logs", o.keep_logs, "Keep the logs of a passing run");
  app.add_flag("--quiet", o.quiet, "Print only a failure");
  app.add_option("--driver", o.driver,
                 "Attack the transport this command drives (conformance/DRIVER.md, workload mode) instead of the "
                 "reference, e.g. --driver build/release/memlink-shm-driver");
  app.add_option("--age", age,
                 "Format the segment aged (SPEC C-AGE): lap-wrap starts every ring's generation 2 messages before "
                 "its wrap and the epoch at 2^64 - 1, so that the run crosses both")
      ->check(CLI::IsMember({"fresh", "lap-wrap"}))
      ->capture_default_str();
  memlink::cli::add_version_flag(app, "memlink-chaos");
}

// --driver: what the driver said in its hello, and that it claims what
// chaos needs. An exit status when it cannot be used.
std::optional<int> open_driver(Options& o) {
  if (o.crash_walk) {
    std::fprintf(stderr, "memlink-chaos: --crash-walk attacks the reference; not with --driver\n");
    return 2;
  }
  try {
    o.hello = memlink::conformance::driver::DriverProcess::start(o.driver, "probe")->hello();
  } catch (const memlink::conformance::driver::DriverFailure& e) {
    std::fprintf(stderr, "memlink-chaos: cannot start the driver: %s\n", e.what());
    return 2;
  }
  std::string missing;
  std::vector<const char*> needs = {"workload", "crash_recovery"};
  if (o.process.age != memlink::shm::SegmentAge::Fresh) needs.push_back("aged");
  for (const char* needed : needs)
    if (!o.hello.has(needed)) missing += std::string(missing.empty() ? "" : "' and '") + needed;
  if (!missing.empty()) {
    std::fprintf(stderr,
                 "memlink-chaos: the driver '%s' does not claim capability '%s', which chaos needs "
                 "(conformance/DRIVER.md D-CAPS, D-WORKLOAD)\n",
                 o.hello.name.c_str(), missing.c_str());
    return 2;
  }
  if (o.process.slot_size < kMinPayload) {
    std::fprintf(stderr, "memlink-chaos: slot size %u is below the %zu bytes of a workload message\n",
                 o.process.slot_size, kMinPayload);
    return 2;
  }
  return std::nullopt;
}

// The work directory: --work-dir, made if missing, or a new one in /tmp.
std::optional<int> make_work_dir(Options& o) {
  if (o.work_dir.empty()) {
    char tmpl[] = "/tmp/memlink-chaos.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      std::perror("memlink-chaos: mkdtemp");
      return 2;
    }
    o.work_dir = tmpl;
  } else {
    std::filesystem::create_directories(o.work_dir);
  }
  return std::nullopt;
}

}  // namespace
}  // namespace memlink::chaos

namespace memlink::chaos {

int run_main(int argc, char** argv) {
  CLI::App app{
      "memlink-chaos: kill, stop and crash the daemon and clients of one segment, then check that nothing\n"
      "acknowledged was lost, nothing corrupt or unwritten was delivered, duplicates came only from\n"
      "consumers killed mid-read, order held, a replaced daemon stopped, and nothing hung.",
      "memlink-chaos"};
  Options o;
  std::string age = "fresh";
  add_options(app, o, age);
  if (const auto status = memlink::cli::parse(app, argc, argv)) return *status;
  o.process.age = *memlink::shm::parse_segment_age(age);
  if (!o.driver.empty())
    if (const auto status = open_driver(o)) return *status;
  if (o.driver.empty() && !memlink::shm::crash_points_compiled_in()) {
    std::fprintf(stderr, "memlink-chaos: built without crash points (link memlink_shm_testing)\n");
    return 2;
  }
  if (const auto status = make_work_dir(o)) return *status;
  o.process.seed = o.seed;
  o.process.segment = "/dev/shm/memlink-chaos-" + std::to_string(::getpid());
  Runner runner(o);
  return runner.run();
}

}  // namespace memlink::chaos
