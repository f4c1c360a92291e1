// Recovery through a driver (DRIVER.md, capability "crash_recovery"): driver
// processes killed with SIGKILL (by the suite, or by themselves at a named
// crash point), a new daemon process taking the segment over; every
// acknowledged message must still be delivered, nothing delivered that was
// not written, a message delivered twice only if its reader died holding it.
//
// Scenarios, each its own function, each on a fresh segment:
//   daemon-killed       K-TAKEOVER, K-STALE, T-KILLED, K-LOCK, K-PIDFILE, K-HEARTBEAT
//   writer-killed       S-PUBLISH (acknowledged = delivered, even if the writer dies at once)
//   consumer killed mid-traffic   T-KILLED, K-STALE (writes go on; nothing but its one read lost)
//   reader-killed-mid-take   K-TWO-STEP, K-READING                 (two_step)
//   silent-daemon       K-FENCE                                     (takeover)
//   cleanup             K-ORPHAN                                    (cleanup)
//   every crash point   K-CRASH, K-WRITING, K-CLAIMED, K-READING, K-IDEMPOTENT (crash_points)
#include <signal.h>

#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <mutex>
#include <set>
#include <thread>

#include "driver_cluster.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {
namespace {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;
using namespace std::chrono_literals;

json write_request(std::uint64_t id, int priority) {
  return {{"op", "write"}, {"priority", priority}, {"data", driver::to_hex(message_payload(id, 24))}};
}

// Writes ids [from, to) from `client`, all of which must be acknowledged.
std::set<std::uint64_t> write_all(Cluster& c, DriverProcess& client, std::uint64_t from, std::uint64_t to, bool priorities) {
  std::set<std::uint64_t> acked;
  for (std::uint64_t id = from; id < to; ++id) {
    c.must(client, write_request(id, priorities ? static_cast<int>(id % 3) : 2), "T-KILLED");
    acked.insert(id);
  }
  c.step(client.role() + ": wrote and was acknowledged m" + std::to_string(from) + "..m" + std::to_string(to - 1));
  return acked;
}

// Reads through `reader` until it has seen every id of `expect` or `patience`
// passes with nothing new (recovery waits out stale_after and claim_timeout).
// Returns how often each id was delivered.
std::map<std::uint64_t, int> read_until(Cluster& c, DriverProcess& reader, const std::set<std::uint64_t>& expect,
                                        std::chrono::milliseconds patience = 3s) {
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
      if (!id) scenario_fail("V-SLOT", reader.role() + " delivered bytes no writer wrote: " + r.body.value("data", std::string()));
      ++got[*id];
      quiet_since = std::chrono::steady_clock::now();
      continue;
    }
    const auto code = r.error().code;
    if (code != shm::ErrorCode::Empty && code != shm::ErrorCode::InvalidState && code != shm::ErrorCode::CorruptSegment)
      scenario_fail("K-STALE", reader.role() + "'s read failed with " + r.error().message());
    if (std::chrono::steady_clock::now() - quiet_since > patience) break;
    std::this_thread::sleep_for(2ms);
  }
  std::string line = reader.role() + " read:";
  for (auto& [id, n] : got) line += " m" + std::to_string(id) + (n > 1 ? "x" + std::to_string(n) : "");
  c.step(line);
  return got;
}

// Every acknowledged message delivered (exactly once unless `may_repeat`).
void expect_delivered(const std::set<std::uint64_t>& acked, const std::map<std::uint64_t, int>& got,
                      const std::string& clause, const std::string& context, std::optional<std::uint64_t> may_repeat = {}) {
  for (auto id : acked) {
    const auto it = got.find(id);
    if (it == got.end())
      scenario_fail(clause, context + ": m" + std::to_string(id) + " was acknowledged and never delivered (lost)");
    if (it->second > 1 && may_repeat != id)
      scenario_fail(clause, context + ": m" + std::to_string(id) + " was delivered " + std::to_string(it->second) +
                                " times, though no reader died holding it");
  }
}

Reply new_daemon(Cluster& c, std::unique_ptr<DriverProcess>& out, const std::string& role) {
  const Reply r = c.start_daemon(out, role);
  if (!r.ok()) scenario_fail("K-TAKEOVER", role + " could not take the segment over: " + r.error().message());
  return r;
}

