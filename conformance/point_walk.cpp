// Every crash point and every pause point of the test build (SPEC K-CRASH),
// across processes: a writer or daemon process is killed at the point, or
// held there while another process acts, and what each clause promises is
// checked afterwards. And a busy daemon, whose heartbeat its thread must
// keep stamping (K-HEARTBEAT).
//
//   point          killed there                     held there (SIGSTOP), meanwhile
//   write.*        K-WRITING / K-CLAIMED: its        the consumer: reclaims a claimed-but-Empty
//                  message is never delivered        position (K-CLAIMED: the writer then hears
//                  (after-publish: it is, once)      "not sent"), never takes a live writer's
//                                                    Writing slot (K-STALE)
//   read.*         K-READING / K-DONE: the next      a new daemon takes over; the old one,
//                  daemon delivers it again, or not  resumed, is fenced and takes nothing of the
//                                                    new epoch (K-FENCE)
//   recovery.*     K-IDEMPOTENT: a third daemon      (a starter held mid-takeover is a slow start:
//                  completes the recovery            only its crash is walked)
//   heartbeat.*    the daemon dies; a new one        only the heartbeat thread is held while the
//                  takes over                        daemon keeps serving: clients and a starter
//                                                    see it unresponsive; the new daemon fences an
//                                                    active predecessor
#include <algorithm>
#include <map>

#include "memlink/shm/crash_point.hpp"
#include "recovery_support.hpp"

namespace memlink::conformance::recovery {
namespace {

enum class Action { Crash, Pause };

const char* name(Action a) { return a == Action::Crash ? "killed at" : "held at"; }

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

void stop_self(std::string_view, void*) { ::raise(SIGSTOP); }

void arm(const std::string& point, Action a, long occurrence = 1) {
  if (a == Action::Crash) shm::arm_crash_point(point, occurrence);
  else shm::arm_pause_point(point, occurrence, stop_self, nullptr);
}

std::size_t count(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), x));
}

// The deliveries a daemon process reported: "Dx" per message x, "F" fenced.
struct Reports {
  std::vector<std::string> delivered;
  bool fenced = false;
};
Reports parse(const std::string& s) {
  Reports r;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == 'D' && i + 1 < s.size()) r.delivered.emplace_back(1, s[++i]);
    if (s[i] == 'F') r.fenced = true;
  }
  return r;
}

// A daemon process that serves two-step and reports each delivery as 'D'
// and the message's one character, 'F' when fenced (exit 3). polling: it
// never sleeps in wait(), so only its heartbeat thread stamps (a busy daemon).
int serve(const std::string& path, int fd, bool polling, const std::function<void()>& armed) {
  auto d = shm::Daemon::create(path, kSize, 1, options());
  (void)!::write(fd, d ? "R" : "E", 1);
  if (!d) return 2;
  armed();
  std::vector<std::byte> buf(64);
  for (;;) {
    auto m = d->take(buf);
    if (m) {
      const char report[2] = {'D', m->length > 0 ? static_cast<char>(buf[0]) : '?'};
      (void)!::write(fd, report, 2);
      (void)d->finish(*m);
      continue;
    }
    const bool fenced = m.code() == shm::ErrorCode::Disconnected ||
                        (polling ? !d->is_connected() : d->wait(20ms).code() == shm::ErrorCode::Disconnected);
    if (fenced) {
      (void)!::write(fd, "F", 1);
      // Straight out: a heartbeat thread held at a pause point holds the
      // lock the daemon's destructor would wait for.
      ::_exit(3);
    }
    if (polling) std::this_thread::sleep_for(1ms);
  }
}

// ------------------------------------------------------------------ write.*

