// Crash recovery across real processes (SPEC K-*), with the crash points of
// the testing library: a process is killed at a named point (or stopped),
// another takes over, and the test checks that every acknowledged message
// is delivered, that only a message in Reading at the kill is delivered
// twice, and that a replaced daemon is fenced.
//
// The processes are this binary in child roles (child_process.hpp), so the
// tests run on Windows too (under Wine here); a crash point kills with
// SIGKILL, or TerminateProcess(137) on Windows: exit status 137 either way.
// What a child did goes to a records file, one line per event, written
// through to the OS at once so that it survives the kill.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <signal.h>
#endif

#include "child_process.hpp"
#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/transport.hpp"
#include "test_support.hpp"

namespace memlink::shm {
namespace {

using namespace std::chrono_literals;
constexpr std::uint16_t kVersion = 1;
constexpr std::size_t kSize = 64 * 1024;

DaemonOptions daemon_options() {
  DaemonOptions o;
  o.slot_size = 64;
  o.remove_on_shutdown = false;
  o.heartbeat_interval = 20ms;
  o.heartbeat_timeout = 200ms;
  o.endpoint.wait_strategy = WaitStrategy::Block;
  o.endpoint.recovery.stale_after = 0ms;
  o.endpoint.recovery.claim_timeout = 200ms;
  return o;
}

EndpointOptions client_options() {
  EndpointOptions o;
  o.wait_strategy = WaitStrategy::Block;
  o.daemon_timeout = 200ms;
  o.recovery.stale_after = 0ms;
  return o;
}

constexpr int kKilled = 137;  // 128 + SIGKILL; what a crash point's TerminateProcess exits with
constexpr auto kChildDeadline = std::chrono::seconds(60);

void record(const std::string& records, const std::string& what) {
  std::ofstream out(records, std::ios::app);
  out << what << '\n' << std::flush;  // in the OS before the next step can kill us
}

// A child process and the file it records into.
struct Child {
  test::TempSegmentPath records{"rp-records"};
  std::optional<test::ChildProcess> process;
  // Starts `role` with args PATH RECORDS EXTRA...
  Child(const std::string& role, const std::string& path, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{path, records.str()};
    args.insert(args.end(), extra.begin(), extra.end());
    process.emplace(test::ChildProcess::start(role, args));
  }
  std::uint32_t pid() const { return process->pid(); }
};

// Waits for the child; returns its exit status (kKilled if a crash point or
// the test killed it), -1 if it outlived the deadline (then kills it).
int reap(Child& c, std::vector<std::string>* lines = nullptr) {
  auto status = c.process->wait(kChildDeadline);
  if (!status) c.process->kill();
  if (lines != nullptr) {
    std::ifstream in(c.records.str());
    for (std::string l; std::getline(in, l);) lines->push_back(l);
  }
  return status.value_or(-1);
}

std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Reads until `want` messages arrived or `deadline` passed.
std::vector<std::string> drain(Endpoint& ep, std::size_t want, std::chrono::milliseconds deadline = 3000ms) {
  std::vector<std::string> got;
  std::vector<std::byte> buf(64);
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (got.size() < want && std::chrono::steady_clock::now() < end) {
    auto m = ep.read(buf);
    if (m) {
      got.push_back(text({buf.data(), m->length}));
      continue;
    }
    EXPECT_TRUE(m.code() == ErrorCode::Empty || m.code() == ErrorCode::InvalidState) << m.error().message();
    (void)ep.wait(50ms);
  }
  return got;
}

bool wait_for_segment(const std::string& path) {
  for (int i = 0; i < 500; ++i) {
    if (Client::connect(path, kVersion).ok()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// A daemon child: takes messages two-phase, records each after processing
// and before finishing (at-least-once), until killed or fenced (exit 3).
int daemon_child(const std::string& path, const std::string& rec, const std::string& arm_point) {
  if (!arm_point.empty() && arm_point != "-") arm_crash_point(arm_point, 1);
  auto d = Daemon::create(path, kSize, kVersion, daemon_options());
  if (!d) {
    record(rec, "create-failed " + d.error().message());
    return 2;
  }
  std::vector<std::byte> buf(64);
  for (;;) {
    auto m = d->take(buf);
    if (!m) {
      if (m.code() == ErrorCode::Disconnected) {
        record(rec, "fenced");
        return 3;
      }
      if (auto s = d->wait(50ms); !s && s.code() == ErrorCode::Disconnected) {
        record(rec, "fenced");
        return 3;
      }
      continue;
    }
    record(rec, "delivered " + text({buf.data(), m->length}));
    (void)d->finish(*m);
  }
}

// args: PATH RECORDS POINT ("-": none). A daemon, killed at POINT.
MEMLINK_CHILD_ROLE(daemon_role, "daemon") {
  if (args.size() != 3) return 2;
  return daemon_child(args[0], args[1], args[2]);
}

// args: PATH RECORDS POINT. A client killed at POINT's second visit, in its
// second of three writes; records each acknowledged write.
MEMLINK_CHILD_ROLE(writer_role, "writer") {
  if (args.size() != 3) return 2;
  arm_crash_point(args[2], 2);
  auto c = Client::connect(args[0], kVersion, client_options());
  if (!c) return 2;
  for (const char* m : {"a", "b", "c"}) {
    if (!c->write(Priority::Low, std::string_view(m))) return 4;
    record(args[1], std::string("acked ") + m);
  }
  return 0;
}

// args: PATH RECORDS. A reading client killed just after taking.
MEMLINK_CHILD_ROLE(reader_role, "reader") {
  if (args.size() != 2) return 2;
  arm_crash_point("read.after-take", 1);
  auto c = Client::connect(args[0], kVersion, client_options());
  if (!c) return 2;
  std::vector<std::byte> buf(64);
  (void)c->read(buf);
  return 0;
}

// args: PATH RECORDS. Writes three messages; MEMLINK_CRASH_AT, inherited
// from the parent's environment, decides where it dies.
MEMLINK_CHILD_ROLE(env_writer_role, "env-writer") {
  if (args.size() != 2) return 2;
  auto c = Client::connect(args[0], kVersion, client_options());
  if (!c) return 2;
  for (const char* m : {"one", "two", "three"}) {
    if (!c->write(Priority::High, std::string_view(m))) return 4;
  }
  return 0;
}

class RecoveryProcess : public ::testing::TestWithParam<std::string> {};

// SPEC K-READING, K-DONE: the daemon dies at each point of reading m0.
TEST_P(RecoveryProcess, DaemonKilledWhileReading) {
  ASSERT_TRUE(crash_points_compiled_in());
  const std::string point = GetParam();
  test::TempSegmentPath path("rp-read");
  // The parent writes first (with no daemon: the child takes it over).
  {
    auto d0 = Daemon::create(path.str(), kSize, kVersion, daemon_options());
    ASSERT_TRUE(d0.ok()) << d0.error().message();
    auto c = Client::connect(path.str(), kVersion, client_options());
    ASSERT_TRUE(c.ok());
    for (const char* m : {"m0", "m1", "m2"}) ASSERT_TRUE(c->write(Priority::High, std::string_view(m)).ok());
    d0->shutdown();  // remove_on_shutdown is off: the messages stay
  }
  Child child("daemon", path.str(), {point});
  std::vector<std::string> lines;
  EXPECT_EQ(reap(child, &lines), kKilled) << point;
  auto d = Daemon::create(path.str(), kSize, kVersion, daemon_options());
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->start_info().kind, DaemonStart::Orphaned);
  EXPECT_EQ(d->start_info().epoch, 3u);  // created, taken over by the child, then by us
  const bool finished = point == "read.after-done" || point == "read.after-release";
  std::vector<std::string> got = drain(*d, finished ? 2 : 3, 1500ms);

  std::multiset<std::string> all(got.begin(), got.end());
  for (const auto& l : lines)
    if (l.rfind("delivered ", 0) == 0) all.insert(l.substr(10));
  for (const char* m : {"m0", "m1", "m2"}) EXPECT_GE(all.count(m), 1u) << point << ": " << m << " lost";
  // Only the message that was Reading after it was recorded comes twice.
  const std::size_t twice = point == "read.before-done" ? 1 : 0;
  EXPECT_EQ(all.count("m0"), 1 + twice) << point;
  EXPECT_EQ(all.size(), 3 + twice) << point;
}

INSTANTIATE_TEST_SUITE_P(ReadPoints, RecoveryProcess,
                         ::testing::Values("read.after-take", "read.before-done", "read.after-done",
                                           "read.after-release"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace_if(n.begin(), n.end(), [](char ch) { return !std::isalnum(ch); }, '_');
                           return n;
                         });

class WriterKilled : public ::testing::TestWithParam<std::string> {};

// SPEC K-WRITING, K-CLAIMED: a client dies at each point of its second
// write; the ring must keep flowing and every acknowledged write arrive.
TEST_P(WriterKilled, AtEveryWritePoint) {
  const std::string point = GetParam();
  test::TempSegmentPath path("rp-write");
  auto d = Daemon::create(path.str(), kSize, kVersion, daemon_options());
  ASSERT_TRUE(d.ok()) << d.error().message();
  Child writer("writer", path.str(), {point});
  std::vector<std::string> acked;
  EXPECT_EQ(reap(writer, &acked), kKilled) << point;
  EXPECT_EQ(acked, std::vector<std::string>{"acked a"});
  // Another writer's message behind the dead one must get through.
  auto c = Client::connect(path.str(), kVersion, client_options());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->write(Priority::Low, std::string_view("d")).ok());
  const std::size_t want = point == "write.after-publish" ? 3 : 2;  // b is Ready there: indeterminate
  std::vector<std::string> got = drain(*d, want);
  std::vector<std::string> expect = want == 3 ? std::vector<std::string>{"a", "b", "d"}
                                              : std::vector<std::string>{"a", "d"};
  EXPECT_EQ(got, expect) << point;
  const RingBuffer& low = d->inbound().ring(Priority::Low);
  EXPECT_EQ(low.corrupt_skipped(), 0u);
  EXPECT_EQ(low.reclaimed(), want == 3 ? 0u : 1u) << point;
}

INSTANTIATE_TEST_SUITE_P(WritePoints, WriterKilled,
                         ::testing::Values("write.after-claim", "write.after-writing", "write.mid-payload",
                                           "write.before-publish", "write.after-publish"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace_if(n.begin(), n.end(), [](char ch) { return !std::isalnum(ch); }, '_');
                           return n;
                         });

class TakeoverKilled : public ::testing::TestWithParam<std::string> {};

// SPEC K-IDEMPOTENT: a daemon dies in the middle of taking over; the next
// one finishes the job and nothing is lost.
TEST_P(TakeoverKilled, AtEveryRecoveryPoint) {
  const std::string point = GetParam();
  test::TempSegmentPath path("rp-takeover");
  {
    auto d0 = Daemon::create(path.str(), kSize, kVersion, daemon_options());
    ASSERT_TRUE(d0.ok());
    auto c = Client::connect(path.str(), kVersion, client_options());
    ASSERT_TRUE(c.ok());
    for (const char* m : {"m0", "m1", "m2"}) ASSERT_TRUE(c->write(Priority::Critical, std::string_view(m)).ok());
    std::vector<std::byte> buf(64);
    ASSERT_TRUE(d0->inbound().ring(Priority::Critical).take(buf).ok());  // m0 Reading...
    poke_owner(d0->inbound().ring(Priority::Critical).slot_header(0), 999999999);  // ...by a dead pid
    d0->shutdown();
  }
  Child dying("daemon", path.str(), {point});
  std::vector<std::string> lines;
  EXPECT_EQ(reap(dying, &lines), kKilled) << point;
  auto d = Daemon::create(path.str(), kSize, kVersion, daemon_options());
  ASSERT_TRUE(d.ok()) << d.error().message();
  std::vector<std::string> got = drain(*d, 3, 1500ms);
  std::multiset<std::string> all(got.begin(), got.end());
  for (const auto& l : lines)
    if (l.rfind("delivered ", 0) == 0) all.insert(l.substr(10));
  EXPECT_EQ(all, (std::multiset<std::string>{"m0", "m1", "m2"})) << point;
  EXPECT_EQ(lines.size(), 0u) << point;  // it died before serving anything
}

INSTANTIATE_TEST_SUITE_P(RecoveryPoints, TakeoverKilled,
                         ::testing::Values("recovery.after-lock", "recovery.after-epoch", "recovery.mid-slots",
                                           "recovery.before-serving"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace_if(n.begin(), n.end(), [](char ch) { return !std::isalnum(ch); }, '_');
                           return n;
                         });

#if !defined(_WIN32)  // SIGSTOP; on Windows, two_process_test.cpp's silent daemon is replaced and fenced
// SPEC K-TAKEOVER, K-FENCE, K-HEARTBEAT: a stopped daemon is replaced, and
// when it resumes it notices and consumes nothing more.
TEST(RecoveryProcessFence, AStoppedDaemonIsReplacedAndFencedWhenItResumes) {
  test::TempSegmentPath path("rp-fence");
  Child old("daemon", path.str(), {"-"});
  ASSERT_TRUE(wait_for_segment(path.str()));
  auto c = Client::connect(path.str(), kVersion, client_options());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->write(Priority::High, std::string_view("before")).ok());
  for (int i = 0; i < 200 && c->inbound().pending_total() + c->outbound().pending_total() > 0; ++i)
    std::this_thread::sleep_for(5ms);
  // Connected (a heavily loaded machine may starve the heartbeat thread for a moment).
  for (int i = 0; i < 400 && !c->is_connected(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(c->is_connected());

  ::kill(static_cast<pid_t>(old.pid()), SIGSTOP);
  std::this_thread::sleep_for(400ms);  // past the 200 ms heartbeat timeout
  EXPECT_FALSE(c->is_connected());
  auto w = c->wait(10ms);
  EXPECT_EQ(w.code(), ErrorCode::Disconnected);
  EXPECT_NE(w.error().detail.find("unresponsive"), std::string::npos) << w.error().detail;
  ASSERT_TRUE(c->write(Priority::High, std::string_view("while-stopped")).ok());  // the ring has room

  auto d = Daemon::create(path.str(), kSize, kVersion, daemon_options());
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->start_info().kind, DaemonStart::Unresponsive);
  EXPECT_EQ(d->start_info().previous_pid, old.pid());
  EXPECT_EQ(d->start_info().epoch, 2u);
  EXPECT_TRUE(c->is_connected());
  EXPECT_EQ(drain(*d, 1), std::vector<std::string>{"while-stopped"});

  ::kill(static_cast<pid_t>(old.pid()), SIGCONT);
  ASSERT_TRUE(c->write(Priority::High, std::string_view("after")).ok());
  std::vector<std::string> lines;
  EXPECT_EQ(reap(old, &lines), 3);
  EXPECT_EQ(lines, (std::vector<std::string>{"delivered before", "fenced"}));
  EXPECT_EQ(drain(*d, 1), std::vector<std::string>{"after"});
  EXPECT_FALSE(d->fenced());
}
#endif

// SPEC K-LOCK: while the first daemon lives, a second is refused.
TEST(RecoveryProcessFence, ALiveDaemonIsNotReplaced) {
  test::TempSegmentPath path("rp-alive");
  Child first("daemon", path.str(), {"-"});
  ASSERT_TRUE(wait_for_segment(path.str()));
  DaemonOptions patient = daemon_options();
  patient.heartbeat_timeout = 5s;  // the first daemon must not look stopped on a loaded machine
  auto second = Daemon::create(path.str(), kSize, kVersion, patient);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), ErrorCode::AlreadyExists);
  EXPECT_NE(second.error().detail.find(std::to_string(first.pid())), std::string::npos) << second.error().detail;
  first.process->kill();
  auto third = Daemon::create(path.str(), kSize, kVersion, daemon_options());
  ASSERT_TRUE(third.ok()) << third.error().message();
  EXPECT_EQ(third->start_info().kind, DaemonStart::Orphaned);
}

// The daemon-to-client direction: a reading client dies while Reading; the
// next reading client gets the message again.
TEST(RecoveryProcessFence, AReadingClientThatDiesLeavesItsMessageToTheNext) {
  test::TempSegmentPath path("rp-reader");
  auto d = Daemon::create(path.str(), kSize, kVersion, daemon_options());
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->write(Priority::Low, std::string_view("answer")).ok());
  Child reader("reader", path.str());
  EXPECT_EQ(reap(reader), kKilled);
  auto c = Client::connect(path.str(), kVersion, client_options());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(drain(*c, 1), std::vector<std::string>{"answer"});
}

