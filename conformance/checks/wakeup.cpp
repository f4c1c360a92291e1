// Wait and wake across endpoints, through the driver protocol (capability
// "wait"; SPEC F-*, T-WAIT, T-BLOCKING, T-SHUTDOWN, T-KILLED). Every sleep
// is sliced, so a lost wake-up still "works": the sleeper wakes when its
// slice ends and the read succeeds. This check asks for 3 s slices
// (D-TUNING), so that a wake-up that arrived only because a slice ran out
// cannot pass for latency: a wait that ends more than half a slice after
// the event it waited for was not woken (a healthy wake-up on a loaded
// machine takes milliseconds, not seconds). No bound here is a latency
// claim.
//   1. wake rounds: a sleeper waits, another endpoint writes (c2d and d2c);
//   2. an idle wait ends with Timeout and costs almost no CPU;
//   3. a writer asleep on a full ring is woken when the reader frees a slot;
//   4. a burst through full rings: a client writes faster than the daemon
//      echoes and another client reads, so writers block on full rings in
//      both directions; every freed slot must wake the writer on the other
//      side (T-BLOCKING);
//   5. a wait must leave its message where priority order sees it;
//   6. shutdown wakes every sleeper: two writers blocked on one full ring
//      and a client asleep in wait all learn of it at once (T-SHUTDOWN);
//   7. kill -9 of the daemon: writes still land (T-KILLED) and wait reports
//      Disconnected (T-WAIT).
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "capabilities.hpp"
#include "driver_cluster.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {
namespace {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kSliceMs = 3000;
constexpr std::uint64_t kLostAfterNs = kSliceMs / 2 * 1'000'000ULL;
constexpr int kWaitMs = 20000;  // a wait that never ends is T-WAIT's failure, not a hang
constexpr std::uint64_t kBurst = 200;

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }
std::uint64_t after(const Reply& later, const Reply& earlier) {
  return later.response_ns > earlier.response_ns ? later.response_ns - earlier.response_ns : 0;
}

json write_request(std::uint64_t id, int priority, std::size_t length = 16) {
  return {{"op", "write"}, {"priority", priority}, {"data", driver::to_hex(message_payload(id, length))}};
}

std::optional<std::uint64_t> id_of(const Reply& r) {
  const auto data = r.ok() ? driver::from_hex(r.body.value("data", std::string())) : std::nullopt;
  return data ? message_id(*data) : std::nullopt;
}

// `sleeper` waits; `waker` does `act` once the sleeper had a moment to fall
// asleep. The sleeper's wait must end, Ok, soon after act's response.
void wake_round(Cluster& c, DriverProcess& sleeper, DriverProcess& waker, const json& act, const std::string& what,
                std::mt19937_64& rng) {
  sleeper.send({{"op", "wait"}, {"timeout_ms", kWaitMs}});
  std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));  // asleep or not: both must work
  const Reply done = c.must(waker, act, ClauseId::T_WAIT);
  const Reply woke = sleeper.receive(std::chrono::milliseconds(kWaitMs + 10000));
  if (!woke.ok())
    scenario_fail(woke.error().code == shm::ErrorCode::Timeout ? ClauseId::F_WAKE : ClauseId::T_WAIT,
                  what + ": the sleeper's wait ended with " + woke.error().message() + " instead of a wake-up");
  if (after(woke, done) > kLostAfterNs)
    scenario_fail(ClauseId::F_WAKE, what + ": the sleeper woke " + std::to_string(ms(after(woke, done))) +
                                        " ms after it; its sleep slice is " + std::to_string(kSliceMs) +
                                        " ms, so the wake-up was lost and only the slice ended the sleep");
}

void drain(DriverProcess& reader) {
  for (;;) {
    const Reply r = reader.call({{"op", "read"}});
    if (!r.ok()) {
      if (r.error().code != shm::ErrorCode::Empty)
        scenario_fail(ClauseId::T_WAIT, "draining: read failed with " + r.error().message());
      return;
    }
  }
}

// Writes to `writer`'s low ring until it says Full; how many it took.
int fill(DriverProcess& writer, std::uint64_t first_id, ClauseId clause) {
  for (int filled = 0;; ++filled) {
    const Reply r = writer.call(write_request(first_id + static_cast<std::uint64_t>(filled), 2));
    if (!r.ok() && r.error().code == shm::ErrorCode::Full) return filled;
    if (!r.ok()) scenario_fail(clause, "filling the ring: " + r.error().message());
    if (filled > 100000) scenario_fail(ClauseId::R_CAPACITY, "the low ring took 100000 messages and never said Full");
  }
}

