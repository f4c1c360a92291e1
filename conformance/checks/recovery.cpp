// Crash recovery, through the driver protocol (SPEC K-*): driver processes
// killed with SIGKILL (by the suite, or by themselves at a named crash
// point), stopped (SIGSTOP, or held at a named pause point), a new daemon
// taking the segment over; every acknowledged message must still be
// delivered, nothing delivered that was not written, a message delivered
// twice only if its reader died holding it.
//
// Scenarios, each its own function on a fresh segment, each run where the
// driver claims what it needs:
//   daemon-killed        K-TAKEOVER, K-STALE, T-KILLED, K-LOCK, K-PIDFILE, K-HEARTBEAT  (crash_recovery)
//   writer-killed        S-PUBLISH: acknowledged = delivered, even if the writer dies at once
//   consumer killed mid-traffic   T-KILLED, K-STALE, K-CLIENTS                (crash_recovery, wait)
//   reader-killed-mid-take   K-TWO-STEP, K-READING                           (two_step)
//   killed-clients       K-CLIENTS: killed clients do not stay counted       (observe)
//   silent-daemon        K-FENCE                                             (takeover)
//   busy-daemon          K-HEARTBEAT, K-LOCK: a daemon busy serving is alive (takeover)
//   cleanup              K-ORPHAN                                            (cleanup)
//   every crash and pause point (recovery_points.cpp)     (crash_points, pause_points)
#include <signal.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <random>
#include <thread>

#include "capabilities.hpp"
#include "memlink/shm/crash_point.hpp"
#include "rc_runner.hpp"
#include "recovery_scenarios.hpp"
#include "segment_fields.hpp"

namespace memlink::conformance {
namespace recovery {

json write_request(std::uint64_t id, int priority) {
  return {{"op", "write"}, {"priority", priority}, {"data", driver::to_hex(message_payload(id, 24))}};
}

int priority_of(const Cluster& c, std::uint64_t id) {
  return c.params().claims("priorities") ? static_cast<int>(id % 3) : 2;
}

std::set<std::uint64_t> write_all(Cluster& c, DriverProcess& client, std::uint64_t from, std::uint64_t to,
                                  bool priorities) {
  std::set<std::uint64_t> acked;
  for (std::uint64_t id = from; id < to; ++id) {
    c.must(client, write_request(id, priorities ? priority_of(c, id) : 2), ClauseId::T_KILLED);
    acked.insert(id);
  }
  c.step(client.role() + ": wrote and was acknowledged m" + std::to_string(from) + "..m" + std::to_string(to - 1));
  return acked;
}

std::map<std::uint64_t, int> read_until(Cluster& c, DriverProcess& reader, const std::set<std::uint64_t>& expect,
                                        std::chrono::milliseconds patience) {
  std::map<std::uint64_t, int> got;
  auto quiet_since = std::chrono::steady_clock::now();
  for (;;) {
    bool all = true;
    for (auto id : expect) all = all && got.count(id);
    if (all) break;
    const Reply r = reader.call({{"op", "read"}});
    if (r.ok()) {
      const auto data = driver::from_hex(r.body.value("data", std::string()));
      const auto id = data ? message_id(*data) : std::nullopt;
      if (!id)
        scenario_fail(ClauseId::V_SLOT, reader.role() + " delivered bytes no writer wrote: " +
                                            r.body.value("data", std::string()).substr(0, 80));
      ++got[*id];
      quiet_since = std::chrono::steady_clock::now();
      continue;
    }
    const auto code = r.error().code;
    if (code != shm::ErrorCode::Empty && code != shm::ErrorCode::InvalidState && code != shm::ErrorCode::CorruptSegment)
      scenario_fail(ClauseId::K_STALE, reader.role() + "'s read failed with " + r.error().message());
    if (std::chrono::steady_clock::now() - quiet_since > patience) break;
    std::this_thread::sleep_for(2ms);
  }
  std::string line = reader.role() + " read:";
  for (auto& [id, n] : got) line += " m" + std::to_string(id) + (n > 1 ? "x" + std::to_string(n) : "");
  c.step(line);
  return got;
}

void expect_delivered(const std::set<std::uint64_t>& acked, const std::map<std::uint64_t, int>& got, ClauseId clause,
                      const std::string& context, std::optional<std::uint64_t> may_repeat) {
  std::string lost;
  int n = 0;
  for (auto id : acked)
    if (!got.count(id)) {
      ++n;
      lost += " m" + std::to_string(id);
    }
  if (n > 0)
    scenario_fail(clause, context + ": " + std::to_string(n) + " acknowledged write" + (n == 1 ? " was" : "s were") +
                              " never delivered to the other process (of " + std::to_string(acked.size()) +
                              "):" + lost);
  for (auto id : acked) {
    const int times = got.at(id);
    if (times > 1 && may_repeat != id)
      scenario_fail(clause, context + ": m" + std::to_string(id) + " was delivered " + std::to_string(times) +
                                " times, though no reader died holding it");
  }
}

Reply take_over(Cluster& c, std::unique_ptr<DriverProcess>& out, const std::string& role, Placement placement,
                std::chrono::milliseconds patience) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    const Reply r = c.start_daemon(out, role, placement);
    if (r.ok()) return r;
    if (r.error().code != shm::ErrorCode::AlreadyExists || std::chrono::steady_clock::now() >= give_up)
      scenario_fail(ClauseId::K_TAKEOVER, role + " could not take the segment over: " + r.error().message());
    std::this_thread::sleep_for(20ms);
  }
}