// A killed daemon: the client keeps writing while there is room (T-KILLED),
// learns the daemon is gone (K-HEARTBEAT), a second daemon is refused while
// the first lives (K-LOCK), the next one takes over with every message.
void daemon_killed(Cluster& c) {
  const bool prio = c.params().claims("priorities");
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
  if (c.params().claims("spec_layout")) {
    std::ifstream pid_file(c.path() + ".pid");
    long pid = 0;
    pid_file >> pid;
    record_clause("K-PIDFILE");
    if (pid != c.daemon->pid())
      scenario_fail("K-PIDFILE", c.path() + ".pid says " + std::to_string(pid) + ", the daemon's pid is " + std::to_string(c.daemon->pid()));
  }
  std::unique_ptr<DriverProcess> second;
  const Reply refused = c.start_daemon(second, "second daemon");
  record_clause("K-LOCK");
  if (refused.ok() || refused.error().code != shm::ErrorCode::AlreadyExists)
    scenario_fail("K-LOCK", "a second daemon's create while the first lives answered " +
                                (refused.ok() ? std::string("Ok") : refused.error().message()) + ", not AlreadyExists");
  second.reset();
  DriverProcess& client = c.add_client("client");
  auto acked = write_all(c, client, 0, 6, prio);
  c.daemon->kill9();
  c.step("daemon killed (SIGKILL)");
  acked.merge(write_all(c, client, 6, 8, prio));  // T-KILLED: room left, so writes go on
  record_clause("T-KILLED");
  if (c.params().claims("wait")) {
    const Reply w = client.call({{"op", "wait"}, {"timeout_ms", 20000}}, 30s);
    c.step("client: wait -> " + (w.ok() ? std::string("Ok") : w.error().message()));
    record_clause("K-HEARTBEAT");
    if (w.ok() || w.error().code != shm::ErrorCode::Disconnected)
      scenario_fail("K-HEARTBEAT", "a client waiting on a killed daemon's segment got " +
                                       (w.ok() ? std::string("Ok") : w.error().message()) + ", not Disconnected");
  }
  std::unique_ptr<DriverProcess> next;
  const Reply taken = new_daemon(c, next, "daemon 2");
  record_clause("K-TAKEOVER");
  if (taken.body.value("started", std::string()) != "takeover")
    scenario_fail("K-TAKEOVER", "the daemon that replaced a killed one says it started '" +
                                    taken.body.value("started", std::string()) + "', not 'takeover'");
  const auto got = read_until(c, *next, acked);
  record_clause("K-STALE");
  expect_delivered(acked, got, "K-TAKEOVER", "after the daemon was killed and replaced");
  c.daemon = std::move(next);
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
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  DriverProcess& consumer = daemon_consumes ? *c.daemon : client;
  DriverProcess& writer = daemon_consumes ? client : *c.daemon;
  std::mt19937_64 rng(seed);
  std::map<std::uint64_t, int> got;
  std::mutex got_mu;
  // The consumer's loop: wait, then read what came; ends when it is killed.
  std::thread loop([&] {
    try {
      for (;;) {
        if (!consumer.call({{"op", "wait"}, {"timeout_ms", 2000}}, 10s).ok()) continue;
        const Reply r = consumer.call({{"op", "read"}});
        const auto data = r.ok() ? driver::from_hex(r.body.value("data", std::string())) : std::nullopt;
        if (const auto id = data ? message_id(*data) : std::nullopt) {
          std::lock_guard<std::mutex> lock(got_mu);
          ++got[*id];
        }
      }
    } catch (const driver::DriverFailure&) {  // killed: its pipe closed
    }
  });
  const pid_t consumer_pid = consumer.pid();
  const int before_kill = 1 + static_cast<int>(rng() % 40);
  std::set<std::uint64_t> acked;
  auto write = [&](std::uint64_t id) {
    try {
      const Reply r = writer.call(write_request(id, c.params().claims("priorities") ? static_cast<int>(id % 3) : 2));
      if (r.ok()) acked.insert(id);
      else if (r.error().code != shm::ErrorCode::Full)
        scenario_fail("T-KILLED", writer.role() + "'s write failed with " + r.error().message());
    } catch (const driver::DriverFailure& e) {
      ::kill(consumer_pid, SIGKILL);
      loop.join();
      scenario_fail("T-KILLED", "after " + consumer.role() + " was killed in the middle of traffic, " + writer.role() +
                                    "'s write never returned: the transport blocked it on the dead consumer (" +
                                    std::string(e.what()).substr(0, 300) + ")");
    }
  };
  for (int i = 0; i < before_kill; ++i) write(800 + static_cast<std::uint64_t>(i));
  ::kill(consumer_pid, SIGKILL);  // wherever it is; the loop's pending call then fails and it ends
  loop.join();
  c.step(consumer.role() + " killed (SIGKILL) after " + std::to_string(before_kill) + " writes, in the middle of its loop");
  for (int i = 0; i < 20; ++i) write(900 + static_cast<std::uint64_t>(i));
  c.step(writer.role() + ": wrote 20 more after the kill; every write returned");
  record_clause("T-KILLED");
  std::unique_ptr<DriverProcess> next;
  if (daemon_consumes) {
    new_daemon(c, next, "daemon 2");
  } else {
    next = DriverProcess::start(c.params().driver, "client 2");
    c.must(*next, c.connect_request(), "T-ENDPOINTS");
  }
  std::set<std::uint64_t> rest;
  for (auto id : acked)
    if (!got.count(id)) rest.insert(id);
  std::map<std::uint64_t, int> later;
  try {
    later = read_until(c, *next, rest, 1s);
  } catch (const driver::DriverFailure& e) {
    scenario_fail("K-STALE", "after " + consumer.role() + " was killed in the middle of traffic, its successor's read never "
                             "returned (" + std::string(e.what()).substr(0, 300) + ")");
  }
  int lost = 0;
  std::string which;
  for (auto id : rest)
    if (!later.count(id)) {
      ++lost;
      which += " m" + std::to_string(id);
    }
  // K-CLIENTS: the killed client does not stay counted once another connects.
  if (!daemon_consumes && c.params().claims("observe")) {
    record_clause("K-CLIENTS");
    const Reply v = c.must(*c.daemon, {{"op", "observe"}}, "K-CLIENTS");
    const auto count = v.body.at("view").value("client_count", 0u);
    if (count != 1)
      scenario_fail("K-CLIENTS", "a client was killed with kill -9 and another connected: client_count is " +
                                     std::to_string(count) + ", not 1");
  }
  record_clause("K-STALE");
  if (lost > 1)
    scenario_fail("K-STALE", std::to_string(lost) + " acknowledged messages were never delivered after " + consumer.role() +
                                 " was killed in the middle of traffic (at most the one inside its read may be):" + which);
  if (daemon_consumes) c.daemon = std::move(next);
}

