// Wake-ups through a driver (DRIVER.md, capability "wait"): a process asleep
// in `wait` must be woken by another process's write, not by the end of a
// sleep slice. The processes are asked for 3 s slices (D-TUNING); a wait
// that ends more than half a slice after the write was acknowledged ended
// because a slice expired, so the wake-up was lost (SPEC F-WAKE). No bound
// here is a latency claim: 1.5 s is far beyond any scheduling delay.
#include <random>
#include <thread>

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

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// `sleeper` waits; `waker` does `act` once the sleeper had a moment to fall
// asleep. The sleeper's wait must end, Ok, soon after act's response.
void wake_round(Cluster& c, DriverProcess& sleeper, DriverProcess& waker, const json& act, const std::string& what,
                std::mt19937_64& rng) {
  sleeper.send({{"op", "wait"}, {"timeout_ms", kWaitMs}});
  std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));  // asleep or not: both must work
  const Reply done = c.must(waker, act, "T-WAIT");
  const Reply woke = sleeper.receive(std::chrono::milliseconds(kWaitMs + 10000));
  if (!woke.ok())
    scenario_fail(woke.error().code == shm::ErrorCode::Timeout ? "F-WAKE" : "T-WAIT",
                  what + ": the sleeper's wait ended with " + woke.error().message() + " instead of a wake-up");
  const std::uint64_t late = woke.response_ns > done.response_ns ? woke.response_ns - done.response_ns : 0;
  if (late > kLostAfterNs)
    scenario_fail("F-WAKE", what + ": the sleeper woke " + std::to_string(ms(late)) + " ms after it; its sleep slice is " +
                                std::to_string(kSliceMs) + " ms, so the wake-up was lost and only the slice ended the sleep");
}

void drain(DriverProcess& reader) {
  for (;;) {
    const Reply r = reader.call({{"op", "read"}});
    if (!r.ok()) {
      if (r.error().code != shm::ErrorCode::Empty) scenario_fail("T-WAIT", "draining: read failed with " + r.error().message());
      return;
    }
  }
}

}  // namespace