// 1. Wake rounds, c2d (the daemon sleeps) and d2c (the client sleeps).
std::uint64_t wake_rounds(Cluster& c, DriverProcess& client, int rounds, std::mt19937_64& rng) {
  const bool d2c = c.params().claims("daemon_writes");
  std::uint64_t slowest = 0;
  for (int i = 0; i < rounds; ++i) {
    const bool to_client = d2c && i % 2 == 1;
    DriverProcess& sleeper = to_client ? client : *c.daemon;
    DriverProcess& waker = to_client ? *c.daemon : client;
    const int p = c.params().claims("priorities") ? static_cast<int>(rng() % 3) : 2;
    const auto t0 = std::chrono::steady_clock::now();
    wake_round(c, sleeper, waker, write_request(static_cast<std::uint64_t>(i), p),
               "round " + std::to_string(i) + (to_client ? " (d2c)" : " (c2d)"), rng);
    slowest = std::max<std::uint64_t>(
        slowest, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
    drain(sleeper);
    c.record(ClauseId::F_WAKE);
    c.record(ClauseId::F_WORDS);  // the wait and the wake are in two endpoints
    c.record(ClauseId::T_WAIT);
  }
  return slowest;
}

// The CPU time (user + system) process `pid` has used, from /proc (Linux);
// nullopt where there is no /proc.
std::optional<std::uint64_t> process_cpu_ms(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  // Fields after the command name (which may hold spaces): state is field 3,
  // utime and stime fields 14 and 15, in clock ticks.
  std::istringstream rest(stat.substr(stat.rfind(')') + 1));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long ticks = sysconf(_SC_CLK_TCK);
  return ticks > 0 ? std::optional((utime + stime) * 1000 / static_cast<std::uint64_t>(ticks)) : std::nullopt;
}

// 2. A wait with nothing to read ends with Timeout, not Ok, and costs
// almost no CPU (T-WAIT: block and adaptive sleep after their spin budget).
// A waiter that spins uses the whole second; one that sleeps uses a few
// milliseconds; the line between them is drawn at a tenth, far from both,
// so that a loaded machine (a spinner gets less CPU) cannot blur it.
std::string idle_wait(Cluster& c) {
  constexpr int kIdleMs = 1000;
  const auto before = process_cpu_ms(c.daemon->pid());
  const Reply idle = c.daemon->call({{"op", "wait"}, {"timeout_ms", kIdleMs}}, 20s);
  const auto after = process_cpu_ms(c.daemon->pid());
  if (idle.ok()) scenario_fail(ClauseId::T_WAIT, "the daemon's wait returned Ok with nothing to read");
  if (idle.error().code != shm::ErrorCode::Timeout)
    scenario_fail(ClauseId::T_WAIT,
                  "a wait with nothing to read ended with " + idle.error().message() + ", not Timeout");
  if (!before || !after) return "an idle wait (its CPU cost not measured: no /proc here)";
  const std::uint64_t used = *after - *before;
  if (used * 10 > kIdleMs)
    scenario_fail(ClauseId::T_WAIT, "the daemon's process used " + std::to_string(used) + " ms of CPU time during a " +
                                        std::to_string(kIdleMs) +
                                        " ms wait with nothing to read: an idle waiter spins instead of sleeping "
                                        "(a sleeping one uses a few ms)");
  return "an idle wait (" + std::to_string(used) + " ms of CPU in " + std::to_string(kIdleMs) + " ms)";
}

// 3. A writer asleep on a full ring is woken when the reader frees a slot.
void space_wake(Cluster& c, DriverProcess& client) {
  fill(client, 1000, ClauseId::T_BLOCKING);
  client.send({{"op", "write_blocking"},
               {"priority", 2},
               {"data", driver::to_hex(message_payload(9999, 16))},
               {"timeout_ms", kWaitMs}});
  std::this_thread::sleep_for(2ms);
  const Reply freed = c.must(*c.daemon, {{"op", "read"}}, ClauseId::T_BLOCKING);
  const Reply wrote = client.receive(std::chrono::milliseconds(kWaitMs + 10000));
  if (!wrote.ok())
    scenario_fail(ClauseId::T_BLOCKING,
                  "a blocking write on a ring with a freed slot ended with " + wrote.error().message());
  if (after(wrote, freed) > kLostAfterNs)
    scenario_fail(ClauseId::F_WAKE, "a writer asleep on a full ring woke " + std::to_string(ms(after(wrote, freed))) +
                                        " ms after a slot was freed: the space wake-up was lost");
  c.record(ClauseId::T_BLOCKING);
  drain(*c.daemon);
}

// What the burst's writer, echo and reader share: when to stop, and what
// went wrong in the two threads.
struct BurstState {
  std::atomic<bool> done{false};
  std::string writer_error, echo_error;
  FirstException thrown;
  bool stop() const { return done.load() || thrown.failed(); }
};

// The writer's thread: kBurst blocking writes (ids 7000 on) until one fails.
void write_burst(DriverProcess& writer, BurstState& s) {
  for (std::uint64_t i = 0; i < kBurst && !s.stop(); ++i) {
    const Reply r = writer.call({{"op", "write_blocking"},
                                 {"priority", 1},
                                 {"data", driver::to_hex(message_payload(7000 + i, 16))},
                                 {"timeout_ms", kWaitMs}},
                                std::chrono::milliseconds(kWaitMs + 10000));
    if (!r.ok()) {
      s.writer_error = "blocking write " + std::to_string(i) + ": " + r.error().message();
      return;
    }
  }
}

// The daemon's thread: echoes each message it reads with a blocking write,
// waiting while there is nothing to read.
void echo_burst(Cluster& c, BurstState& s) {
  for (std::uint64_t n = 0; n < kBurst && !s.stop();) {
    const Reply m = c.daemon->call({{"op", "read"}});
    if (!m.ok()) {
      if (m.error().code != shm::ErrorCode::Empty) {
        s.echo_error = "daemon read: " + m.error().message();
        return;
      }
      (void)c.daemon->call({{"op", "wait"}, {"timeout_ms", 1000}}, std::chrono::milliseconds(11000));
      continue;
    }
    const Reply e = c.daemon->call({{"op", "write_blocking"},
                                    {"priority", m.body.at("priority")},
                                    {"data", m.body.at("data")},
                                    {"timeout_ms", kWaitMs}},
                                   std::chrono::milliseconds(kWaitMs + 10000));
    if (!e.ok()) {
      s.echo_error = "daemon's blocking echo: " + e.error().message();
      return;
    }
    ++n;
  }
}

// What the burst's reader saw: its first failure (empty if none) and the
// longest gap between two messages.
struct BurstReading {
  std::string failure;
  std::uint64_t longest = 0;
};

// The reader's side, on the calling thread: every message in order, each
// within half a slice of the one before it.
BurstReading read_burst(DriverProcess& reader, const BurstState& s) {
  BurstReading out;
  std::uint64_t last_ns = 0;
  for (std::uint64_t i = 0; i < kBurst && out.failure.empty() && !s.stop(); ++i) {
    Reply got;
    for (;;) {  // the reader sleeps for each message
      got = reader.call({{"op", "read"}});
      if (got.ok() || got.error().code != shm::ErrorCode::Empty) break;
      const Reply waited =
          reader.call({{"op", "wait"}, {"timeout_ms", kWaitMs}}, std::chrono::milliseconds(kWaitMs + 10000));
      if (!waited.ok()) {
        out.failure = "burst message " + std::to_string(i) + " never came (wait: " + waited.error().message() + ")";
        break;
      }
    }
    if (!out.failure.empty()) break;
    if (!got.ok())
      out.failure = "burst message " + std::to_string(i) + ": read failed with " + got.error().message();
    else if (id_of(got) != std::optional<std::uint64_t>(7000 + i))
      out.failure = "burst message " + std::to_string(i) + " carries the wrong payload (R-FIFO through two rings)";
    else if (last_ns != 0 && got.response_ns - last_ns > kLostAfterNs)
      out.failure = "burst message " + std::to_string(i) + " came " + std::to_string(ms(got.response_ns - last_ns)) +
                    " ms after the one before: a writer blocked on a full ring was not woken when a slot was freed";
    if (last_ns != 0 && got.response_ns > last_ns) out.longest = std::max(out.longest, got.response_ns - last_ns);
    last_ns = got.response_ns;
  }
  return out;
}

// 4. A burst through full rings: `writer` blocks on full c2d, the daemon's
// echo blocks on full d2c, `reader` frees d2c slots. Each message must come
// within half a slice of the one before it.
std::string burst(Cluster& c, DriverProcess& writer, DriverProcess& reader) {
  BurstState s;
  std::thread w([&] { s.thrown.run([&] { write_burst(writer, s); }); });
  std::thread echo([&] { s.thrown.run([&] { echo_burst(c, s); }); });
  std::this_thread::sleep_for(100ms);  // let both rings fill and both writers block
  const BurstReading reading = read_burst(reader, s);
  s.done.store(true);
  w.join();
  echo.join();
  s.thrown.rethrow();
  if (!reading.failure.empty()) scenario_fail(ClauseId::T_BLOCKING, reading.failure);
  if (!s.writer_error.empty()) scenario_fail(ClauseId::T_BLOCKING, s.writer_error);
  if (!s.echo_error.empty()) scenario_fail(ClauseId::T_BLOCKING, s.echo_error);
  c.record(ClauseId::T_BLOCKING);
  return "a " + std::to_string(kBurst) + "-message burst through full rings in both directions (longest gap " +
         std::to_string(static_cast<long>(ms(reading.longest))) + " ms)";
}

// 5. A wait must not take the message it waited for: after it, a more
// urgent message written later is still read first (T-WAIT, R-ORDER). A
// wait that receives the message into a private stash reads it second.
void wait_leaves_the_message(Cluster& c, DriverProcess& client, std::mt19937_64& rng) {
  wake_round(c, *c.daemon, client, write_request(5000, 2), "a low message", rng);
  c.must(client, write_request(5001, 0), ClauseId::R_ORDER);
  const Reply first = c.must(*c.daemon, {{"op", "read"}}, ClauseId::R_ORDER);
  c.record(ClauseId::R_ORDER);
  if (id_of(first) != std::optional<std::uint64_t>(5001))
    scenario_fail(ClauseId::R_ORDER,
                  "after a wait returned for a low message, a critical one was written; the next read returned " +
                      std::string(id_of(first) == std::optional<std::uint64_t>(5000)
                                      ? "the low one: the wait took the message it waited for"
                                      : "something else") +
                      " (a wait must leave the message where every reader's priority order sees it)");
  drain(*c.daemon);
}

// After the daemon's shutdown nothing is acknowledged: a connected client's
// write and a new client's connect are refused (T-SHUTDOWN).
void after_shutdown(Cluster& c, DriverProcess& client) {
  const Reply w = client.call(write_request(4000, 2));
  c.step("client: write after the shutdown -> " + (w.ok() ? std::string("Ok") : w.error().message()));
  if (w.ok() || w.error().code != shm::ErrorCode::Disconnected)
    scenario_fail(ClauseId::T_SHUTDOWN,
                  "a client's write after the daemon's shutdown answered " +
                      (w.ok() ? std::string("Ok (acknowledged, though no daemon will read it)") : w.error().message()) +
                      ", not Disconnected");
  DriverProcess& late = c.start("client after the shutdown");
  const Reply r = late.call(c.connect_request());
  c.step("new client: connect after the shutdown -> " + (r.ok() ? std::string("Ok") : r.error().message()));
  if (r.ok() || (r.error().code != shm::ErrorCode::Disconnected && r.error().code != shm::ErrorCode::NotFound))
    scenario_fail(ClauseId::T_SHUTDOWN, "a new client's connect after the daemon's shutdown answered " +
                                            (r.ok() ? std::string("Ok") : r.error().message()) +
                                            ", not Disconnected (or NotFound)");
}

// 6. Shutdown wakes every sleeper at once.
std::string shutdown_wakes_all(Cluster& c, DriverProcess& client) {
  std::vector<DriverProcess*> sleepers{&client};
  std::vector<std::string> what{"a client asleep in wait"};
  client.send({{"op", "wait"}, {"timeout_ms", kWaitMs}});
  if (c.params().claims("write_blocking")) {
    DriverProcess& a = c.add_client("blocked writer 1");
    DriverProcess& b = c.add_client("blocked writer 2");
    fill(a, 3000, ClauseId::T_SHUTDOWN);
    for (DriverProcess* p : {&a, &b}) {
      p->send({{"op", "write_blocking"},
               {"priority", 2},
               {"data", driver::to_hex(message_payload(3999, 16))},
               {"timeout_ms", kWaitMs}});
      sleepers.push_back(p);
      what.push_back(p->role() + ", asleep on a full ring,");
    }
  }
  std::this_thread::sleep_for(100ms);  // asleep or not, each must learn of it
  const Reply down = c.must(*c.daemon, {{"op", "shutdown"}}, ClauseId::T_SHUTDOWN);
  std::uint64_t last = 0;
  for (std::size_t i = 0; i < sleepers.size(); ++i) {
    const Reply woke = sleepers[i]->receive(std::chrono::milliseconds(kWaitMs + 10000));
    if (woke.ok() || woke.error().code != shm::ErrorCode::Disconnected)
      scenario_fail(ClauseId::T_SHUTDOWN, what[i] + " saw the daemon's shutdown as " +
                                              (woke.ok() ? std::string("Ok") : woke.error().message()) +
                                              ", not Disconnected");
    if (after(woke, down) > kLostAfterNs)
      scenario_fail(ClauseId::T_SHUTDOWN,
                    what[i] + " learned of the shutdown only " + std::to_string(ms(after(woke, down))) +
                        " ms later, when its sleep slice ran out: shutdown must wake every sleeper");
    last = std::max(last, after(woke, down));
  }
  after_shutdown(c, client);
  c.record(ClauseId::T_SHUTDOWN);
  return std::to_string(sleepers.size()) + " sleepers woken by the shutdown within " +
         std::to_string(static_cast<long>(ms(last))) + " ms, then a write and a connect refused";
}

// A scenario's own cluster: its steps join the shared cluster's when it
// ends, so that a failure shows them.
struct JoinSteps {
  JoinSteps(Cluster& f, Cluster& t) : from(f), to(t) {}
  JoinSteps(const JoinSteps&) = delete;
  JoinSteps& operator=(const JoinSteps&) = delete;
  ~JoinSteps() {
    for (const auto& s : from.steps()) to.step(s);
  }
  Cluster &from, &to;
};

// 7. From a segment aged to its laps' wrap (C-AGE; a driver that claims
// `aged`): wake rounds on every ring, whose generation wraps at its third
// message, and, with write_blocking, a writer asleep on the low ring filled
// across its wrap. A sleeper's condition ("a message is there", "a slot is
// free") read from positions or generations that wrap must still wake it.
std::string aged_wake_ups(Cluster& c, std::mt19937_64& rng) {
  Cluster::Options o = c.options();
  o.age = shm::SegmentAge::LapWrap;
  Cluster a(c.params(), "wake-aged", o);
  const JoinSteps steps{a, c};
  if (!a.start_daemon(a.daemon).ok()) scenario_fail(ClauseId::C_AGE, "the driver could not create an aged segment");
  DriverProcess& client = a.add_client("client");
  // 6 rounds a ring on average (3 priorities, 2 directions): most rings
  // pass their wrap; the filled low ring always does (capacity >= 3).
  constexpr int kAgedRounds = 36;
  wake_rounds(a, client, kAgedRounds, rng);
  const bool blocking = c.params().claims("write_blocking");
  if (blocking) space_wake(a, client);
  c.record(ClauseId::C_AGE);
  return std::to_string(kAgedRounds) + " wake rounds" + (blocking ? " and a writer asleep on a full ring" : "") +
         " from a segment aged to its laps' wrap";
}

// 8. kill -9 of the daemon: the client's writes go on while there is room
// (T-KILLED), and its wait reports Disconnected (T-WAIT).
void daemon_killed(Cluster& c) {
  Cluster::Options o;
  o.sleep_slice_ms = 100;
  Cluster k(c.params(), "wake-kill", o);
  const JoinSteps steps{k, c};
  if (!k.start_daemon(k.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::T_KILLED, "the driver could not create a segment");
  DriverProcess& client = k.add_client("client");
  k.daemon->kill9();
  k.step("daemon killed (SIGKILL)");
  const Reply w = client.call(write_request(8000, 2));
  c.record(ClauseId::T_KILLED);
  if (!w.ok())
    scenario_fail(ClauseId::T_KILLED,
                  "a client's write after the daemon died answered " + w.error().message() + ", not Ok");
  const Reply wait = client.call({{"op", "wait"}, {"timeout_ms", kWaitMs}}, std::chrono::milliseconds(kWaitMs + 10000));
  if (wait.ok() || wait.error().code != shm::ErrorCode::Disconnected)
    scenario_fail(ClauseId::T_WAIT, "a client waiting on a killed daemon's segment got " +
                                        (wait.ok() ? std::string("Ok") : wait.error().message()) +
                                        ", not Disconnected");
}

// One phase of the check, on the shared cluster: what it runs (its note for
// the report), and the capabilities it needs (DRIVER.md's capability map is
// made from these).
struct Phase {
  const char* name;
  std::vector<std::string> needs;
  std::function<std::string(Cluster&, DriverProcess& client, std::mt19937_64&)> run;
};

std::vector<Phase> phases(int rounds) {
  return {
      {"wake rounds",
       {},
       [rounds](Cluster& c, DriverProcess& client, std::mt19937_64& rng) {
         const std::uint64_t slowest = wake_rounds(c, client, rounds, rng);
         return std::to_string(rounds) + " wake-ups across endpoints (slowest round " + std::to_string(slowest) +
                " ms; " + std::to_string(kSliceMs) + " ms sleep slices, so a lost wake-up shows)";
       }},
      {"an idle wait, and its CPU cost", {}, [](Cluster& c, DriverProcess&, std::mt19937_64&) { return idle_wait(c); }},
      {"a writer asleep on a full ring",
       {"write_blocking"},
       [](Cluster& c, DriverProcess& client, std::mt19937_64&) {
         space_wake(c, client);
         return std::string("a writer asleep on a full ring");
       }},
      {"a burst through full rings both ways",
       {"write_blocking", "daemon_writes"},
       [](Cluster& c, DriverProcess& client, std::mt19937_64&) {
         return burst(c, c.add_client("burst writer"), client);
       }},
      {"a wait leaves its message for priority order",
       {"priorities"},
       [](Cluster& c, DriverProcess& client, std::mt19937_64& rng) {
         wait_leaves_the_message(c, client, rng);
         return std::string("a wait that must leave its message for priority order");
       }},
      {"shutdown wakes every sleeper (with write_blocking: two writers asleep on a full ring too)",
       {},
       [](Cluster& c, DriverProcess& client, std::mt19937_64&) { return shutdown_wakes_all(c, client); }},
      {"wake-ups from a segment aged to its laps' wrap",
       {"aged"},
       [](Cluster& c, DriverProcess&, std::mt19937_64& rng) { return aged_wake_ups(c, rng); }},
      {"kill -9 of the daemon",
       {},
       [](Cluster& c, DriverProcess&, std::mt19937_64&) {
         try {
           daemon_killed(c);
           return std::string("kill -9 of the daemon");
         } catch (const ScenarioUnavailable& u) {
           return "not run: kill -9 of the daemon (" + u.why + ")";
         }
       }},
  };
}

}  // namespace

Gates wakeup_gates() {
  Gates out;
  for (const auto& p : phases(0)) out.push_back({p.name, p.needs});
  return out;
}

CheckResult run_wakeup(const Params& params) {
  CheckResult result;
  result.name = "wakeup";
  const int rounds = depth_budget(params, 30, 300, 3000);
  Cluster::Options o;
  o.sleep_slice_ms = kSliceMs;
  o.heartbeat_timeout_ms = 60000;
  o.daemon_timeout_ms = 60000;
  Cluster c(params, "wake", o);
  std::mt19937_64 rng(params.seed);
  std::vector<std::string> notes;
  try {
    if (!c.start_daemon(c.daemon).ok()) scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
    DriverProcess& client = c.add_client("client");
    expect_delivery(c, client, *c.daemon);
    for (const auto& phase : phases(rounds)) {
      bool claimed = true;
      for (const auto& cap : phase.needs) claimed = claimed && params.claims(cap);
      if (!claimed) continue;
      notes.push_back(phase.run(c, client, rng));
      result.cases += std::string(phase.name) == "wake rounds" ? rounds : 1;
    }
  } catch (const ScenarioFailure& f) {
    result.failure = failure_of(f, c.steps(), driver_replay(params, "wakeup"));
  }
  for (const auto& n : notes) result.notes += (result.notes.empty() ? "" : "; ") + n;
  return result;
}

}  // namespace memlink::conformance