// A writer killed right after its writes were acknowledged: all delivered.
void writer_killed(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
  DriverProcess& w = c.add_client("writer");
  const auto acked = write_all(c, w, 100, 105, c.params().claims("priorities"));
  w.kill9();
  c.step("writer killed (SIGKILL)");
  const auto got = read_until(c, *c.daemon, acked);
  record_clause("S-PUBLISH");
  expect_delivered(acked, got, "S-PUBLISH", "after the writer was killed");
}

// A client killed between take and finish: the next reader gets it again.
void reader_killed_mid_take(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
  DriverProcess& r1 = c.add_client("reader 1");
  const auto acked = write_all(c, *c.daemon, 200, 203, c.params().claims("priorities"));
  const Reply t = c.must(r1, {{"op", "take"}}, "K-TWO-STEP");
  const auto data = driver::from_hex(t.body.value("data", std::string()));
  const auto held = data ? message_id(*data) : std::nullopt;
  if (!held) scenario_fail("V-SLOT", "take delivered bytes no writer wrote");
  c.step("reader 1: take -> m" + std::to_string(*held) + "; killed before finish");
  r1.kill9();
  DriverProcess& r2 = c.add_client("reader 2");
  const auto got = read_until(c, r2, acked);
  record_clause("K-TWO-STEP");
  record_clause("K-READING");
  expect_delivered(acked, got, "K-READING", "after a reader died between take and finish", held);
}