// A writer process writes "p" with the point armed; the consumer is this
// process's daemon; another writer (this process) writes "q" behind it.
void write_point(Scenario& s, const std::string& point, Action action) {
  const std::string path = fresh_path("w");
  shm::DaemonOptions o = options();
  o.endpoint.recovery.claim_timeout = 100ms;
  auto d = shm::Daemon::create(path, kSize, 1, o);
  if (!s.check(d.ok(), "K-CRASH", "daemon: " + (d ? std::string() : d.error().message()))) return;
  auto c = shm::Client::connect(path, 1, client_options());
  if (!s.check(c.ok(), "K-CRASH", "client")) return;
  Proc w = spawn([&](int) -> int {
    auto mine = shm::Client::connect(path, 1, client_options());
    if (!mine) return 2;
    arm(point, action);
    auto r = mine->write(shm::Priority::High, std::string_view("p"));
    return r ? 0 : r.code() == shm::ErrorCode::InvalidState ? 3 : 4;
  });
  std::vector<std::string> early;
  if (action == Action::Crash) {
    reap(w);
    if (!s.check(died_by_sigkill(w), "K-CRASH", "the writer did not die at the point (exit " + std::to_string(exit_code(w)) + ")"))
      return kill_and_reap(w);
    (void)c->write(shm::Priority::High, std::string_view("q"));
  } else {
    if (!s.check(wait_stopped(w, 5s), "K-CRASH", "the writer was not held at the point")) return kill_and_reap(w);
    (void)c->write(shm::Priority::High, std::string_view("q"));
    // The consumer acts while the writer is held, for several claim timeouts.
    early = drain(*d, 2, 500ms);
    const shm::RingBuffer& ring = d->inbound().ring(shm::Priority::High);
    if (point == "write.after-claim") {
      s.check(early == std::vector<std::string>{"q"}, "K-CLAIMED",
              "a writer held between claiming its position and entering Writing for 5 claim timeouts: the consumer "
              "read " + std::to_string(early.size()) + " messages, expected it to reclaim the position and read the "
              "one behind it");
    } else if (point == "write.after-publish") {
      s.check(early == std::vector<std::string>{"p", "q"}, "R-FIFO", "a published message and the one behind it");
    } else {
      s.check(early.empty() && ring.reclaimed() == 0, "K-STALE",
              "the slot of a live writer (held at " + point + ") was taken from it, or read past: " +
                  std::to_string(early.size()) + " messages read, " + std::to_string(ring.reclaimed()) + " reclaimed");
    }
    ::kill(w.pid, SIGCONT);
    reap(w);
  }
  const bool published = point == "write.after-publish" || (action == Action::Pause && point != "write.after-claim");
  const std::size_t expected = published ? 2 : 1;
  auto late = drain(*d, expected - std::min(early.size(), expected), 5s);
  const auto extra = drain(*d, 1, 100ms);  // anything more is a duplicate or a phantom
  late.insert(late.end(), extra.begin(), extra.end());
  std::vector<std::string> all = early;
  all.insert(all.end(), late.begin(), late.end());
  const bool acked = action == Action::Pause && exit_code(w) == 0;
  if (action == Action::Pause)
    s.check(exit_code(w) == (point == "write.after-claim" ? 3 : 0), "K-CLAIMED",
            "the held writer's write returned " +
                std::string(exit_code(w) == 0 ? "Ok" : exit_code(w) == 3 ? "InvalidState (not sent)" : "an error") +
                (point == "write.after-claim" ? "; its position was reclaimed, so: not sent" : "; expected Ok"));
  s.check(count(all, "q") == 1, "K-STALE", "the message behind was delivered " + std::to_string(count(all, "q")) + " times");
  s.check(count(all, "p") == (published ? 1u : 0u), action == Action::Crash ? "K-WRITING" : "S-PUBLISH",
          "the writer's message was delivered " + std::to_string(count(all, "p")) + " times" +
              (acked ? " (its write was acknowledged)" : ""));
  c->shutdown();
  d->shutdown();
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
}

// ------------------------------------------------------------------ read.*

