// Every crash point and every pause point the driver names (SPEC K-CRASH,
// DRIVER.md D-ARM), across processes: a writer or daemon process is killed
// at the point, or held there while another process acts, and what each
// clause promises is checked afterwards.
//
//   point        killed there (crash_points)          held there (pause_points), meanwhile
//   write.*      K-WRITING / K-CLAIMED: every message  the consumer reclaims a claimed-but-Empty
//                acknowledged around it is delivered;  position (K-CLAIMED: the writer then hears
//                its own never (after publish: once)   "not sent") and never takes a live writer's
//                                                      Writing slot (K-STALE)
//   read.*       K-READING / K-DONE: the next daemon   a new daemon takes over; the old one,
//                delivers it again, or not             resumed, is fenced and takes nothing of the
//                                                      new epoch (K-FENCE); each message once
//   recovery.*   K-IDEMPOTENT: a third daemon          (a starter held mid-takeover is a slow
//                completes the recovery                start: only its crash is walked)
//   heartbeat.*  the daemon dies; a new one takes      only the heartbeat thread is held while the
//                over with every message               daemon serves: a starter sees it
//                                                      unresponsive; the new daemon fences the
//                                                      active predecessor (K-FENCE)
//
// The expectations that depend on where a point is (is the message
// published yet?) hold for the reference's point names (shm::kCrashPoints);
// for a driver's own names the suite checks what holds wherever the point
// is: nothing acknowledged lost, nothing delivered twice.
#include <algorithm>

#include "memlink/shm/crash_point.hpp"
#include "recovery_scenarios.hpp"