// A daemon that stops stamping (SIGSTOP) is replaced and, resumed, fenced.
void silent_daemon(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  const auto acked = write_all(c, client, 300, 304, c.params().claims("priorities"));
  c.daemon->stop();
  c.step("daemon stopped (SIGSTOP)");
  std::unique_ptr<DriverProcess> next;
  Reply taken;
  for (int i = 0;; ++i) {  // the successor may first see a heartbeat that is not yet stale
    taken = c.start_daemon(next, "daemon 2");
    if (taken.ok() || taken.error().code != shm::ErrorCode::AlreadyExists || i == 400) break;  // a 20 s hang guard
    std::this_thread::sleep_for(50ms);
  }
  if (!taken.ok()) {
    c.daemon->resume();
    scenario_fail("K-TAKEOVER", "a silent daemon was not replaced within 20 s: " + taken.error().message());
  }
  c.daemon->resume();
  c.step("old daemon resumed (SIGCONT)");
  const Reply old = c.daemon->call({{"op", "read"}}, 20s);
  c.step("old daemon: read -> " + (old.ok() ? std::string("a message") : old.error().message()));
  record_clause("K-FENCE");
  if (old.ok() || old.error().code != shm::ErrorCode::Disconnected)
    scenario_fail("K-FENCE", "a replaced daemon, resumed, read " +
                                 (old.ok() ? "a message" : "and got " + old.error().message()) + " instead of Disconnected");
  const auto got = read_until(c, *next, acked);
  expect_delivered(acked, got, "K-TAKEOVER", "after a silent daemon was replaced");
  c.daemon = std::move(next);
}

// cleanup removes what a dead daemon left; refuses a live one's.
void cleanup(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
  auto tool = DriverProcess::start(c.params().driver, "cleanup");
  const Reply live = tool->call({{"op", "cleanup"}, {"segment", c.path()}});
  record_clause("K-ORPHAN");
  if (live.ok() || live.error().code != shm::ErrorCode::AlreadyExists)
    scenario_fail("K-ORPHAN", "cleanup of a live daemon's segment answered " +
                                  (live.ok() ? std::string("Ok (it removed a live segment)") : live.error().message()) +
                                  ", not AlreadyExists");
  c.daemon->kill9();
  c.step("daemon killed; cleanup");
  c.must(*tool, {{"op", "cleanup"}, {"segment", c.path()}}, "K-ORPHAN");
  const Reply again = tool->call({{"op", "cleanup"}, {"segment", c.path()}});
  if (again.ok() || again.error().code != shm::ErrorCode::NotFound)
    scenario_fail("K-ORPHAN", "a second cleanup answered " + (again.ok() ? std::string("Ok") : again.error().message()) +
                                  ", not NotFound: the first left something behind");
  auto late = DriverProcess::start(c.params().driver, "late client");
  const Reply r = late->call(c.connect_request());
  if (r.ok() || r.error().code != shm::ErrorCode::NotFound)
    scenario_fail("K-ORPHAN", "after cleanup a connect answered " + (r.ok() ? std::string("Ok") : r.error().message()) + ", not NotFound");
}

// A process that arms `point` and then does what reaches it must die there.
void expect_death(Cluster& c, DriverProcess& p, const std::string& point, const json& request) {
  c.must(p, {{"op", "arm"}, {"point", point}, {"occurrence", 1}}, "K-CRASH");
  p.send(request);
  if (!p.wait_exit(10s)) {
    Reply r;
    try {
      r = p.receive(1s);
    } catch (const driver::DriverFailure&) {
    }
    scenario_fail("K-CRASH", p.role() + " armed at " + point + " did not die there (its " + request.value("op", std::string()) +
                                 " answered " + (r.body.is_null() ? std::string("nothing") : r.body.dump()) + ")");
  }
  c.step(p.role() + " died at " + point + " (" + p.describe_exit() + ")");
  record_clause("K-CRASH");
}

// Every write.* point: a writer dies there; every message acknowledged before
// and after it is delivered; the half-written one never corrupt (K-WRITING,
// K-CLAIMED: the ring does not stall behind it).
void crash_writer_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
  DriverProcess& steady = c.add_client("writer");
  DriverProcess& doomed = c.add_client("doomed writer");
  auto acked = write_all(c, steady, 400, 402, false);
  expect_death(c, doomed, point, write_request(499, 2));
  acked.merge(write_all(c, steady, 402, 404, false));
  auto expect = acked;
  const auto got = read_until(c, *c.daemon, expect);
  record_clause(point == "write.after-claim" ? "K-CLAIMED" : "K-WRITING");
  expect_delivered(acked, got, point == "write.after-claim" ? "K-CLAIMED" : "K-WRITING", "a writer died at " + point);
}