// Daemon 1 (a process) takes "a" with the point armed; daemon 2 (this
// process) follows it: after its death, or while it is held.
void read_point(Scenario& s, const std::string& point, Action action) {
  const std::string path = fresh_path("r");
  Proc d1 = spawn([&](int fd) { return serve(path, fd, false, [&] { arm(point, action); }); });
  if (!s.check(next_byte(d1) == 'R', "K-CRASH", "daemon 1 did not start")) return kill_and_reap(d1);
  auto c = shm::Client::connect(path, 1, client_options());
  if (!s.check(c.ok(), "K-CRASH", "client")) return kill_and_reap(d1);
  (void)c->write(shm::Priority::High, std::string_view("a"));
  std::string d1_reports;
  std::optional<shm::Daemon> d2;
  if (action == Action::Crash) {
    reap(d1);
    d1_reports = rest(d1);
    if (!s.check(died_by_sigkill(d1), "K-CRASH", "daemon 1 did not die at the point")) return;
    auto d = take_over(path);
    if (!s.check(d.ok(), "K-TAKEOVER", "daemon 2: " + (d ? std::string() : d.error().message()))) return;
    d2.emplace(std::move(d.value()));
    (void)c->write(shm::Priority::High, std::string_view("b"));
  } else {
    if (!s.check(wait_stopped(d1, 5s), "K-CRASH", "daemon 1 was not held at the point")) return kill_and_reap(d1);
    auto d = take_over(path);
    if (!s.check(d.ok(), "K-TAKEOVER", "daemon 2 did not replace the held daemon: " + (d ? std::string() : d.error().message())))
      return kill_and_reap(d1);
    d2.emplace(std::move(d.value()));
    (void)c->write(shm::Priority::High, std::string_view("b"));
    ::kill(d1.pid, SIGCONT);
  }
  // What daemon 2 delivers: "b", and "a" unless daemon 1 finished it.
  const bool d1_finishes = action == Action::Pause ? (point == "read.after-take" || point == "read.before-done" ||
                                                     point == "read.after-done" || point == "read.after-release")
                                                  : (point == "read.after-done" || point == "read.after-release");
  const std::size_t want = d1_finishes ? 1 : 2;
  auto got = drain(*d2, want, 10s);
  const auto extra = drain(*d2, 1, 100ms);
  got.insert(got.end(), extra.begin(), extra.end());
  if (action == Action::Pause) {
    reap(d1);
    d1_reports = rest(d1);
  }
  const Reports r1 = parse(d1_reports);
  std::vector<std::string> all = r1.delivered;
  all.insert(all.end(), got.begin(), got.end());
  if (action == Action::Pause) {
    s.check(r1.fenced && exit_code(d1) == 3, "K-FENCE",
            "the held daemon, resumed after its successor took over, did not stop as fenced (reported '" + d1_reports + "')");
    s.check(count(r1.delivered, "b") == 0, "K-FENCE", "the replaced daemon took a message written in the new epoch");
  }
  s.check(count(all, "b") == 1, "K-TAKEOVER", "\"b\" was delivered " + std::to_string(count(all, "b")) + " times");
  // "a": once; twice only if daemon 1 died after processing it but before
  // finishing (K-READING, at-least-once).
  const std::size_t a_expected = action == Action::Crash && point == "read.before-done" ? 2 : 1;
  s.check(count(all, "a") == a_expected, point == "read.after-done" ? "K-DONE" : "K-READING",
          "\"a\" was delivered " + std::to_string(count(all, "a")) + " times (daemon 1 reported '" + d1_reports +
              "', daemon 2 read " + std::to_string(got.size()) + "), expected " + std::to_string(a_expected));
  c->shutdown();
  d2->shutdown();
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
}

// ------------------------------------------------------------------ recovery.*

