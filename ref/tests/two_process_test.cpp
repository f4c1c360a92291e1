// Two real processes on one segment: the crate's transport never passed a
// message between processes (its rings were in private heap memory). Here a
// client process and the daemon exchange 100k+ messages each way, across all
// priorities, and every message is checked for content, per-priority FIFO
// order and, where the reader had a choice, priority order. Then the daemon
// lock across processes: a live daemon keeps a second one out, a killed one
// is taken over with its messages (SPEC K-LOCK, K-TAKEOVER).
//
// The second process is this binary in a child role (child_process.hpp), so
// this file runs unchanged on Linux, macOS and Windows (under Wine here).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <thread>

#include "child_process.hpp"
#include "memlink/shm/futex.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/recovery.hpp"
#include "memlink/shm/transport.hpp"
#include "test_support.hpp"

namespace memlink::shm {
namespace {

using namespace std::chrono_literals;
using test::pattern_matches;
using test::pattern_payload;

constexpr std::uint16_t kVersion = 1;
constexpr std::uint64_t kMessages = 100000;

// Tag layout: priority in the top byte, per-priority index below.
std::uint64_t tag_of(Priority p, std::uint64_t i) { return (std::uint64_t(p) << 56) | i; }
Priority priority_of_tag(std::uint64_t tag) { return static_cast<Priority>(tag >> 56); }
std::uint64_t index_of_tag(std::uint64_t tag) { return tag & ((1ULL << 56) - 1); }
Priority priority_for(std::uint64_t n) {
  // Uneven mix so every ring fills and wraps many times.
  const std::uint64_t k = n % 10;
  return k < 2 ? Priority::Critical : k < 6 ? Priority::High : Priority::Low;
}
std::size_t length_for(std::uint64_t n) { return 8 + (n * 131) % (MAX_SLOT_SIZE - 8 + 1); }

// Reads `count` messages from `ep`, checking each; returns "" or a failure.
std::string receive_all(Endpoint& ep, std::uint64_t count) {
  std::array<std::uint64_t, kPriorityCount> next{};
  std::vector<std::byte> buf(MAX_SLOT_SIZE);
  std::uint64_t got = 0;
  while (got < count) {
    auto m = ep.read(buf);
    if (!m) {
      if (m.code() != ErrorCode::Empty) return "read: " + m.error().message();
      if (auto s = ep.wait(10s); !s) return "wait after " + std::to_string(got) + ": " + s.error().message();
      continue;
    }
    std::span<const std::byte> payload(buf.data(), m->length);
    const std::uint64_t tag = test::pattern_tag(payload);
    const Priority p = priority_of_tag(tag);
    if (p != m->priority) return "message " + std::to_string(got) + " tagged for another priority";
    auto& expect = next[static_cast<std::size_t>(p)];
    if (index_of_tag(tag) != expect)
      return "FIFO broken in " + std::string(to_string(p)) + ": got " + std::to_string(index_of_tag(tag)) +
             ", expected " + std::to_string(expect);
    if (!pattern_matches(payload, tag)) return "payload mismatch at message " + std::to_string(got);
    ++expect;
    ++got;
  }
  return "";
}

// Sends `count` messages across the priorities, blocking when a ring is full.
std::string send_all(Endpoint& ep, std::uint64_t count) {
  std::array<std::uint64_t, kPriorityCount> next{};
  for (std::uint64_t n = 0; n < count; ++n) {
    const Priority p = priority_for(n);
    const std::uint64_t tag = tag_of(p, next[static_cast<std::size_t>(p)]++);
    auto r = ep.write_blocking(p, pattern_payload(tag, length_for(n)), 10s);
    if (!r) return "write " + std::to_string(n) + ": " + r.error().message();
  }
  return "";
}

// Exit statuses of the child roles: 0 ok, 1 a failed check (printed), 2 bad
// arguments, 3 could not connect or create.
int report(const std::string& failure) {
  if (!failure.empty()) {
    std::fprintf(stderr, "child: %s\n", failure.c_str());
    return 1;
  }
  return 0;
}

constexpr auto kChildTimeout = std::chrono::seconds(240);

void expect_exit_ok(test::ChildProcess& child, std::chrono::milliseconds timeout = kChildTimeout) {
  const auto status = child.wait(timeout);
  ASSERT_TRUE(status.has_value()) << "child " << child.pid() << " still running after " << timeout.count() << " ms";
  EXPECT_EQ(*status, 0) << "child exit status";
}

// args: PATH STRATEGY. Sends kMessages, then receives as many.
MEMLINK_CHILD_ROLE(client_send_then_receive, "client-send-then-receive") {
  if (args.size() != 2) return 2;
  EndpointOptions co;
  co.wait_strategy = wait_strategy_from_string(args[1]).value_or(WaitStrategy::Block);
  auto client = Client::connect(args[0], kVersion, co);
  if (!client) return report("connect: " + client.error().message());
  std::string f = send_all(*client, kMessages);
  if (f.empty()) f = receive_all(*client, kMessages);
  return report(f);
}

class TwoProcess : public ::testing::TestWithParam<WaitStrategy> {};

TEST_P(TwoProcess, HundredThousandMessagesEachWay) {
  test::TempSegmentPath path("2proc");
  DaemonOptions opts;
  opts.endpoint.wait_strategy = GetParam();
  auto daemon = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion, opts);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  auto child = test::ChildProcess::start("client-send-then-receive",
                                         {path.str(), std::string(to_string(GetParam()))});
  // The daemon receives everything, then answers with as many messages.
  EXPECT_EQ(receive_all(*daemon, kMessages), "");
  EXPECT_EQ(send_all(*daemon, kMessages), "");
  expect_exit_ok(child);
  EXPECT_EQ(c2d_published(daemon->control()), kMessages);
  EXPECT_EQ(daemon->control().daemon_tail.load(), kMessages);
}

INSTANTIATE_TEST_SUITE_P(Strategies, TwoProcess,
                         ::testing::Values(WaitStrategy::Block, WaitStrategy::Adaptive),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// Flags shared by the parent and the child of the handshake tests.
enum Flag : std::size_t {
  kChildReady = 0,
  kRoundWritten = 1,
  kRoundDrained = 2,
  kFutexWord = 3,
  kChildFenced = 4,
  kChildWoken = 5,
};
constexpr int kRounds = 20;

// args: PATH FLAGS. Per round, writes Low, High, Critical, then waits for
// the daemon to drain them.
MEMLINK_CHILD_ROLE(client_priority_rounds, "client-priority-rounds") {
  if (args.size() != 2) return 2;
  auto flags = test::SharedFlags::open(args[1]);
  auto client = Client::connect(args[0], kVersion);
  if (!client) return report("connect: " + client.error().message());
  for (int round = 0; round < kRounds; ++round) {
    for (Priority p : {Priority::Low, Priority::High, Priority::Critical}) {
      if (auto w = client->write(p, pattern_payload(tag_of(p, round), 64)); !w)
        return report("write: " + w.error().message());
    }
    flags.set(kRoundWritten, round + 1);
    if (!flags.wait_for(kRoundDrained, round + 1, std::chrono::seconds(60))) return report("not drained");
  }
  return 0;
}

// Priority order across processes: the client fills all three rings while the
// daemon is not reading; the daemon must then drain Critical, High, Low.
TEST(TwoProcessPriority, ReaderWithAChoiceTakesTheHighestPriority) {
  test::TempSegmentPath path("2prio");
  test::TempSegmentPath flags_path("2prio-flags");
  auto flags = test::SharedFlags::create(flags_path.str());
  auto daemon = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  auto child = test::ChildProcess::start("client-priority-rounds", {path.str(), flags_path.str()});
  std::vector<std::byte> buf(MAX_SLOT_SIZE);
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(flags.wait_for(kRoundWritten, round + 1, std::chrono::seconds(60))) << "round " << round;
    for (Priority want : {Priority::Critical, Priority::High, Priority::Low}) {
      auto m = daemon->read(buf);
      ASSERT_TRUE(m.ok()) << m.error().message();
      EXPECT_EQ(m->priority, want) << "round " << round;
      EXPECT_EQ(index_of_tag(test::pattern_tag(std::span(buf.data(), m->length))), std::uint64_t(round));
    }
    flags.set(kRoundDrained, round + 1);
  }
  expect_exit_ok(child);
}

// args: PATH FLAGS. Creates the daemon (its segment outlives it), says so
// (kChildReady = 1, or 2 if the create failed) and serves until killed.
MEMLINK_CHILD_ROLE(daemon_until_killed, "daemon-until-killed") {
  if (args.size() != 2) return 2;
  auto flags = test::SharedFlags::open(args[1]);
  DaemonOptions o;
  o.remove_on_shutdown = false;
  auto d = Daemon::create(args[0], DEFAULT_SEGMENT_SIZE, kVersion, o);
  if (!d) {
    flags.set(kChildReady, 2);
    return report("create: " + d.error().message());
  }
  flags.set(kChildReady, 1);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

// A daemon process, started and ready.
struct DaemonChild {
  test::TempSegmentPath flags_path{"daemon-flags"};
  test::SharedFlags flags = test::SharedFlags::create(flags_path.str());
  test::ChildProcess process;
  explicit DaemonChild(const std::string& segment)
      : process(test::ChildProcess::start("daemon-until-killed", {segment, flags_path.str()})) {}
  bool ready() { return flags.wait_for(kChildReady, 1, std::chrono::seconds(60)) && flags.get(kChildReady) == 1; }
};

// A client blocked in wait() learns that the daemon died (kill -9, no
// shutdown flag written) instead of sleeping forever.
TEST(TwoProcessLiveness, ClientWaitReportsAKilledDaemon) {
  test::TempSegmentPath path("2dead");
  DaemonChild child(path.str());
  ASSERT_TRUE(child.ready());
  EndpointOptions o;
  o.wait_strategy = WaitStrategy::Block;
  auto client = Client::connect(path.str(), kVersion, o);
  ASSERT_TRUE(client.ok()) << client.error().message();
  EXPECT_TRUE(client->is_connected());
  child.process.kill();
  EXPECT_EQ(client->wait(30s).code(), ErrorCode::Disconnected);
  EXPECT_FALSE(client->is_connected());
  // Writes still go into the ring for a future daemon to drain.
  EXPECT_TRUE(client->write(Priority::High, pattern_payload(1, 8)).ok());
}

// The daemon lock decides which daemon lives (SPEC K-LOCK, K-TAKEOVER): a
// second daemon is refused while the first one's process lives, even though
// this process could open its segment; once it is killed, the lock is free
// and the next daemon takes over the segment with the messages clients had
// been acknowledged.
TEST(TwoProcessDaemonLock, LiveDaemonKeepsOthersOutAKilledOneIsTakenOver) {
  test::TempSegmentPath path("2lock");
  DaemonChild child(path.str());
  ASSERT_TRUE(child.ready());
  RecoveryManager probe(path.str());
  EXPECT_TRUE(probe.is_already_running());
  EXPECT_EQ(probe.recorded_pid(), child.process.pid());

  auto refused = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), ErrorCode::AlreadyExists) << refused.error().message();
  EXPECT_NE(refused.error().message().find(std::to_string(child.process.pid())), std::string::npos)
      << "the refusal names the live daemon's pid: " << refused.error().message();

