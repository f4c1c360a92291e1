// Crash recovery across processes (reference library, SPEC K-*): a daemon
// killed while holding a message, a daemon stopped past its heartbeat
// timeout and replaced, a writer that died between claiming a position and
// entering Writing, and the cleanup of what a dead daemon left; then
// (point_walk.cpp) every crash point and every pause point of the test
// build, and a busy daemon that must not be taken for a dead one.
#include <atomic>

#include "recovery_support.hpp"

namespace memlink::conformance {
namespace recovery {

std::string fresh_path(const char* tag) {
  static std::atomic<int> n{0};
  const std::string p = "/dev/shm/memlink-recovery-" + std::string(tag) + "-" + std::to_string(::getpid()) + "-" +
                        std::to_string(n++);
  (void)shm::RecoveryManager(p).cleanup_orphaned_shm();
  return p;
}

namespace {

// A daemon process. hold: take the first message and never finish it.
// Otherwise serve two-step; on being fenced write 'F' and exit 3. Writes
// 'R' once serving and 'D' per message delivered.
[[noreturn]] void daemon_process(const std::string& path, int fd, bool hold) {
  ::alarm(30);
  auto d = shm::Daemon::create(path, kSize, 1, options());
  (void)!::write(fd, d ? "R" : "E", 1);
  if (!d) ::_exit(2);
  std::vector<std::byte> buf(64);
  for (;;) {
    auto m = d->take(buf);
    if (m) {
      (void)!::write(fd, "D", 1);
      if (hold) ::pause();
      (void)d->finish(*m);
      continue;
    }
    if (m.code() == shm::ErrorCode::Disconnected || d->wait(20ms).code() == shm::ErrorCode::Disconnected) {
      (void)!::write(fd, "F", 1);
      ::_exit(3);
    }
  }
}

Proc spawn_daemon(const std::string& path, bool hold) {
  return spawn([&](int fd) -> int { daemon_process(path, fd, hold); });
}

std::string path_for(const char* tag) { return fresh_path(tag); }

// A daemon killed while it holds a message (Reading): lock, PID file,
// client-side detection, takeover keeping every message, redelivery.
void killed_daemon(Scenario& s) {
  const std::string path = path_for("kill");
  Proc a = spawn_daemon(path, /*hold=*/true);
  if (!s.check(next_byte(a) == 'R', "K-TAKEOVER", "the first daemon did not start")) return;
  shm::RecoveryManager rm(path);
  s.check(rm.is_already_running(), "K-LOCK", "the live daemon does not hold " + rm.lock_path());
  s.check(rm.recorded_pid() == static_cast<std::uint32_t>(a.pid), "K-PIDFILE",
          rm.pid_path() + " records pid " + std::to_string(rm.recorded_pid()) + ", the daemon is " + std::to_string(a.pid));
  shm::DaemonOptions patient = options();
  patient.heartbeat_timeout = 5s;  // a loaded machine must not make the live daemon look stopped
  auto second = shm::Daemon::create(path, kSize, 1, patient);
  s.check(!second && second.code() == shm::ErrorCode::AlreadyExists, "K-LOCK",
          "a second daemon started while the first was alive");
  auto c = shm::Client::connect(path, 1, client_options());
  if (!s.check(c.ok(), "K-TAKEOVER", "client cannot connect")) return;
  (void)c->write(shm::Priority::High, std::string_view("x"));
  (void)c->write(shm::Priority::High, std::string_view("y"));
  s.check(next_byte(a) == 'D', "K-TWO-STEP", "the daemon did not take the first message");
  ::kill(a.pid, SIGKILL);
  ::waitpid(a.pid, nullptr, 0);
  rest(a);
  s.check(!c->is_connected(), "K-HEARTBEAT", "the client still reports a killed daemon connected");
  s.check(c->write(shm::Priority::High, std::string_view("z")).ok(), "T-KILLED", "write failed with no daemon");
  auto d = shm::Daemon::create(path, kSize, 1, options());
  if (!s.check(d.ok(), "K-TAKEOVER", "no takeover: " + (d ? std::string() : d.error().message()))) return;
  s.check(d->start_info().kind == shm::DaemonStart::Orphaned && d->start_info().epoch == 2, "K-TAKEOVER",
          "expected an orphaned takeover in epoch 2, got " + std::string(shm::to_string(d->start_info().kind)) +
              " in epoch " + std::to_string(d->start_info().epoch));
  const auto got = drain(*d, 3);
  s.check(got == std::vector<std::string>{"x", "y", "z"}, "K-READING",
          "after takeover the daemon read " + std::to_string(got.size()) +
              " messages; the one held in Reading must come first, then the rest in order");
  s.check(c->is_connected(), "K-HEARTBEAT", "the client does not see the new daemon");
  d->shutdown();
  s.check(shm::RecoveryManager(path).cleanup_orphaned_shm().ok(), "K-ORPHAN",
          "cleanup of a shut-down daemon's segment failed");
  s.check(!shm::MmapSegment::open(path).ok(), "K-ORPHAN", "the segment survived cleanup");
}

// A daemon stopped past its heartbeat timeout: replaced, and fenced when it resumes.
void stopped_daemon(Scenario& s) {
  const std::string path = path_for("stop");
  Proc a = spawn_daemon(path, /*hold=*/false);
  if (!s.check(next_byte(a) == 'R', "K-TAKEOVER", "the first daemon did not start")) return;
  auto c = shm::Client::connect(path, 1, client_options());
  if (!s.check(c.ok(), "K-TAKEOVER", "client cannot connect")) return;
  (void)c->write(shm::Priority::Low, std::string_view("first"));
  s.check(next_byte(a) == 'D', "K-TWO-STEP", "the daemon did not serve");
  ::kill(a.pid, SIGSTOP);
  std::this_thread::sleep_for(350ms);
  auto w = c->wait(1ms);
  s.check(w.code() == shm::ErrorCode::Disconnected && w.error().detail.find("unresponsive") != std::string::npos,
          "K-HEARTBEAT", "a stopped daemon was not reported unresponsive: " + (w ? std::string("Ok") : w.error().message()));
  auto d = shm::Daemon::create(path, kSize, 1, options());
  if (s.check(d.ok(), "K-TAKEOVER", "no takeover of an unresponsive daemon: " + (d ? std::string() : d.error().message()))) {
    s.check(d->start_info().kind == shm::DaemonStart::Unresponsive && d->start_info().epoch == 2, "K-TAKEOVER",
            "expected an unresponsive takeover in epoch 2");
    ::kill(a.pid, SIGCONT);
    (void)c->write(shm::Priority::Low, std::string_view("second"));
    const auto got = drain(*d, 1);
    int status = 0;
    ::waitpid(a.pid, &status, 0);
    const std::string after = rest(a);
    s.check(WIFEXITED(status) && WEXITSTATUS(status) == 3 && after == "F", "K-FENCE",
            "the resumed daemon reported '" + after + "' (D = it consumed after being replaced)");
    s.check(got == std::vector<std::string>{"second"}, "K-FENCE", "the new daemon did not get the message");
    d->shutdown();
  } else {
    ::kill(a.pid, SIGKILL);
    ::kill(a.pid, SIGCONT);
    ::waitpid(a.pid, nullptr, 0);
    rest(a);
  }
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
}

// A writer that died between claiming a position and entering Writing.
void dead_claimant(Scenario& s) {
  const std::string path = path_for("claim");
  shm::DaemonOptions o = options();
  o.remove_on_shutdown = true;
  auto d = shm::Daemon::create(path, kSize, 1, o);
  if (!s.check(d.ok(), "K-CLAIMED", "daemon")) return;
  auto c = shm::Client::connect(path, 1, client_options());
  if (!s.check(c.ok(), "K-CLAIMED", "client")) return;
  shm::RingBuffer& low = c->outbound().ring(shm::Priority::Low);
  auto* hdr = reinterpret_cast<shm::RingHeader*>(reinterpret_cast<std::byte*>(&low.slot_header(0)) - shm::RING_HEADER_SIZE);
  hdr->head.fetch_add(1);  // claimed, and the claimant is gone
  (void)c->write(shm::Priority::Low, std::string_view("behind"));
  std::vector<std::byte> buf(64);
  s.check(d->read(buf).code() == shm::ErrorCode::Empty, "K-CLAIMED", "a claimed position was skipped at once");
  const auto got = drain(*d, 1);
  s.check(got == std::vector<std::string>{"behind"} && low.reclaimed() == 1, "K-CLAIMED",
          "the ring stayed stuck behind a dead claimant past the claim timeout");
}

// K-CLIENTS: clients killed with kill -9 (one connected, one in the middle
// of its traffic) must not stay counted: the next client to connect counts
// itself and the live ones only.
void killed_clients(Scenario& s) {
  const std::string path = path_for("kclient");
  Proc d = spawn_daemon(path, /*hold=*/false);
  if (!s.check(next_byte(d) == 'R', "K-CLIENTS", "the daemon did not start")) return;
  auto client_process = [&](bool busy) {
    return spawn([&path, busy](int fd) -> int {
      auto c = shm::Client::connect(path, 1);
      (void)!::write(fd, c ? "C" : "E", 1);
      if (!c) return 2;
      for (;;) busy ? (void)c->write(shm::Priority::Low, std::string_view("busy")) : (void)::pause();
    });
  };
  Proc idle = client_process(false), busy = client_process(true);
  const bool connected = next_byte(idle) == 'C' && next_byte(busy) == 'C';
  for (Proc* p : {&idle, &busy}) {
    ::kill(p->pid, SIGKILL);
    ::waitpid(p->pid, nullptr, 0);
  }
  if (s.check(connected, "K-CLIENTS", "the client processes could not connect")) {
    auto c = shm::Client::connect(path, 1);
    if (s.check(c.ok(), "K-CLIENTS", "cannot connect after two clients were killed: " + (c ? std::string() : c.error().message())))
      s.check(c->client_count() == 1, "K-CLIENTS",
              "two clients were killed with kill -9 and one connected: client_count is " + std::to_string(c->client_count()) +
                  ", not 1 (a killed client stays counted forever)");
  }
  ::kill(d.pid, SIGKILL);
  ::waitpid(d.pid, nullptr, 0);
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
}

}  // namespace
}  // namespace recovery

CheckResult run_recovery(const Params& params) {
  using namespace recovery;
  CheckResult result;
  result.name = "recovery";
  Scenario s{params, std::nullopt, {}};
  const int rounds = params.depth == Depth::Quick ? 1 : params.depth == Depth::Default ? 2 : 10;
  for (int i = 0; i < rounds && !s.failure; ++i) {
    killed_daemon(s);
    if (!s.failure) stopped_daemon(s);
    if (!s.failure) dead_claimant(s);
    if (!s.failure) killed_clients(s);
    ++result.cases;
  }
  if (!s.failure) busy_daemon(s);
  if (!s.failure) walk_points(s, params.depth);
  result.failure = s.failure;
  result.notes = std::to_string(rounds) + " rounds of kill, stop and dead-claimant scenarios, a busy daemon, and " +
                 "every crash and pause point of the test build";
  return result;
}

}  // namespace memlink::conformance