// Daemon 0 dies holding "a" (Reading); daemon 1 dies at the recovery point
// while taking over; daemon 2 must complete the recovery (K-IDEMPOTENT).
void recovery_point(Scenario& s, const std::string& point) {
  const std::string path = fresh_path("k");
  Proc d0 = spawn([&](int fd) -> int {
    auto d = shm::Daemon::create(path, kSize, 1, options());
    (void)!::write(fd, d ? "R" : "E", 1);
    if (!d) return 2;
    std::vector<std::byte> buf(64);
    for (;;) {
      if (auto m = d->take(buf)) {
        (void)!::write(fd, "D", 1);
        ::pause();  // dies holding it
      }
      (void)d->wait(20ms);
    }
  });
  if (!s.check(next_byte(d0) == 'R', "K-CRASH", "daemon 0 did not start")) return kill_and_reap(d0);
  auto c = shm::Client::connect(path, 1, client_options());
  if (!s.check(c.ok(), "K-CRASH", "client")) return kill_and_reap(d0);
  (void)c->write(shm::Priority::High, std::string_view("a"));
  s.check(next_byte(d0) == 'D', "K-TWO-STEP", "daemon 0 did not take the message");
  kill_and_reap(d0);
  Proc d1 = spawn([&](int fd) -> int {
    shm::arm_crash_point(point, 1);
    auto d = shm::Daemon::create(path, kSize, 1, options());
    (void)!::write(fd, d ? "S" : "E", 1);
    return d ? 0 : 2;
  });
  reap(d1);
  const std::string d1_said = rest(d1);
  s.check(died_by_sigkill(d1), "K-CRASH", "daemon 1 did not die at the point (it said '" + d1_said + "')");
  auto d2 = take_over(path);
  if (!s.check(d2.ok(), "K-IDEMPOTENT", "daemon 2 could not take over after daemon 1 died mid-recovery: " +
                                            (d2 ? std::string() : d2.error().message())))
    return;
  (void)c->write(shm::Priority::High, std::string_view("b"));
  const auto got = drain(*d2, 2, 10s);
  s.check(got == std::vector<std::string>{"a", "b"}, "K-IDEMPOTENT",
          "after a recovery killed at " + point + ", the next daemon read " + std::to_string(got.size()) +
              " messages; the one held in Reading must come first, then the rest");
  c->shutdown();
  d2->shutdown();
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
}

// ------------------------------------------------------------------ heartbeat.*

int g_release_fd = -1;
void hold_thread(std::string_view, void*) {
  char c;
  (void)!::read(g_release_fd, &c, 1);  // until the check lets it go
}

// The daemon (a process that polls, so only its heartbeat thread stamps)
// has its heartbeat thread held, or dies there.
void heartbeat_point(Scenario& s, const std::string& point, Action action) {
  const std::string path = fresh_path("h");
  int release[2];
  if (!s.check(::pipe(release) == 0, "K-CRASH", "pipe")) return;
  Proc d1 = spawn([&](int fd) {
    ::close(release[1]);
    g_release_fd = release[0];
    return serve(path, fd, true, [&] {
      if (action == Action::Crash) shm::arm_crash_point(point, 3);
      else shm::arm_pause_point(point, 3, hold_thread, nullptr);
    });
  });
  ::close(release[0]);
  auto finish = [&] {
    ::close(release[1]);
    kill_and_reap(d1);
    (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
  };
  if (!s.check(next_byte(d1) == 'R', "K-CRASH", "daemon 1 did not start")) return finish();
  auto c = shm::Client::connect(path, 1, client_options());
  if (!s.check(c.ok(), "K-CRASH", "client")) return finish();
  (void)c->write(shm::Priority::High, std::string_view("a"));
  // Daemon 1 delivers "a" (and reports "Da"), unless it dies first.
  std::string reported;
  for (char ch; reported.size() < 2 && (ch = next_byte(d1)) != '\0';) reported += ch;
  const bool d1_took_a = reported == "Da";
  if (action == Action::Crash) {
    reap(d1);
    s.check(died_by_sigkill(d1), "K-CRASH", "daemon 1 did not die at the point");
  }
  // Held: the daemon is alive and serving, its heartbeat stale. A client
  // calls it unresponsive, and a starter replaces it.
  auto d2 = take_over(path);
  if (!s.check(d2.ok(), "K-TAKEOVER", "no daemon replaced one whose heartbeat stopped: " +
                                          (d2 ? std::string() : d2.error().message())))
    return finish();
  (void)c->write(shm::Priority::High, std::string_view("b"));
  auto got = drain(*d2, d1_took_a ? 1 : 2, 5s);
  const auto extra = drain(*d2, 1, 100ms);
  got.insert(got.end(), extra.begin(), extra.end());
  std::vector<std::string> all = got;
  if (d1_took_a) all.push_back("a");
  if (action == Action::Pause) {
    // An active predecessor must stop at its next operation (K-FENCE).
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < give_up && ::waitpid(d1.pid, &d1.status, WNOHANG) == 0)
      std::this_thread::sleep_for(5ms);
    d1.reaped = true;
    const Reports r1 = parse(reported + rest(d1));
    all.insert(all.end(), r1.delivered.begin() + (d1_took_a ? 1 : 0), r1.delivered.end());
    s.check(r1.fenced && exit_code(d1) == 3, "K-FENCE",
            "a daemon that kept serving while its heartbeat thread was held did not stop once replaced");
    s.check(count(r1.delivered, "b") == 0, "K-FENCE", "the replaced, still active daemon took a message of the new epoch");
  } else {
    const Reports r1 = parse(rest(d1));
    all.insert(all.end(), r1.delivered.begin(), r1.delivered.end());  // after "Da", if it got that far
  }
  s.check(count(all, "a") == 1 && count(all, "b") == 1, "K-TAKEOVER",
          "\"a\" delivered " + std::to_string(count(all, "a")) + " times, \"b\" " + std::to_string(count(all, "b")));
  c->shutdown();
  d2->shutdown();
  finish();
}

}  // namespace