  std::vector<std::uint64_t> sent;
  {
    auto client = Client::connect(path.str(), kVersion);
    ASSERT_TRUE(client.ok()) << client.error().message();
    for (std::uint64_t i = 0; i < 10; ++i) {
      const Priority p = priority_for(i);
      ASSERT_TRUE(client->write(p, pattern_payload(tag_of(p, i), 32)).ok());
      sent.push_back(tag_of(p, i));
    }
  }
  child.process.kill();
  EXPECT_FALSE(probe.is_already_running());

  DaemonOptions o;
  o.heartbeat_interval = 0ns;
  auto next = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion, o);
  ASSERT_TRUE(next.ok()) << next.error().message();
  EXPECT_EQ(next->start_info().kind, DaemonStart::Orphaned);
  EXPECT_EQ(next->start_info().previous_pid, child.process.pid());
  EXPECT_GT(next->start_info().epoch, 1u);
  EXPECT_TRUE(probe.is_already_running());
  EXPECT_EQ(probe.recorded_pid(), platform::current_pid());
  std::vector<std::uint64_t> got;
  std::vector<std::byte> buf(MAX_SLOT_SIZE);
  while (auto m = next->read(buf)) got.push_back(test::pattern_tag(std::span(buf.data(), m->length)));
  std::sort(sent.begin(), sent.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, sent) << "every acknowledged message survives the daemon's death";
}