namespace memlink::conformance::recovery {
namespace {

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
bool known(const std::string& point) {
  return std::find(shm::kCrashPoints.begin(), shm::kCrashPoints.end(), point) != shm::kCrashPoints.end();
}
int times(const std::map<std::uint64_t, int>& got, std::uint64_t id) {
  const auto it = got.find(id);
  return it == got.end() ? 0 : it->second;
}
void expect_times(const std::map<std::uint64_t, int>& got, std::uint64_t id, int want, ClauseId clause,
                  const std::string& what) {
  if (times(got, id) != want)
    scenario_fail(clause, what + ": m" + std::to_string(id) + " was delivered " + std::to_string(times(got, id)) +
                              " times, not " + std::to_string(want));
}
std::map<std::uint64_t, int>& merge(std::map<std::uint64_t, int>& into, const std::map<std::uint64_t, int>& more) {
  for (const auto& [id, n] : more) into[id] += n;
  return into;
}

// A writer dies at `point`: every message acknowledged before and after it
// is delivered; its own, half written, never (after publish: once).
void crash_writer_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& steady = c.add_client("writer");
  DriverProcess& doomed = c.add_client("doomed writer", Placement::OwnProcess);
  auto acked = write_all(c, steady, 400, 402, false);
  expect_death(c, doomed, point, write_request(499, 2));
  acked.merge(write_all(c, steady, 402, 404, false));
  auto expect = acked;
  const bool published = point == "write.after-publish";
  if (published) expect.insert(499);
  const auto got = read_until(c, *c.daemon, expect);
  const ClauseId clause = point == "write.after-claim" ? ClauseId::K_CLAIMED : ClauseId::K_WRITING;
  c.record(clause);
  expect_delivered(acked, got, clause, "a writer died at " + point);
  if (known(point))
    expect_times(got, 499, published ? 1 : 0, published ? ClauseId::S_PUBLISH : clause, "its writer died at " + point);
  else if (times(got, 499) > 1)
    expect_times(got, 499, 1, ClauseId::V_ONCE, "its writer died at " + point);
}

// A writer is held at `point` (it stops there, alive) while another writes
// behind it and the consumer reads for five claim timeouts.
void hold_writer_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon).ok()) scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& steady = c.add_client("writer");
  DriverProcess& held = c.add_client("held writer", Placement::OwnProcess);
  expect_stop(c, held, point, write_request(1500, 1));
  c.must(steady, write_request(1501, 1), ClauseId::T_KILLED);
  c.step("writer: wrote m1501 behind the held one");
  const bool claimed_only = point == "write.after-claim", published = point == "write.after-publish";
  // What must come is waited for until it comes (30 s without progress is a
  // hang), not for a fixed window: the consumer reclaims a claimed position
  // one to two claim timeouts after it first sees it (K-CLAIMED), and on a
  // loaded machine under ASan its reads come far apart, so a window of five
  // timeouts failed correct code. Where nothing may be read (a live
  // writer's slot), the window is the check: five claim timeouts.
  const bool must_come = known(point) && (claimed_only || published);
  auto early = read_until(
      c, *c.daemon, claimed_only ? std::set<std::uint64_t>{1501} : std::set<std::uint64_t>{1500, 1501},
      must_come ? std::chrono::milliseconds(30'000) : std::chrono::milliseconds(5 * c.options().claim_timeout_ms));
  if (known(point)) {
    c.record(claimed_only ? ClauseId::K_CLAIMED : ClauseId::K_STALE);
    if (claimed_only && (times(early, 1501) != 1 || times(early, 1500) != 0))
      scenario_fail(ClauseId::K_CLAIMED,
                    "a writer held between claiming its position and entering Writing for 5 claim timeouts: the "
                    "consumer did not reclaim the position and read the message behind it");
    if (published && (times(early, 1500) != 1 || times(early, 1501) != 1))
      scenario_fail(ClauseId::R_FIFO,
                    "a writer held after publishing: its message and the one behind it were not both read");
    if (!claimed_only && !published && !early.empty())
      scenario_fail(ClauseId::K_STALE, "the slot of a live writer (held at " + point +
                                           ") was taken from it, or read past: " + std::to_string(early.size()) +
                                           " messages read while it was held");
    if (!claimed_only && !published && c.params().claims("observe")) {
      const Reply v = c.must(*c.daemon, {{"op", "observe"}}, ClauseId::K_STALE);
      const auto reclaimed =
          driver::integer_or<std::uint64_t>(v.body.at("view").at("rings").at(0).at(1), "reclaimed", 0);
      if (reclaimed != 0)
        scenario_fail(ClauseId::K_STALE, "the slot of a live writer (held at " + point + ") was reclaimed");
    }
  }
  held.resume();
  const Reply w = held.receive(20s);
  c.step("held writer resumed: its write -> " + (w.ok() ? std::string("Ok") : w.error().message()));
  if (known(point) && claimed_only && (w.ok() || w.error().code != shm::ErrorCode::InvalidState))
    scenario_fail(ClauseId::K_CLAIMED, "a writer whose claimed position was reclaimed while it was held answered " +
                                           (w.ok() ? std::string("Ok") : w.error().message()) +
                                           ", not InvalidState (not sent)");
  if (known(point) && !claimed_only && !w.ok())
    scenario_fail(ClauseId::S_PUBLISH, "a writer held at " + point + " and resumed failed: " + w.error().message());
  std::set<std::uint64_t> expect{1501};
  if (w.ok()) expect.insert(1500);
  auto late = read_until(c, *c.daemon, expect, 1s);
  merge(early, late);
  expect_delivered(expect, early, ClauseId::S_PUBLISH, "a writer held at " + point);
  if (!w.ok()) expect_times(early, 1500, 0, ClauseId::S_PUBLISH, "its write was not sent");
}

// The daemon dies at a read point; its successor delivers every message,
// the one it held again unless it had finished with it.
void crash_reader_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  auto acked = write_all(c, client, 500, 503, false);
  expect_death(c, *c.daemon, point, {{"op", "read"}});
  std::unique_ptr<DriverProcess> next;
  take_over(c, next, "daemon 2");
  const bool consumed = point == "read.after-done" || point == "read.after-release";
  if (consumed) acked.erase(500);  // lost to the dead process only (SPEC K-TWO-STEP: read = take + finish)
  const auto got = read_until(c, *next, acked);
  const ClauseId clause = point == "read.after-done" ? ClauseId::K_DONE : ClauseId::K_READING;
  c.record(clause);
  expect_delivered(acked, got, clause, "the daemon died at " + point, 500);
  if (known(point) && consumed)
    expect_times(got, 500, 0, clause, "the daemon died at " + point + ", after finishing it");
  c.daemon = std::move(next);
}