// Every read.* point: the daemon dies there; its successor delivers every
// message, the one it held again unless it had finished with it.
void crash_reader_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  auto acked = write_all(c, client, 500, 503, false);
  expect_death(c, *c.daemon, point, {{"op", "read"}});
  std::unique_ptr<DriverProcess> next;
  new_daemon(c, next, "daemon 2");
  const bool consumed = point == "read.after-done" || point == "read.after-release";
  if (consumed) acked.erase(500);  // lost to the dead process only (SPEC K-TWO-STEP: read = take + finish)
  const auto got = read_until(c, *next, acked);
  record_clause("K-READING");
  expect_delivered(acked, got, "K-READING", "the daemon died at " + point, 500);
  c.daemon = std::move(next);
}

// Every recovery.* point: daemon 1 dies holding a message (Reading, at
// read.after-take), daemon 2 dies at the point while taking over, daemon 3
// completes the recovery with every message, the held one again
// (K-IDEMPOTENT).
void crash_recovery_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  const auto acked = write_all(c, client, 600, 604, false);
  expect_death(c, *c.daemon, "read.after-take", {{"op", "read"}});
  // Recovery leaves a slot alone until it is stale_after old (K-STALE):
  // past that, daemon 2's takeover must recover it, and so reach the point.
  std::this_thread::sleep_for(std::chrono::milliseconds(3 * c.options().stale_after_ms));
  std::unique_ptr<DriverProcess> d2 = DriverProcess::start(c.params().driver, "daemon 2");
  expect_death(c, *d2, point, c.create_request());
  std::unique_ptr<DriverProcess> d3;
  new_daemon(c, d3, "daemon 3");
  const auto got = read_until(c, *d3, acked);
  record_clause("K-IDEMPOTENT");
  expect_delivered(acked, got, "K-IDEMPOTENT", "daemon 2 died at " + point + " while taking over", 600);
  c.daemon = std::move(d3);
}

}  // namespace

CheckResult run_driver_recovery(const Params& params) {
  CheckResult result;
  result.name = "recovery";
  struct Scenario {
    std::string name;
    std::function<void(Cluster&)> run;
  };
  std::vector<Scenario> scenarios = {{"daemon-killed", daemon_killed}, {"writer-killed", writer_killed}};
  if (params.claims("wait"))
    for (int k = 0; k < 4; ++k) {
      const std::uint64_t seed = params.seed * 31 + static_cast<std::uint64_t>(k);
      scenarios.push_back({"daemon-killed-mid-traffic", [seed](Cluster& c) { consumer_killed_mid_traffic(c, true, seed); }});
      if (params.claims("daemon_writes"))
        scenarios.push_back({"reader-killed-mid-traffic", [seed](Cluster& c) { consumer_killed_mid_traffic(c, false, seed); }});
    }
  if (params.claims("two_step") && params.claims("daemon_writes"))
    scenarios.push_back({"reader-killed-mid-take", reader_killed_mid_take});
  if (params.claims("takeover")) scenarios.push_back({"silent-daemon", silent_daemon});
  if (params.claims("cleanup")) scenarios.push_back({"cleanup", cleanup});
  if (params.claims("crash_points"))
    for (const auto& point : params.crash_points) {
      if (point.rfind("write.", 0) == 0) scenarios.push_back({"crash at " + point, [point](Cluster& c) { crash_writer_at(c, point); }});
      if (point.rfind("read.", 0) == 0) scenarios.push_back({"crash at " + point, [point](Cluster& c) { crash_reader_at(c, point); }});
      if (point.rfind("recovery.", 0) == 0)
        scenarios.push_back({"crash at " + point, [point](Cluster& c) { crash_recovery_at(c, point); }});
    }
  const int rounds = depth_budget(params, 1, 2, 10);
  for (int round = 0; round < rounds; ++round)
    for (const auto& s : scenarios) {
      Cluster c(params, "recovery");
      try {
        s.run(c);
      } catch (const ScenarioFailure& f) {
        result.failure = failure_of(f, c.steps(), driver_replay(params, "recovery"));
        result.failure->description += " (scenario '" + s.name + "', round " + std::to_string(round) + ")";
        return result;
      }
      ++result.cases;
    }
  result.notes = std::to_string(rounds) + " rounds of " + std::to_string(scenarios.size()) +
                 " scenarios (kill -9 of daemon, writer and reader processes" +
                 (params.claims("takeover") ? ", a silent daemon replaced and fenced" : "") +
                 (params.claims("crash_points") ? ", every write., read. and recovery. crash point the driver names" : "") + ")";
  return result;
}

}  // namespace memlink::conformance