// args: FLAGS. Sleeps on the futex word with no timeout until it changes:
// only a wake that crosses processes lets it exit before the parent's
// timeout (the crate's futex was process-private).
MEMLINK_CHILD_ROLE(futex_sleeper, "futex-sleeper") {
  if (args.size() != 1) return 2;
  auto flags = test::SharedFlags::open(args[0]);
  Futex f(flags.word(kFutexWord), flags.path() + "#futex");
  flags.set(kChildReady, 1);
  while (flags.get(kFutexWord) == 0) {
    if (auto s = f.wait(0); !s) return report("wait: " + s.error().message());
  }
  return 0;
}

// args: FLAGS. Sleeps once on the unchanged word (10 s timeout) and says
// how the sleep ended: kChildWoken = 1 woken, 2 timed out or failed.
MEMLINK_CHILD_ROLE(futex_single_sleep, "futex-single-sleep") {
  if (args.size() != 1) return 2;
  auto flags = test::SharedFlags::open(args[0]);
  Futex f(flags.word(kFutexWord), flags.path() + "#futex");
  flags.set(kChildReady, 1);
  const auto s = f.wait(0, std::chrono::seconds(10));
  flags.set(kChildWoken, s.ok() ? 1 : 2);
  return s.ok() ? 0 : report("wait: " + s.error().message());
}