// The daemon is held at a read point holding a message; a new daemon takes
// over; the old one, resumed, may finish that one message and is fenced.
void hold_reader_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  c.must(client, write_request(1600, 1), ClauseId::T_KILLED);
  expect_stop(c, *c.daemon, point, {{"op", "read"}});
  std::unique_ptr<DriverProcess> next;
  take_over(c, next, "daemon 2", Placement::Any, 20s);
  c.must(client, write_request(1601, 1), ClauseId::T_KILLED);
  c.daemon->resume();
  std::map<std::uint64_t, int> got;
  const Reply held = c.daemon->receive(20s);
  if (held.ok()) {
    const auto data = driver::from_hex(held.body.value("data", std::string()));
    const auto id = data ? message_id(*data) : std::nullopt;
    if (!id) scenario_fail(ClauseId::V_SLOT, "the resumed daemon delivered bytes no writer wrote");
    ++got[*id];
  }
  c.step("old daemon resumed: its read -> " + (held.ok() ? std::string("a message") : held.error().message()));
  const Reply after = c.daemon->call({{"op", "read"}}, 20s);
  c.step("old daemon: read -> " + (after.ok() ? std::string("a message") : after.error().message()));
  c.record(ClauseId::K_FENCE);
  if (after.ok() || after.error().code != shm::ErrorCode::Disconnected)
    scenario_fail(ClauseId::K_FENCE, "a daemon replaced while held at " + point + ", resumed, read " +
                                         (after.ok() ? "a message" : "and got " + after.error().message()) +
                                         " instead of Disconnected");
  const bool finishes = point == "read.after-take" || point == "read.before-done" || point == "read.after-done" ||
                        point == "read.after-release";
  if (known(point) && finishes != held.ok())
    scenario_fail(ClauseId::K_FENCE, "a daemon held at " + point + " and resumed after its successor took over " +
                                         (held.ok() ? "delivered the message it had not yet taken"
                                                    : "did not finish the message it held") +
                                         " (" + (held.ok() ? "Ok" : held.error().message()) + ")");
  merge(got,
        read_until(c, *next, got.count(1600) ? std::set<std::uint64_t>{1601} : std::set<std::uint64_t>{1600, 1601}));
  c.record(ClauseId::K_TAKEOVER);
  expect_delivered({1600, 1601}, got, ClauseId::K_TAKEOVER, "a daemon was held at " + point + " and replaced");
  c.daemon = std::move(next);
}

// Daemon 1 dies holding a message (Reading, at read.after-take), daemon 2
// dies at the point while taking over, daemon 3 completes the recovery with
// every message, the held one again (K-IDEMPOTENT).
void crash_recovery_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  const auto acked = write_all(c, client, 600, 604, false);
  expect_death(c, *c.daemon, "read.after-take", {{"op", "read"}});
  // Recovery leaves a slot alone until it is stale_after old (K-STALE):
  // past that, daemon 2's takeover must recover it, and so reach the point.
  std::this_thread::sleep_for(std::chrono::milliseconds(3 * c.options().stale_after_ms));
  DriverProcess& d2 = c.start("daemon 2", Placement::OwnProcess);
  expect_death(c, d2, point, c.create_request());
  std::unique_ptr<DriverProcess> d3;
  take_over(c, d3, "daemon 3");
  const auto got = read_until(c, *d3, acked);
  c.record(ClauseId::K_IDEMPOTENT);
  expect_delivered(acked, got, ClauseId::K_IDEMPOTENT, "daemon 2 died at " + point + " while taking over", 600);
  c.daemon = std::move(d3);
}