void expect_death(Cluster& c, DriverProcess& p, const std::string& point, const json& request) {
  c.must(p, {{"op", "arm"}, {"point", point}, {"occurrence", 1}, {"action", "crash"}}, ClauseId::K_CRASH);
  p.send(request);
  if (!p.wait_exit(10s)) {
    Reply r;
    try {
      r = p.receive(1s);
    } catch (const driver::DriverFailure&) {
    }
    scenario_fail(ClauseId::K_CRASH, p.role() + " armed at " + point + " did not die there (its " +
                                         request.value("op", std::string()) + " answered " +
                                         (r.body.is_null() ? std::string("nothing") : driver::shown(r.body)) + ")");
  }
  c.step(p.role() + " died at " + point + " (" + p.describe_exit() + ")");
  c.record(ClauseId::K_CRASH);
}

void expect_stop(Cluster& c, DriverProcess& p, const std::string& point, const json& request) {
  c.must(p, {{"op", "arm"}, {"point", point}, {"occurrence", 1}, {"action", "stop"}}, ClauseId::K_CRASH);
  p.send(request);
  if (!p.wait_stopped(10s))
    scenario_fail(ClauseId::K_CRASH,
                  p.role() + " armed to stop at " + point + " did not stop there (" + p.describe_exit() + ")");
  c.step(p.role() + " stopped at " + point + " (SIGSTOP, its " + request.value("op", std::string()) + " pending)");
  c.record(ClauseId::K_CRASH);
}

Cluster::Options patient_options() {
  Cluster::Options o;
  o.heartbeat_ms = 20;
  o.heartbeat_timeout_ms = 5000;
  o.daemon_timeout_ms = 5000;
  o.stale_after_ms = 10;
  o.claim_timeout_ms = 200;
  return o;
}