// The word never changes, so only a wake from this process can end the
// child's sleep before its timeout: a process-private futex (the crate's
// defect) leaves it to time out. Woken repeatedly, because a wake that
// lands before the child is asleep is lost (Linux) or absorbed (Windows).
TEST(TwoProcessFutex, WakeAloneReachesASleeperInAnotherProcess) {
  test::TempSegmentPath flags_path("futex-wake-flags");
  auto flags = test::SharedFlags::create(flags_path.str());
  auto child = test::ChildProcess::start("futex-single-sleep", {flags_path.str()});
  ASSERT_TRUE(flags.wait_for(kChildReady, 1, std::chrono::seconds(60)));
  Futex f(flags.word(kFutexWord), flags.path() + "#futex");
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (flags.get(kChildWoken) == 0 && std::chrono::steady_clock::now() < give_up) {
    ASSERT_TRUE(f.wake_one().ok());
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(flags.get(kChildWoken), 1u) << "the child's sleep was not ended by our wake";
  expect_exit_ok(child, std::chrono::seconds(60));
}

// A futex with a long name (over 200 characters: on Windows the object name
// becomes a hash of it, on both sides) still wakes across processes.
TEST(TwoProcessFutex, ALongNameStillCrossesProcesses) {
  test::TempSegmentPath flags_path("futex-long-" + std::string(180, 'x'));
  auto flags = test::SharedFlags::create(flags_path.str());
  auto child = test::ChildProcess::start("futex-sleeper", {flags_path.str()});
  ASSERT_TRUE(flags.wait_for(kChildReady, 1, std::chrono::seconds(60)));
  std::this_thread::sleep_for(50ms);
  Futex f(flags.word(kFutexWord), flags.path() + "#futex");
  flags.set(kFutexWord, 1);
  ASSERT_TRUE(f.wake_one().ok());
  expect_exit_ok(child, std::chrono::seconds(20));
}

TEST(TwoProcessFutex, WakesASleeperInAnotherProcess) {
  test::TempSegmentPath flags_path("futex-flags");
  auto flags = test::SharedFlags::create(flags_path.str());
  auto child = test::ChildProcess::start("futex-sleeper", {flags_path.str()});
  ASSERT_TRUE(flags.wait_for(kChildReady, 1, std::chrono::seconds(60)));
  std::this_thread::sleep_for(50ms);  // let it go to sleep in the kernel
  Futex f(flags.word(kFutexWord), flags.path() + "#futex");
  flags.set(kFutexWord, 1);
  ASSERT_TRUE(f.wake_one().ok());
  expect_exit_ok(child, std::chrono::seconds(20));
}

// args: PATH. Connects and reads: the reader token is taken, so InvalidState.
MEMLINK_CHILD_ROLE(second_reader, "second-reader") {
  if (args.size() != 1) return 2;
  auto other = Client::connect(args[0], kVersion);
  if (!other) return 3;
  return other->read().code() == ErrorCode::InvalidState ? 0 : 1;
}

// SPEC R-ROLES: one reading client process at a time.
TEST(TwoProcessRoles, SecondReadingClientProcessIsRefused) {
  test::TempSegmentPath path("2reader");
  auto daemon = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  auto client = Client::connect(path.str(), kVersion);
  ASSERT_TRUE(client.ok()) << client.error().message();
  ASSERT_TRUE(daemon->write(Priority::Low, pattern_payload(1, 8)).ok());
  ASSERT_TRUE(client->read().ok());  // takes the reader token
  auto child = test::ChildProcess::start("second-reader", {path.str()});
  expect_exit_ok(child, std::chrono::seconds(60));
}

// args: PATH FLAGS. A daemon that never stamps its heartbeat (hung, as far
// as anyone can tell); it waits to be replaced, then checks it is fenced.
MEMLINK_CHILD_ROLE(silent_daemon, "silent-daemon") {
  if (args.size() != 2) return 2;
  auto flags = test::SharedFlags::open(args[1]);
  DaemonOptions o;
  o.remove_on_shutdown = false;
  o.heartbeat_interval = 0ns;
  auto d = Daemon::create(args[0], DEFAULT_SEGMENT_SIZE, kVersion, o);
  if (!d) {
    flags.set(kChildReady, 2);
    return report("create: " + d.error().message());
  }
  flags.set(kChildReady, 1);
  while (!d->fenced()) std::this_thread::sleep_for(1ms);
  if (d->write(Priority::Low, pattern_payload(7, 8)).code() != ErrorCode::Disconnected)
    return report("a fenced daemon could still write");
  flags.set(kChildFenced, 1);
  return 0;
}

// SPEC K-TAKEOVER, K-FENCE: a daemon that holds the lock but stopped
// heart-beating is replaced: its lock file is replaced under it and its
// epoch fences it, while its process lives on.
TEST(TwoProcessDaemonLock, UnresponsiveDaemonIsReplacedAndFenced) {
  test::TempSegmentPath path("2silent");
  test::TempSegmentPath flags_path("2silent-flags");
  auto flags = test::SharedFlags::create(flags_path.str());
  auto child = test::ChildProcess::start("silent-daemon", {path.str(), flags_path.str()});
  ASSERT_TRUE(flags.wait_for(kChildReady, 1, std::chrono::seconds(60)));
  ASSERT_EQ(flags.get(kChildReady), 1u);
  RecoveryManager probe(path.str());
  EXPECT_TRUE(probe.is_already_running());
  DaemonOptions o;
  o.heartbeat_interval = 50ms;
  o.heartbeat_timeout = 200ms;
  std::this_thread::sleep_for(300ms);  // older than the timeout
  auto next = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion, o);
  ASSERT_TRUE(next.ok()) << next.error().message();
  EXPECT_EQ(next->start_info().kind, DaemonStart::Unresponsive);
  EXPECT_EQ(next->start_info().previous_pid, child.pid());
  EXPECT_TRUE(flags.wait_for(kChildFenced, 1, std::chrono::seconds(60))) << "the old daemon never saw the fence";
  expect_exit_ok(child, std::chrono::seconds(60));
  // The new daemon holds the (new) lock file.
  EXPECT_TRUE(probe.is_already_running());
  EXPECT_EQ(probe.recorded_pid(), platform::current_pid());
}