void walk_points(Scenario& s, Depth depth) {
  // Quick: one point per kind; otherwise every point, killed and held.
  const std::vector<std::string> quick = {"write.after-claim", "write.before-publish", "read.after-take-cas",
                                          "recovery.after-epoch", "heartbeat.before-stamp"};
  for (std::string_view sv : shm::kCrashPoints) {
    const std::string point(sv);
    if (depth == Depth::Quick && std::find(quick.begin(), quick.end(), point) == quick.end()) continue;
    if (const char* only = std::getenv("XONLY"); only && point.find(only) == std::string::npos) continue;
    for (Action a : {Action::Crash, Action::Pause}) {
      if (s.failure) return;
      s.context = std::string(name(a)) + " " + point;
      if (starts_with(point, "write.")) write_point(s, point, a);
      else if (starts_with(point, "read.")) read_point(s, point, a);
      else if (starts_with(point, "recovery.") && a == Action::Crash) recovery_point(s, point);
      else if (starts_with(point, "heartbeat.")) heartbeat_point(s, point, a);
      else continue;  // daemon.after-record: the chaos daemon's own point (scripts/chaos walks it)
      record_clause("K-CRASH");
    }
  }
  s.context.clear();
}

// A daemon kept busy (it never sleeps in wait(), so only its heartbeat
// thread stamps) for three heartbeat timeouts: clients must keep it
// connected and a starter must be refused (K-HEARTBEAT, K-LOCK).
void busy_daemon(Scenario& s) {
  const std::string path = fresh_path("busy");
  s.context = "a busy daemon";
  Proc d1 = spawn([&](int fd) { return serve(path, fd, true, [] {}); });
  auto finish = [&] {
    kill_and_reap(d1);
    (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
    s.context.clear();
  };
  if (!s.check(next_byte(d1) == 'R', "K-HEARTBEAT", "the daemon did not start")) return finish();
  auto c = shm::Client::connect(path, 1, client_options());
  if (!s.check(c.ok(), "K-HEARTBEAT", "client")) return finish();
  const auto until = std::chrono::steady_clock::now() + 3 * options().heartbeat_timeout;
  bool refused = true, connected = true;
  int sent = 0;
  while (std::chrono::steady_clock::now() < until && connected) {
    if (c->write_blocking(shm::Priority::Low, shm::as_bytes("x"), 1s)) ++sent;
    connected = c->is_connected();
    if (sent == 20) {
      auto second = shm::Daemon::create(path, kSize, 1, options());
      refused = !second && second.code() == shm::ErrorCode::AlreadyExists;
    }
    std::this_thread::sleep_for(2ms);
  }
  s.check(connected, "K-HEARTBEAT", "a client called a daemon that was busy serving it unresponsive (its heartbeat stopped)");
  s.check(refused, "K-LOCK", "a second daemon took over a live, busy daemon");
  finish();
}

}  // namespace memlink::conformance::recovery