CheckResult run_driver_wakeup(const Params& params) {
  CheckResult result;
  result.name = "wakeup";
  const int rounds = depth_budget(params, 20, 150, 1500);
  Cluster::Options o;
  o.sleep_slice_ms = kSliceMs;
  o.heartbeat_timeout_ms = 60000;
  o.daemon_timeout_ms = 60000;
  Cluster c(params, "wake", o);
  std::mt19937_64 rng(params.seed);
  std::uint64_t slowest = 0;
  try {
    if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a segment");
    DriverProcess& client = c.add_client("client");
    const bool d2c = params.claims("daemon_writes");
    for (int i = 0; i < rounds; ++i) {
      // c2d: the daemon sleeps, the client writes; d2c the other way round.
      const bool to_client = d2c && i % 2 == 1;
      DriverProcess& sleeper = to_client ? client : *c.daemon;
      DriverProcess& waker = to_client ? *c.daemon : client;
      const int p = params.claims("priorities") ? static_cast<int>(rng() % 3) : 2;
      const json w{{"op", "write"}, {"priority", p}, {"data", driver::to_hex(message_payload(i, 16))}};
      const auto t0 = std::chrono::steady_clock::now();
      wake_round(c, sleeper, waker, w, std::string("round ") + std::to_string(i) + (to_client ? " (d2c)" : " (c2d)"), rng);
      slowest = std::max<std::uint64_t>(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
      drain(sleeper);
      record_clause("F-WAKE");
      record_clause("F-WORDS");  // the wait and the wake are in two processes
      record_clause("T-WAIT");
      ++result.cases;
    }
    // A wait with nothing to read ends with Timeout, not Ok (T-WAIT).
    const Reply idle = c.daemon->call({{"op", "wait"}, {"timeout_ms", 30}}, 10s);
    if (idle.ok()) scenario_fail("T-WAIT", "the daemon's wait returned Ok with nothing to read");
    if (idle.error().code != shm::ErrorCode::Timeout)
      scenario_fail("T-WAIT", "a wait with nothing to read ended with " + idle.error().message() + ", not Timeout");
    if (params.claims("write_blocking")) {
      // A writer asleep on a full ring is woken when the reader frees a slot.
      int filled = 0;
      for (;; ++filled) {
        const Reply r = client.call({{"op", "write"}, {"priority", 2}, {"data", driver::to_hex(message_payload(1000 + filled, 16))}});
        if (!r.ok() && r.error().code == shm::ErrorCode::Full) break;
        if (!r.ok()) scenario_fail("T-BLOCKING", "filling the ring: " + r.error().message());
        if (filled > 100000) scenario_fail("R-CAPACITY", "the low ring took 100000 messages and never said Full");
      }
      client.send({{"op", "write_blocking"}, {"priority", 2}, {"data", driver::to_hex(message_payload(9999, 16))}, {"timeout_ms", kWaitMs}});
      std::this_thread::sleep_for(2ms);
      const Reply freed = c.must(*c.daemon, {{"op", "read"}}, "T-BLOCKING");
      const Reply wrote = client.receive(std::chrono::milliseconds(kWaitMs + 10000));
      if (!wrote.ok()) scenario_fail("T-BLOCKING", "a blocking write on a ring with a freed slot ended with " + wrote.error().message());
      if (wrote.response_ns - freed.response_ns > kLostAfterNs)
        scenario_fail("F-WAKE", "a writer asleep on a full ring woke " + std::to_string(ms(wrote.response_ns - freed.response_ns)) +
                                    " ms after a slot was freed: the space wake-up was lost");
      record_clause("T-BLOCKING");
      drain(*c.daemon);
      ++result.cases;
    }
    // A wait must not take the message it waited for: after it, a more
    // urgent message written later is still read first (T-WAIT, R-ORDER).
    // A wait that receives the message into a private stash reads it second.
    if (params.claims("priorities")) {
      wake_round(c, *c.daemon, client, {{"op", "write"}, {"priority", 2}, {"data", driver::to_hex(message_payload(5000, 16))}},
                 "a low message", rng);
      c.must(client, {{"op", "write"}, {"priority", 0}, {"data", driver::to_hex(message_payload(5001, 16))}}, "R-ORDER");
      const Reply first = c.must(*c.daemon, {{"op", "read"}}, "R-ORDER");
      const auto data = driver::from_hex(first.body.value("data", std::string()));
      record_clause("R-ORDER");
      if (!data || message_id(*data) != std::optional<std::uint64_t>(5001))
        scenario_fail("R-ORDER", "after a wait returned for a low message, a critical one was written; the next read "
                                 "returned " + std::string(data && message_id(*data) == std::optional<std::uint64_t>(5000)
                                                               ? "the low one: the wait took the message it waited for"
                                                               : "something else") +
                                     " (a wait must leave the message where every reader's priority order sees it)");
      drain(*c.daemon);
      ++result.cases;
    }
    // Shutdown wakes a sleeping client, which then sees Disconnected.
    client.send({{"op", "wait"}, {"timeout_ms", kWaitMs}});
    std::this_thread::sleep_for(2ms);
    const Reply down = c.must(*c.daemon, {{"op", "shutdown"}}, "T-SHUTDOWN");
    const Reply woke = client.receive(std::chrono::milliseconds(kWaitMs + 10000));
    if (woke.ok() || woke.error().code != shm::ErrorCode::Disconnected)
      scenario_fail("T-SHUTDOWN", "a client asleep in wait saw the daemon's shutdown as " +
                                      (woke.ok() ? std::string("Ok") : woke.error().message()) + ", not Disconnected");
    if (woke.response_ns - down.response_ns > kLostAfterNs)
      scenario_fail("T-SHUTDOWN", "a client asleep in wait learned of the shutdown only " +
                                      std::to_string(ms(woke.response_ns - down.response_ns)) + " ms later (a slice, not a wake-up)");
    record_clause("T-SHUTDOWN");
    ++result.cases;
    result.notes = std::to_string(rounds) + " cross-process wake-ups (slowest round " + std::to_string(slowest) + " ms; " +
                   std::to_string(kSliceMs) + " ms sleep slices, so a lost wake-up shows), an idle wait, " +
                   (params.claims("priorities") ? "a wait that must leave its message for priority order, " : "") +
                   (params.claims("write_blocking") ? "a writer asleep on a full ring, " : "") + "a shutdown wake";
  } catch (const ScenarioFailure& f) {
    result.failure = failure_of(f, c.steps(), driver_replay(params, "wakeup"));
  }
  return result;
}

}  // namespace memlink::conformance