// ---------------------------------------------------------------- recovery
// Processes killed in the middle of a write and of a take (SPEC K-WRITING,
// K-READING), with TerminateProcess on Windows and SIGKILL elsewhere; the
// crash-point tests (ref/tests/recovery_process_test.cpp) walk every point,
// on POSIX only.

EndpointOptions recovering_options() {
  EndpointOptions o;
  o.wait_strategy = WaitStrategy::Block;
  o.recovery.stale_after = 0ns;
  return o;
}

// args: PATH FLAGS. Writes messages 0..2 to High, then claims and fills a
// fourth without publishing it (its slot stays Writing), says so, and
// waits to be killed.
MEMLINK_CHILD_ROLE(client_dies_writing, "client-dies-writing") {
  if (args.size() != 2) return 2;
  auto flags = test::SharedFlags::open(args[1]);
  auto client = Client::connect(args[0], kVersion, recovering_options());
  if (!client) return report("connect: " + client.error().message());
  for (std::uint64_t i = 0; i < 3; ++i) {
    if (auto w = client->write(Priority::High, pattern_payload(tag_of(Priority::High, i), 32)); !w)
      return report("write: " + w.error().message());
  }
  RingBuffer& ring = client->outbound().ring(Priority::High);
  auto id = ring.claim();
  if (!id) return report("claim: " + id.error().message());
  ring.fill(*id, pattern_payload(tag_of(Priority::High, 3), 32));
  flags.set(kChildReady, 1);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

TEST(TwoProcessRecovery, AWriterKilledMidWriteIsReclaimedAndNeverDelivered) {
  test::TempSegmentPath path("2rec-w");
  test::TempSegmentPath flags_path("2rec-w-flags");
  auto flags = test::SharedFlags::create(flags_path.str());
  DaemonOptions o;
  o.endpoint = recovering_options();
  auto daemon = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion, o);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  auto child = test::ChildProcess::start("client-dies-writing", {path.str(), flags_path.str()});
  ASSERT_TRUE(flags.wait_for(kChildReady, 1, std::chrono::seconds(60)));
  child.kill();
  std::vector<std::byte> buf(MAX_SLOT_SIZE);
  for (std::uint64_t i = 0; i < 3; ++i) {
    auto m = daemon->read(buf);
    ASSERT_TRUE(m.ok()) << "message " << i << ": " << m.error().message();
    EXPECT_EQ(index_of_tag(test::pattern_tag(std::span(buf.data(), m->length))), i);
  }
  // The fourth is Writing, held by a dead process: reclaimed, not delivered.
  EXPECT_EQ(daemon->read(buf).code(), ErrorCode::Empty);
  EXPECT_EQ(c2d_published(daemon->control()) - daemon->control().daemon_tail.load(), 0u)
      << "the reclaimed slot still holds up the ring";
  // The ring moves on: the next client's message is the next one delivered.
  auto next = Client::connect(path.str(), kVersion, recovering_options());
  ASSERT_TRUE(next.ok()) << next.error().message();
  ASSERT_TRUE(next->write(Priority::High, pattern_payload(tag_of(Priority::High, 4), 32)).ok());
  auto m = daemon->read(buf);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(index_of_tag(test::pattern_tag(std::span(buf.data(), m->length))), 4u);
}