// The daemon's heartbeat thread dies at the point (the whole process with
// it); a new daemon takes over with every message.
void crash_heartbeat_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  c.must(*c.daemon, {{"op", "arm"}, {"point", point}, {"occurrence", 3}, {"action", "crash"}}, ClauseId::K_CRASH);
  if (!c.daemon->wait_exit(10s))
    scenario_fail(ClauseId::K_CRASH, "the daemon armed at " + point + " did not die there");
  c.step("daemon died at " + point + " (" + c.daemon->describe_exit() + ")");
  c.record(ClauseId::K_CRASH);
  auto acked = write_all(c, client, 1700, 1702, false);
  std::unique_ptr<DriverProcess> next;
  take_over(c, next, "daemon 2");
  const auto got = read_until(c, *next, acked);
  c.record(ClauseId::K_TAKEOVER);
  expect_delivered(acked, got, ClauseId::K_TAKEOVER, "the daemon died at " + point);
  c.daemon = std::move(next);
}

// Only the heartbeat thread is held at the point while the daemon serves:
// a starter replaces it, and the active predecessor is fenced at its next
// operation (K-FENCE).
void hold_heartbeat_at(Cluster& c, const std::string& point) {
  if (!c.start_daemon(c.daemon, "daemon", Placement::OwnProcess).ok())
    scenario_fail(ClauseId::G_FIT, "the driver could not create a segment");
  DriverProcess& client = c.add_client("client");
  c.must(*c.daemon, {{"op", "arm"}, {"point", point}, {"occurrence", 3}, {"action", "hold"}}, ClauseId::K_CRASH);
  c.must(client, write_request(1800, 1), ClauseId::T_KILLED);
  std::map<std::uint64_t, int> got = read_until(c, *c.daemon, {1800});
  std::unique_ptr<DriverProcess> next;
  take_over(c, next, "daemon 2", Placement::Any, 20s);
  c.record(ClauseId::K_CRASH);
  c.must(client, write_request(1801, 1), ClauseId::T_KILLED);
  const Reply old = c.daemon->call({{"op", "read"}}, 20s);
  c.step("old daemon (serving, its heartbeat held): read -> " +
         (old.ok() ? std::string("a message") : old.error().message()));
  (void)c.daemon->call({{"op", "release"}});
  c.record(ClauseId::K_FENCE);
  if (old.ok() || old.error().code != shm::ErrorCode::Disconnected)
    scenario_fail(ClauseId::K_FENCE,
                  "a daemon that kept serving while its heartbeat thread was held, once replaced, read " +
                      (old.ok() ? "a message of the new epoch" : "and got " + old.error().message()) +
                      " instead of Disconnected");
  merge(got, read_until(c, *next, {1801}));
  expect_delivered({1800, 1801}, got, ClauseId::K_TAKEOVER,
                   "a daemon whose heartbeat thread was held at " + point + " was replaced");
  c.daemon = std::move(next);
}

}  // namespace

std::vector<Scenario> point_scenarios(const std::vector<std::string>& points) {
  std::vector<Scenario> out;
  Cluster::Options stale_soon = patient_options();
  stale_soon.heartbeat_timeout_ms = 300;
  Cluster::Options claims_soon = patient_options();
  claims_soon.claim_timeout_ms = 100;
  const std::vector<std::string> crash{"crash_points"}, crash_and_takeover{"crash_points", "crash_recovery"},
      hold{"pause_points"}, hold_and_fence{"pause_points", "takeover"};
  for (const auto& point : points) {
    auto at = [&](auto fn) { return [fn, point](Cluster& c) { fn(c, point); }; };
    if (starts_with(point, "write.")) {
      out.push_back({"crash at " + point, at(crash_writer_at), crash});
      out.push_back({"held at " + point, at(hold_writer_at), hold, claims_soon});
    } else if (starts_with(point, "read.")) {
      out.push_back({"crash at " + point, at(crash_reader_at), crash_and_takeover});
      out.push_back({"held at " + point, at(hold_reader_at), hold_and_fence, stale_soon});
    } else if (starts_with(point, "recovery.")) {
      out.push_back({"crash at " + point, at(crash_recovery_at), crash_and_takeover});
    } else if (starts_with(point, "heartbeat.")) {
      out.push_back({"crash at " + point, at(crash_heartbeat_at), crash_and_takeover});
      out.push_back({"held at " + point, at(hold_heartbeat_at), hold_and_fence, stale_soon});
    }
  }
  return out;
}

}  // namespace memlink::conformance::recovery