namespace {

// A killed daemon: the client keeps writing while there is room (T-KILLED),
// learns the daemon is gone (K-HEARTBEAT), a second daemon is refused while
// the first lives (K-LOCK), the next one takes over with every message.
void daemon_killed(Cluster& c) {
  const bool prio = c.params().claims("priorities");
  if (!c.start_daemon(c.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  if (c.params().claims("spec_layout")) {
    std::ifstream pid_file(c.path() + ".pid");
    long pid = 0;
    pid_file >> pid;
    c.record(ClauseId::K_PIDFILE);
    if (pid != c.daemon->pid())
      scenario_fail(ClauseId::K_PIDFILE, c.path() + ".pid says " + std::to_string(pid) + ", the daemon's pid is " +
                                             std::to_string(c.daemon->pid()));
  }
  std::unique_ptr<DriverProcess> second;
  const Reply refused = c.start_daemon(second, "second daemon");
  c.give_back(std::move(second));
  c.record(ClauseId::K_LOCK);
  if (refused.ok() || refused.error().code != shm::ErrorCode::AlreadyExists)
    scenario_fail(ClauseId::K_LOCK, "a second daemon's create while the first lives answered " +
                                        (refused.ok() ? std::string("Ok") : refused.error().message()) +
                                        ", not AlreadyExists");
  DriverProcess& client = c.add_client("client");
  auto acked = write_all(c, client, 0, 6, prio);
  c.daemon->kill9();
  c.step("daemon killed (SIGKILL)");
  acked.merge(write_all(c, client, 6, 8, prio));  // T-KILLED: room left, so writes go on
  c.record(ClauseId::T_KILLED);
  if (c.params().claims("wait")) {
    const Reply w = client.call({{"op", "wait"}, {"timeout_ms", 20000}}, 30s);
    c.step("client: wait -> " + (w.ok() ? std::string("Ok") : w.error().message()));
    c.record(ClauseId::K_HEARTBEAT);
    if (w.ok() || w.error().code != shm::ErrorCode::Disconnected)
      scenario_fail(ClauseId::K_HEARTBEAT, "a client waiting on a killed daemon's segment got " +
                                               (w.ok() ? std::string("Ok") : w.error().message()) +
                                               ", not Disconnected");
  }
  std::unique_ptr<DriverProcess> next;
  const Reply taken = take_over(c, next, "daemon 2");
  c.record(ClauseId::K_TAKEOVER);
  if (taken.body.value("started", std::string("takeover")) != "takeover")
    scenario_fail(ClauseId::K_TAKEOVER, "the daemon that replaced a killed one says it started '" +
                                            taken.body.value("started", std::string()) + "', not 'takeover'");
  const auto got = read_until(c, *next, acked);
  c.record(ClauseId::K_STALE);
  expect_delivered(acked, got, ClauseId::K_TAKEOVER, "after the daemon was killed and replaced");
  c.daemon = std::move(next);
}

// A consumer killed in the middle of traffic (consumer_killed_mid_traffic):
// who consumes and who writes, what the consumer read before it died, and
// which writes were acknowledged.
struct KilledConsumerRun {
  Cluster& c;
  bool daemon_consumes;
  DriverProcess& consumer;
  DriverProcess& writer;
  std::map<std::uint64_t, int> got;  // read by the consumer's loop, guarded by got_mu
  std::mutex got_mu;
  std::thread loop;
  pid_t consumer_pid;
  std::set<std::uint64_t> acked;
};

// Acknowledged writes that neither the killed consumer nor its successor read.
struct LostWrites {
  int count = 0;
  std::string which;  // " m<id>" each
};

// Starts the daemon and a client, the consumer among them in a process of its own; returns the client.
DriverProcess& start_daemon_and_client(Cluster& c, bool daemon_consumes) {
  const Placement daemon_at = daemon_consumes ? Placement::OwnProcess : Placement::Any;
  if (!c.start_daemon(c.daemon, "daemon", daemon_at).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  return c.add_client("client", daemon_consumes ? Placement::Any : Placement::OwnProcess);
}

// The consumer's loop: wait, then read what came; ends when it is killed.
void start_consumer_loop(KilledConsumerRun& run) {
  run.loop = std::thread([&run] {
    try {
      for (;;) {
        if (!run.consumer.call({{"op", "wait"}, {"timeout_ms", 2000}}, 10s).ok()) continue;
        const Reply r = run.consumer.call({{"op", "read"}});
        const auto data = r.ok() ? driver::from_hex(r.body.value("data", std::string())) : std::nullopt;
        if (const auto id = data ? message_id(*data) : std::nullopt) {
          std::lock_guard<std::mutex> lock(run.got_mu);
          ++run.got[*id];
        }
      }
    } catch (const driver::DriverFailure&) {  // killed: its pipe closed
    }
  });
}

// Writes message `id`, which may find its ring Full but must return (T-KILLED); an acknowledged one joins `acked`.
void write_or_fail(KilledConsumerRun& run, std::uint64_t id) {
  try {
    const Reply r = run.writer.call(write_request(id, priority_of(run.c, id)));
    if (r.ok())
      run.acked.insert(id);
    else if (r.error().code != shm::ErrorCode::Full)
      scenario_fail(ClauseId::T_KILLED, run.writer.role() + "'s write failed with " + r.error().message());
  } catch (const driver::DriverFailure& e) {
    ::kill(run.consumer_pid, SIGKILL);
    if (run.loop.joinable()) run.loop.join();  // (after the kill it was joined already)
    scenario_fail(ClauseId::T_KILLED, "after " + run.consumer.role() + " was killed in the middle of traffic, " +
                                          run.writer.role() +
                                          "'s write never returned: the transport blocked it on the dead consumer (" +
                                          std::string(e.what()).substr(0, 300) + ")");
  }
}

// Writes `before_kill` messages, kills the consumer wherever it is, then writes 20 more.
void write_across_the_kill(KilledConsumerRun& run, int before_kill) {
  for (int i = 0; i < before_kill; ++i) write_or_fail(run, 800 + static_cast<std::uint64_t>(i));
  ::kill(run.consumer_pid, SIGKILL);  // wherever it is; the loop's pending call then fails and it ends
  run.loop.join();
  run.c.step(run.consumer.role() + " killed (SIGKILL) after " + std::to_string(before_kill) +
             " writes, in the middle of its loop");
  for (int i = 0; i < 20; ++i) write_or_fail(run, 900 + static_cast<std::uint64_t>(i));
  run.c.step(run.writer.role() + ": wrote 20 more after the kill; every write returned");
  run.c.record(ClauseId::T_KILLED);
}

// The killed consumer's successor: a daemon that takes the segment over, or a new client, connected.
std::unique_ptr<DriverProcess> start_successor(Cluster& c, bool daemon_consumes) {
  std::unique_ptr<DriverProcess> next;
  if (daemon_consumes) {
    take_over(c, next, "daemon 2");
  } else {
    next = c.start_owned("client 2");
    c.must(*next, c.connect_request(), ClauseId::T_ENDPOINTS);
  }
  return next;
}

// The successor reads the acknowledged writes the killed consumer had not read; returns those it never got.
LostWrites read_the_rest(KilledConsumerRun& run, DriverProcess& next) {
  std::set<std::uint64_t> rest;
  for (auto id : run.acked)
    if (!run.got.count(id)) rest.insert(id);
  std::map<std::uint64_t, int> later;
  try {
    later = read_until(run.c, next, rest, 1s);
  } catch (const driver::DriverFailure& e) {
    scenario_fail(ClauseId::K_STALE, "after " + run.consumer.role() +
                                         " was killed in the middle of traffic, its successor's read never "
                                         "returned (" +
                                         std::string(e.what()).substr(0, 300) + ")");
  }
  LostWrites lost;
  for (auto id : rest)
    if (!later.count(id)) {
      ++lost.count;
      lost.which += " m" + std::to_string(id);
    }
  return lost;
}

// K-CLIENTS: the killed client does not stay counted once another connects.
void expect_killed_client_uncounted(Cluster& c, bool daemon_consumes) {
  if (!daemon_consumes && c.params().claims("observe")) {
    c.record(ClauseId::K_CLIENTS);
    const Reply v = c.must(*c.daemon, {{"op", "observe"}}, ClauseId::K_CLIENTS);
    const auto count = driver::integer_or<unsigned>(v.body.at("view"), "client_count", 0u);
    if (count != 1)
      scenario_fail(ClauseId::K_CLIENTS, "a client was killed with kill -9 and another connected: client_count is " +
                                             std::to_string(count) + ", not 1");
  }
}

// A consumer killed in the middle of traffic, wherever it is — asleep in
// wait, woken, inside a read — while another process keeps writing. The
// writes must keep returning (T-KILLED: a writer is never blocked by a dead
// consumer), and the next consumer must get every acknowledged message but
// the one the dead consumer may have held inside a read (SPEC K-TWO-STEP:
// read is take + finish in one call; that message is lost to its process).
// A transport whose sleepers leave shared state behind them (a
// process-shared condition variable whose signal waits for a dead waiter,
// a mutex held by the dead) blocks the writer here.
void consumer_killed_mid_traffic(Cluster& c, bool daemon_consumes, std::uint64_t seed) {
  DriverProcess& client = start_daemon_and_client(c, daemon_consumes);
  DriverProcess& consumer = daemon_consumes ? *c.daemon : client;
  DriverProcess& writer = daemon_consumes ? client : *c.daemon;
  std::mt19937_64 rng(seed);
  KilledConsumerRun run{c, daemon_consumes, consumer, writer, {}, {}, {}, 0, {}};
  start_consumer_loop(run);
  // Killed by pid, not kill9(): the loop's thread is inside a call on it.
  run.consumer_pid = consumer.pid();
  const int before_kill = 1 + static_cast<int>(rng() % 40);
  write_across_the_kill(run, before_kill);
  std::unique_ptr<DriverProcess> next = start_successor(c, daemon_consumes);
  const LostWrites lost = read_the_rest(run, *next);
  expect_killed_client_uncounted(c, daemon_consumes);
  c.record(ClauseId::K_STALE);
  if (lost.count > 1)
    scenario_fail(ClauseId::K_STALE,
                  std::to_string(lost.count) + " acknowledged writes were never delivered to the other process after " +
                      consumer.role() +
                      " was killed in the middle of traffic (at most the one inside its read may be):" + lost.which);
  if (daemon_consumes)
    c.daemon = std::move(next);
  else
    c.give_back(std::move(next));
}

// A writer killed right after its writes were acknowledged: all delivered.
void writer_killed(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& w = c.add_client("writer", Placement::OwnProcess);
  const auto acked = write_all(c, w, 100, 105, c.params().claims("priorities"));
  w.kill9();
  c.step("writer killed (SIGKILL)");
  const auto got = read_until(c, *c.daemon, acked);
  c.record(ClauseId::S_PUBLISH);
  expect_delivered(acked, got, ClauseId::S_PUBLISH, "after the writer was killed");
}

// A client killed between take and finish: the next reader gets it again.
void reader_killed_mid_take(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& r1 = c.add_client("reader 1", Placement::OwnProcess);
  const auto acked = write_all(c, *c.daemon, 200, 203, c.params().claims("priorities"));
  const Reply t = c.must(r1, {{"op", "take"}}, ClauseId::K_TWO_STEP);
  const auto data = driver::from_hex(t.body.value("data", std::string()));
  const auto held = data ? message_id(*data) : std::nullopt;
  if (!held) scenario_fail(ClauseId::V_SLOT, "take delivered bytes no writer wrote");
  c.step("reader 1: take -> m" + std::to_string(*held) + "; killed before finish");
  r1.kill9();
  DriverProcess& r2 = c.add_client("reader 2");
  const auto got = read_until(c, r2, acked);
  c.record(ClauseId::K_TWO_STEP);
  c.record(ClauseId::K_READING);
  expect_delivered(acked, got, ClauseId::K_READING, "after a reader died between take and finish", held);
}

// K-CLIENTS: two clients killed with kill -9 (one idle, one in the middle
// of its writes) must not stay counted: the next client counts itself and
// the live ones only.
void killed_clients(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& idle = c.add_client("idle client", Placement::OwnProcess);
  DriverProcess& busy = c.add_client("busy client", Placement::OwnProcess);
  const pid_t busy_pid = busy.pid();
  std::thread writes([&busy] {
    try {
      for (std::uint64_t i = 0;; ++i) (void)busy.call(write_request(1100 + i, 2));
    } catch (const driver::DriverFailure&) {  // killed
    }
  });
  std::this_thread::sleep_for(5ms);
  ::kill(busy_pid, SIGKILL);  // by pid: the writing thread is inside a call on it
  writes.join();
  idle.kill9();
  c.step("an idle client and a busy one killed (SIGKILL)");
  DriverProcess& late = c.add_client("late client");
  (void)late;
  c.record(ClauseId::K_CLIENTS);
  const Reply v = c.must(*c.daemon, {{"op", "observe"}}, ClauseId::K_CLIENTS);
  const auto count = driver::integer_or<unsigned>(v.body.at("view"), "client_count", 0u);
  if (count != 1)
    scenario_fail(ClauseId::K_CLIENTS, "two clients were killed with kill -9 and one connected: client_count is " +
                                           std::to_string(count) + ", not 1 (a killed client stays counted forever)");
}

// K-FENCE: a fenced daemon changes nothing of its successor's segment.
// While the successor is stopped (SIGSTOP) and the clients are idle nobody
// else may write it, so every byte that moves while the fenced daemon runs
// (idle, its heartbeat due fifteen times; then asked to write, read and
// shut down) is a stray write. SPEC lets one heartbeat stamp already past its
// epoch check land late: heartbeat_ns may move once.
class FenceWatch {
 public:
  FenceWatch(Cluster& c, DriverProcess& successor, bool on) : c_(c), successor_(successor), on_(on) {
    if (!on_) return;
    successor_.stop();
    // kill(2) only sends the signal: the image must wait until every thread
    // of the successor has stopped, or a stamp of its own lands after it.
    if (!successor_.wait_stopped(10s))
      scenario_fail(ClauseId::K_FENCE, "the new daemon (pid " + std::to_string(successor_.pid()) +
                                           ") did not stop within 10 s of SIGSTOP");
    c_.step("new daemon stopped (SIGSTOP), so that the fenced one is the only writer left");
    take("with the successor stopped");
  }
  ~FenceWatch() {
    if (on_) successor_.resume();
  }
  FenceWatch(const FenceWatch&) = delete;
  FenceWatch& operator=(const FenceWatch&) = delete;

  // The fenced daemon, resumed, left alone for fifteen heartbeat intervals,
  // imaged every five: a daemon that stamps on moves heartbeat_ns between
  // every two images, the one late stamp SPEC allows between two only.
  void idle() {
    if (!on_) return;
    for (int i = 1; i <= 3; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * c_.options().heartbeat_ms));
      take("idle for " + std::to_string(5 * i) + " heartbeat intervals");
    }
  }
  // Then asked to write, read and shut down; the successor resumes.
  void busy_then_check() {
    if (!on_) return;
    (void)c_.daemon->call({{"op", "write"}, {"priority", 2}, {"data", "66656e636564"}}, 20s);
    (void)c_.daemon->call({{"op", "read"}}, 20s);
    (void)c_.daemon->call({{"op", "shutdown"}}, 20s);
    std::this_thread::sleep_for(std::chrono::milliseconds(10 * c_.options().heartbeat_ms));
    take("after its write, read and shutdown");
    on_ = false;
    successor_.resume();
    c_.step("new daemon resumed (SIGCONT)");
    c_.record(ClauseId::K_FENCE);
    std::string stray;
    int stamps = 0;
    for (std::size_t i = 1; i < images_.size(); ++i)
      for (const auto& f : changed_fields(images_[i - 1], images_[i]))
        if (f != "control.heartbeat_ns" || ++stamps > 1)
          stray += (stray.empty() ? "" : "; ") + f + " (between the image " + labels_[i - 1] + " and the one " +
                   labels_[i] + ")";
    if (!stray.empty())
      scenario_fail(ClauseId::K_FENCE,
                    "a replaced daemon, fenced, wrote its successor's segment while the "
                    "successor was stopped and the clients idle (left alone, then asked to "
                    "write, read and shut down): " +
                        stray + (stamps > 1 ? " (heartbeat_ns more than once)" : ""));
  }

 private:
  void take(std::string label) {
    images_.push_back(read_segment_file(c_.path()));
    labels_.push_back(std::move(label));
  }

  Cluster& c_;
  DriverProcess& successor_;
  bool on_;
  std::vector<std::vector<std::byte>> images_;
  std::vector<std::string> labels_;
};

// "daemon 2", which must take the segment over from the stopped (SIGSTOP)
// c.daemon; if it cannot, c.daemon is resumed before the failure goes up.
std::unique_ptr<DriverProcess> replace_stopped_daemon(Cluster& c, Placement placement) {
  std::unique_ptr<DriverProcess> next;
  try {
    take_over(c, next, "daemon 2", placement, 20s);
  } catch (const ScenarioFailure&) {
    c.daemon->resume();
    throw;
  }
  return next;
}

// A daemon that stops stamping (SIGSTOP) is replaced and, resumed, fenced.
void silent_daemon(Cluster& c) {
  if (!c.start_daemon(c.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  const auto acked = write_all(c, client, 300, 304, c.params().claims("priorities"));
  c.daemon->stop();
  c.step("daemon stopped (SIGSTOP)");
  if (c.params().claims("wait")) {
    // K-HEARTBEAT: a client calls a daemon that stopped stamping
    // unresponsive once its heartbeat is daemon_timeout_ms old.
    const Reply w = client.call({{"op", "wait"}, {"timeout_ms", 20000}}, 30s);
    c.step("client: wait -> " + (w.ok() ? std::string("Ok") : w.error().message()));
    c.record(ClauseId::K_HEARTBEAT);
    if (w.ok() || w.error().code != shm::ErrorCode::Disconnected) {
      c.daemon->resume();
      scenario_fail(ClauseId::K_HEARTBEAT, "a client waiting on a daemon stopped with SIGSTOP got " +
                                               (w.ok() ? std::string("Ok") : w.error().message()) +
                                               " after 20 s, not Disconnected: "
                                               "its daemon_timeout_ms is " +
                                               std::to_string(c.options().daemon_timeout_ms));
    }
  }
  // Its own process: FenceWatch stops it.
  std::unique_ptr<DriverProcess> next = replace_stopped_daemon(c, Placement::OwnProcess);
  FenceWatch watch(c, *next, c.params().claims("spec_layout"));
  c.daemon->resume();
  c.step("old daemon resumed (SIGCONT)");
  watch.idle();
  const Reply old = c.daemon->call({{"op", "read"}}, 20s);
  c.step("old daemon: read -> " + (old.ok() ? std::string("a message") : old.error().message()));
  c.record(ClauseId::K_FENCE);
  if (old.ok() || old.error().code != shm::ErrorCode::Disconnected)
    scenario_fail(ClauseId::K_FENCE, "a replaced daemon, resumed, read " +
                                         (old.ok() ? "a message" : "and got " + old.error().message()) +
                                         " instead of Disconnected");
  watch.busy_then_check();
  const auto got = read_until(c, *next, acked);
  expect_delivered(acked, got, ClauseId::K_TAKEOVER, "after a silent daemon was replaced");
  c.daemon = std::move(next);
}

// A second client's read of d2c: refused while the first client process
// holds the reader's place (R-ROLES), whoever serves the segment.
void expect_refused_reader(Cluster& c, DriverProcess& second, pid_t holder, const std::string& when) {
  const Reply r = second.call({{"op", "read"}});
  c.step(second.role() + ": read " + when + " -> " + (r.ok() ? std::string("a message") : r.error().message()));
  c.record(ClauseId::R_ROLES);
  if (r.ok() || r.error().code != shm::ErrorCode::InvalidState)
    scenario_fail(ClauseId::R_ROLES, "a second client process read the daemon-to-client rings " + when + " and got " +
                                         (r.ok() ? std::string("a message") : r.error().message()) +
                                         ", not InvalidState, while client pid " + std::to_string(holder) +
                                         " still held the reader's place: two consumers on one ring");
}

// A takeover while a live client process holds the d2c reader's place: the
// new daemon must leave it to that client (K-TAKEOVER releases only a dead
// holder's), so a second client process is still refused and the first
// goes on reading what the new daemon writes. In-process clients share one
// pid and could not show a second consumer: both clients are processes.
void takeover_keeps_the_reader(Cluster& c) {
  if (!c.start_daemon(c.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& reader = c.add_client("reader", Placement::OwnProcess);
  DriverProcess& second = c.add_client("second client", Placement::OwnProcess);
  const auto before = write_all(c, *c.daemon, 1500, 1502, c.params().claims("priorities"));
  expect_delivered(before, read_until(c, reader, before), ClauseId::S_PUBLISH, "before the takeover");
  expect_refused_reader(c, second, reader.pid(), "before the takeover");
  c.daemon->stop();
  c.step("daemon stopped (SIGSTOP)");
  std::unique_ptr<DriverProcess> next = replace_stopped_daemon(c, Placement::Any);
  c.daemon->kill9();
  c.step("old daemon killed (SIGKILL)");
  c.daemon = std::move(next);
  expect_refused_reader(c, second, reader.pid(), "after the takeover");
  const auto after = write_all(c, *c.daemon, 1502, 1505, c.params().claims("priorities"));
  c.record(ClauseId::K_TAKEOVER);
  expect_delivered(after, read_until(c, reader, after), ClauseId::K_TAKEOVER,
                   "to the client that held the reader's place through a takeover");
}

// A daemon kept busy for three heartbeat timeouts (a client writes, blocking
// on a full ring, while the daemon reads): it is alive, so its clients stay
// connected and a starter is refused (K-HEARTBEAT, K-LOCK).
void busy_daemon(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  std::atomic<bool> stop{false};
  std::thread reads([&] {
    try {
      while (!stop.load()) (void)c.daemon->call({{"op", "read"}});
    } catch (const driver::DriverFailure&) {
    }
  });
  const auto until = std::chrono::steady_clock::now() + 3 * std::chrono::milliseconds(c.options().heartbeat_timeout_ms);
  std::string disconnected, started;
  int sent = 0;
  while (std::chrono::steady_clock::now() < until && disconnected.empty()) {
    const Reply w = client.call(write_request(1200 + static_cast<std::uint64_t>(sent), 2));
    if (!w.ok() && w.error().code == shm::ErrorCode::Disconnected) disconnected = w.error().message();
    if (w.ok() && ++sent == 20) {
      std::unique_ptr<DriverProcess> second;
      const Reply r = c.start_daemon(second, "second daemon");
      c.give_back(std::move(second));
      if (r.ok() || r.error().code != shm::ErrorCode::AlreadyExists)
        started = r.ok() ? "it started (took over a live daemon)" : r.error().message();
    }
    std::this_thread::sleep_for(2ms);
  }
  stop.store(true);
  reads.join();
  c.step("client wrote " + std::to_string(sent) + " messages over three heartbeat timeouts while the daemon read");
  c.record(ClauseId::K_HEARTBEAT);
  c.record(ClauseId::K_LOCK);
  if (!disconnected.empty())
    scenario_fail(ClauseId::K_HEARTBEAT,
                  "a client called a daemon that was busy serving it unresponsive: " + disconnected);
  if (!started.empty())
    scenario_fail(ClauseId::K_LOCK, "a second daemon's create while a busy daemon served answered: " + started);
}

// cleanup removes what a dead daemon left; refuses a live one's.
void cleanup(Cluster& c) {
  if (!c.start_daemon(c.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& tool = c.start("cleanup");
  const Reply live = tool.call({{"op", "cleanup"}, {"segment", c.path()}});
  c.record(ClauseId::K_ORPHAN);
  if (live.ok() || live.error().code != shm::ErrorCode::AlreadyExists)
    scenario_fail(ClauseId::K_ORPHAN,
                  "cleanup of a live daemon's segment answered " +
                      (live.ok() ? std::string("Ok (it removed a live segment)") : live.error().message()) +
                      ", not AlreadyExists");
  c.daemon->kill9();
  c.step("daemon killed; cleanup");
  c.must(tool, {{"op", "cleanup"}, {"segment", c.path()}}, ClauseId::K_ORPHAN);
  const Reply again = tool.call({{"op", "cleanup"}, {"segment", c.path()}});
  if (again.ok() || again.error().code != shm::ErrorCode::NotFound)
    scenario_fail(ClauseId::K_ORPHAN, "a second cleanup answered " +
                                          (again.ok() ? std::string("Ok") : again.error().message()) +
                                          ", not NotFound: the first left something behind");
  DriverProcess& late = c.start("late client");
  const Reply r = late.call(c.connect_request());
  if (r.ok() || r.error().code != shm::ErrorCode::NotFound)
    scenario_fail(ClauseId::K_ORPHAN, "after cleanup a connect answered " +
                                          (r.ok() ? std::string("Ok") : r.error().message()) + ", not NotFound");
}

// Before any crash: a message written is delivered. A transport that never
// delivers fails here as S-PUBLISH, not as a takeover that lost messages.
void baseline(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  expect_delivery(c, c.add_client("client"), *c.daemon);
}

}  // namespace

std::vector<Scenario> all_scenarios(std::uint64_t seed_base, const std::vector<std::string>& points) {
  // Where the subject is a daemon that stops stamping, its heartbeat goes
  // stale soon; elsewhere a live daemon must never look dead, however
  // loaded the machine (liveness by pid needs no timeout).
  Cluster::Options stale_soon = patient_options();
  stale_soon.heartbeat_timeout_ms = stale_soon.daemon_timeout_ms = 300;
  Cluster::Options busy = patient_options();
  busy.heartbeat_timeout_ms = busy.daemon_timeout_ms = 1000;
  std::vector<Scenario> out{{"delivery, before any crash", baseline, {}},
                            {"daemon-killed", daemon_killed, {"crash_recovery"}},
                            {"writer-killed", writer_killed, {}}};
  for (int k = 0; k < 4; ++k) {
    const std::uint64_t seed = seed_base * 31 + static_cast<std::uint64_t>(k);
    out.push_back({"daemon-killed-mid-traffic",
                   [seed](Cluster& c) { consumer_killed_mid_traffic(c, true, seed); },
                   {"crash_recovery", "wait"}});
    out.push_back({"reader-killed-mid-traffic",
                   [seed](Cluster& c) { consumer_killed_mid_traffic(c, false, seed); },
                   {"crash_recovery", "wait", "daemon_writes"}});
  }
  out.push_back({"reader-killed-mid-take", reader_killed_mid_take, {"two_step", "daemon_writes"}});
  out.push_back({"killed-clients", killed_clients, {"observe"}});
  out.push_back({"silent-daemon", silent_daemon, {"takeover"}, stale_soon});
  out.push_back({"takeover-keeps-the-reader", takeover_keeps_the_reader, {"takeover", "daemon_writes"}, stale_soon});
  out.push_back({"busy-daemon", busy_daemon, {"takeover"}, busy});
  out.push_back({"cleanup", cleanup, {"cleanup"}});
  // C-AGE: the same from a segment aged to its wraps (epoch 2^64 - 1, every
  // ring 2 messages before its laps' counter wraps): the takeover wraps the
  // epoch, the traffic the rings' laps.
  Cluster::Options aged = patient_options(), aged_stale_soon = stale_soon;
  aged.age = aged_stale_soon.age = shm::SegmentAge::LapWrap;
  out.push_back({"daemon-killed, aged", daemon_killed, {"crash_recovery", "aged"}, aged});
  out.push_back({"silent-daemon, aged", silent_daemon, {"takeover", "aged"}, aged_stale_soon});
  for (auto& s : point_scenarios(points)) out.push_back(std::move(s));
  return out;
}

namespace {

std::vector<Scenario> scenarios_for(const Params& params) {
  std::vector<Scenario> out;
  const auto launcher = launcher_for(params);
  const auto points = launcher ? launcher->hello().crash_points : std::vector<std::string>{};
  for (auto& s : all_scenarios(params.seed, points)) {
    bool claimed = true;
    for (const auto& cap : s.needs) claimed = claimed && params.claims(cap);
    if (claimed) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace
}  // namespace recovery

Gates recovery_gates() {
  Gates out;
  std::set<std::string> seen;
  const std::vector<std::string> points(shm::kCrashPoints.begin(), shm::kCrashPoints.end());
  for (const auto& s : recovery::all_scenarios(0, points)) {
    // "crash at write.after-claim" -> "crash at every write.* point"
    std::string name = s.name;
    if (const auto at = name.find(" at "); at != std::string::npos)
      name = name.substr(0, at) + " at every " + name.substr(at + 4, name.find('.', at) - at - 4) + ".* point it names";
    if (seen.insert(name).second) out.push_back({name, s.needs});
  }
  return out;
}

CheckResult run_recovery(const Params& params) {
  using namespace recovery;
  CheckResult result;
  result.name = "recovery";
  const std::vector<Scenario> scenarios = scenarios_for(params);
  const int rounds = depth_budget(params, 1, 2, 10);
  std::set<std::string> unavailable;
  for (int round = 0; round < rounds; ++round)
    for (const auto& s : scenarios) {
      Cluster c(params, "recovery", s.options);
      try {
        s.run(c);
        if (s.options.age != shm::SegmentAge::Fresh) c.record(ClauseId::C_AGE);
        ++result.cases;
      } catch (const ScenarioUnavailable& u) {
        unavailable.insert(s.name + " (" + u.why + ")");
      } catch (const ScenarioFailure& f) {
        result.failure = failure_of(f, c.steps(), driver_replay(params, "recovery"));
        result.failure->description += " (scenario '" + s.name + "', round " + std::to_string(round) + ")";
        return result;
      }
    }
  result.notes = std::to_string(rounds) + " rounds of " + std::to_string(scenarios.size()) +
                 " scenarios (kill -9 of daemon, writer and reader processes" +
                 (params.claims("takeover") ? ", a silent daemon replaced and fenced, a busy one kept" : "") +
                 (params.claims("crash_points") ? ", every crash point the driver names" : "") +
                 (params.claims("pause_points") ? ", every pause point" : "") + ")";
  for (const auto& u : unavailable) result.notes += "; not run: " + u;
  return result;
}

}  // namespace memlink::conformance