// MEMLINK_CRASH_AT, as a runner sets it for a process it starts: the child
// inherits it and must die at the named visit.
TEST(CrashPointEnvironment, KillsTheNamedVisit) {
  test::TempSegmentPath path("rp-env");
  auto d = Daemon::create(path.str(), kSize, kVersion, daemon_options());
  ASSERT_TRUE(d.ok());
#if defined(_WIN32)
  ASSERT_EQ(_putenv_s("MEMLINK_CRASH_AT", "write.before-publish:2"), 0);
#else
  ASSERT_EQ(::setenv("MEMLINK_CRASH_AT", "write.before-publish:2", 1), 0);
#endif
  Child child("env-writer", path.str());
#if defined(_WIN32)
  (void)_putenv_s("MEMLINK_CRASH_AT", "");
#else
  ::unsetenv("MEMLINK_CRASH_AT");
#endif
  EXPECT_EQ(reap(child), kKilled);
  // The first write went through; the second died Writing, and is reclaimed, never delivered.
  EXPECT_EQ(drain(*d, 2, 500ms), std::vector<std::string>{"one"});
  EXPECT_EQ(d->inbound().ring(Priority::High).reclaimed(), 1u);
}

// ------------------------------------------------------------ pause points

// K-CLAIMED through the real claim(): the writer is held at
// write.after-claim (its position claimed, its slot still Empty) while the
// consumer reclaims the position; resumed, claim() must find the tail past
// its position, give the slot back and report "not sent".
struct HeldWriter {
  RingBuffer* ring = nullptr;
  RecoveryReport reclaimed;
};
void reclaim_while_held(std::string_view, void* ctx) {
  auto& h = *static_cast<HeldWriter*>(ctx);
  RecoveryPolicy p;
  p.stale_after = std::chrono::nanoseconds(0);
  p.claim_timeout = std::chrono::nanoseconds(0);
  TailRecovery tails;
  h.reclaimed += tails.run(*h.ring, p);  // first sight of the claimed, Empty position
  h.reclaimed += tails.run(*h.ring, p);  // past the (zero) claim timeout: reclaimed
}