// args: PATH FLAGS. Takes one message (its slot stays Reading), says so,
// and waits to be killed before finishing it.
MEMLINK_CHILD_ROLE(client_dies_reading, "client-dies-reading") {
  if (args.size() != 2) return 2;
  auto flags = test::SharedFlags::open(args[1]);
  auto client = Client::connect(args[0], kVersion, recovering_options());
  if (!client) return report("connect: " + client.error().message());
  std::vector<std::byte> buf(MAX_SLOT_SIZE);
  auto m = client->take(buf);
  if (!m) return report("take: " + m.error().message());
  flags.set(kChildReady, 1);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

TEST(TwoProcessRecovery, AReaderKilledMidTakeLeavesItsMessageToTheNextReader) {
  test::TempSegmentPath path("2rec-r");
  test::TempSegmentPath flags_path("2rec-r-flags");
  auto flags = test::SharedFlags::create(flags_path.str());
  DaemonOptions o;
  o.endpoint = recovering_options();
  auto daemon = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion, o);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  for (std::uint64_t i = 0; i < 2; ++i)
    ASSERT_TRUE(daemon->write(Priority::Low, pattern_payload(tag_of(Priority::Low, i), 16)).ok());
  auto child = test::ChildProcess::start("client-dies-reading", {path.str(), flags_path.str()});
  ASSERT_TRUE(flags.wait_for(kChildReady, 1, std::chrono::seconds(60)));
  child.kill();
  auto next = Client::connect(path.str(), kVersion, recovering_options());
  ASSERT_TRUE(next.ok()) << next.error().message();
  std::vector<std::uint64_t> got;
  std::vector<std::byte> buf(MAX_SLOT_SIZE);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (got.size() < 2 && std::chrono::steady_clock::now() < give_up) {
    auto m = next->read(buf);
    if (m) {
      got.push_back(index_of_tag(test::pattern_tag(std::span(buf.data(), m->length))));
      continue;
    }
    ASSERT_EQ(m.code(), ErrorCode::Empty) << m.error().message();
    (void)next->wait(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(got, (std::vector<std::uint64_t>{0, 1})) << "the message the dead reader held comes again, first";
}

}  // namespace
}  // namespace memlink::shm
