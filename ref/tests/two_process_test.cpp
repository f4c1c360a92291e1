// Two real processes on one segment: the crate's transport never passed a
// message between processes (its rings were in private heap memory). Here a
// forked client and the daemon exchange 100k+ messages each way, across all
// priorities, and every message is checked for content, per-priority FIFO
// order and, where the reader had a choice, priority order.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>

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

int child_exit(const std::string& failure) {
  if (!failure.empty()) {
    std::fprintf(stderr, "child: %s\n", failure.c_str());
    return 1;
  }
  return 0;
}

void expect_child_ok(pid_t pid) {
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

class TwoProcess : public ::testing::TestWithParam<WaitStrategy> {};

TEST_P(TwoProcess, HundredThousandMessagesEachWay) {
  test::TempSegmentPath path("2proc");
  DaemonOptions opts;
  opts.endpoint.wait_strategy = GetParam();
  auto daemon = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion, opts);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(240);  // watchdog: a hang fails the test instead of blocking CI
    EndpointOptions co;
    co.wait_strategy = GetParam();
    auto client = Client::connect(path.str(), kVersion, co);
    if (!client) ::_exit(child_exit("connect: " + client.error().message()));
    std::string f = send_all(*client, kMessages);
    if (f.empty()) f = receive_all(*client, kMessages);
    ::_exit(child_exit(f));
  }
  // The daemon receives everything, then answers with as many messages.
  EXPECT_EQ(receive_all(*daemon, kMessages), "");
  EXPECT_EQ(send_all(*daemon, kMessages), "");
  expect_child_ok(pid);
  EXPECT_EQ(daemon->control().client_head.load(), kMessages);
  EXPECT_EQ(daemon->control().daemon_tail.load(), kMessages);
}

INSTANTIATE_TEST_SUITE_P(Strategies, TwoProcess,
                         ::testing::Values(WaitStrategy::Block, WaitStrategy::Adaptive),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// Priority order across processes: the client fills all three rings while the
// daemon is not reading; the daemon must then drain Critical, High, Low.
TEST(TwoProcessPriority, ReaderWithAChoiceTakesTheHighestPriority) {
  test::TempSegmentPath path("2prio");
  auto daemon = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion);
  ASSERT_TRUE(daemon.ok());
  int go[2], ack[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(ack), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(60);
    auto client = Client::connect(path.str(), kVersion);
    if (!client) ::_exit(2);
    for (int round = 0; round < 20; ++round) {
      for (Priority p : {Priority::Low, Priority::High, Priority::Critical}) {
        if (!client->write(p, pattern_payload(tag_of(p, round), 64))) ::_exit(3);
      }
      char c = 0;
      if (::write(go[1], &c, 1) != 1) ::_exit(4);  // round written
      if (::read(ack[0], &c, 1) != 1) ::_exit(5);   // round drained
    }
    ::_exit(0);
  }
  std::vector<std::byte> buf(MAX_SLOT_SIZE);
  for (int round = 0; round < 20; ++round) {
    char c;
    ASSERT_EQ(::read(go[0], &c, 1), 1);
    for (Priority want : {Priority::Critical, Priority::High, Priority::Low}) {
      auto m = daemon->read(buf);
      ASSERT_TRUE(m.ok()) << m.error().message();
      EXPECT_EQ(m->priority, want) << "round " << round;
      EXPECT_EQ(index_of_tag(test::pattern_tag(std::span(buf.data(), m->length))), std::uint64_t(round));
    }
    ASSERT_EQ(::write(ack[1], &c, 1), 1);
  }
  expect_child_ok(pid);
}

// A client blocked in wait() learns that the daemon died (kill -9, no
// shutdown flag written) instead of sleeping forever.
TEST(TwoProcessLiveness, ClientWaitReportsAKilledDaemon) {
  test::TempSegmentPath path("2dead");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    DaemonOptions o;
    o.remove_on_shutdown = false;
    auto d = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, kVersion, o);
    char c = d.ok() ? 1 : 0;
    (void)::write(ready[1], &c, 1);
    for (;;) ::pause();
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 1);
  EndpointOptions o;
  o.wait_strategy = WaitStrategy::Block;
  auto client = Client::connect(path.str(), kVersion, o);
  ASSERT_TRUE(client.ok()) << client.error().message();
  EXPECT_TRUE(client->is_connected());
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  EXPECT_EQ(client->wait(30s).code(), ErrorCode::Disconnected);
  EXPECT_FALSE(client->is_connected());
  // Writes still go into the ring for a future daemon to drain.
  EXPECT_TRUE(client->write(Priority::High, pattern_payload(1, 8)).ok());
}

}  // namespace
}  // namespace memlink::shm