TEST(PausePoint, AWriterHeldPastTheClaimTimeoutIsToldNotSentAndTheRingGoesOn) {
  ASSERT_TRUE(crash_points_compiled_in());
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  HeldWriter held{&*ring, {}};
  arm_pause_point("write.after-claim", 1, reclaim_while_held, &held);
  auto r = ring->write_slot(as_bytes("stalled"));
  arm_pause_point("write.after-claim", 0, nullptr, nullptr);
  EXPECT_EQ(held.reclaimed.reclaimed_claimed, 1u) << "the consumer did not reclaim the held writer's position";
  ASSERT_FALSE(r.ok()) << "a writer whose position was reclaimed while it stalled was told its message was sent";
  EXPECT_EQ(r.code(), ErrorCode::InvalidState) << r.error().message();
  EXPECT_NE(r.error().detail.find("not sent"), std::string::npos) << r.error().detail;
  EXPECT_EQ(ring->tail(), 1u);
  // The slot is Empty again and the next laps work.
  for (int lap = 0; lap < 3; ++lap) {
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(ring->write_slot(as_bytes("ok")).ok()) << lap << "/" << i;
    std::vector<std::byte> buf(64);
    for (int i = 0; i < 4; ++i) {
      auto m = ring->read_slot(buf);
      ASSERT_TRUE(m.ok()) << m.error().message();
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), m->length), "ok");
    }
  }
}

}  // namespace
}  // namespace memlink::shm
