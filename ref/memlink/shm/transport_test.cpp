#include "memlink/shm/transport.hpp"
#include "memlink/shm/heartbeat.hpp"
#include "memlink/shm/platform.hpp"

#include <gtest/gtest.h>

#if !defined(_WIN32)
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <cstring>
#include <set>
#include <thread>

#include "test_support.hpp"

namespace memlink::shm {
namespace {

using namespace std::chrono_literals;
using test::pattern_matches;
using test::pattern_payload;

constexpr std::size_t kSmall = 64 * 1024;  // a few slots of 4 KiB per priority

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = Daemon::create(path.str(), kSmall, 7);
    ASSERT_TRUE(d.ok()) << d.error().message();
    daemon.emplace(std::move(d.value()));
  }
  Client connect(std::uint16_t version = 7) {
    auto c = Client::connect(path.str(), version);
    EXPECT_TRUE(c.ok()) << c.error().message();
    return std::move(c.value());
  }
  test::TempSegmentPath path{"transport"};
  std::optional<Daemon> daemon;
};

TEST_F(TransportTest, MessagesFlowBothWaysWithPriorityOrder) {
  Client client = connect();
  EXPECT_EQ(daemon->client_count(), 1u);
  ASSERT_TRUE(client.write(Priority::Low, pattern_payload(1, 100)).ok());
  ASSERT_TRUE(client.write(Priority::Critical, pattern_payload(2, 200)).ok());
  ASSERT_TRUE(client.write(Priority::High, pattern_payload(3, 0)).ok());
  ASSERT_TRUE(daemon->wait(1s).ok());
  const std::uint64_t order[] = {2, 3, 1};
  const Priority prio[] = {Priority::Critical, Priority::High, Priority::Low};
  for (int i = 0; i < 3; ++i) {
    auto m = daemon->read();
    ASSERT_TRUE(m.ok()) << m.error().message();
    EXPECT_EQ(m->priority, prio[i]);
    if (!m->payload.empty()) EXPECT_TRUE(pattern_matches(m->payload, order[i]));
  }
  EXPECT_EQ(daemon->read().code(), ErrorCode::Empty);
  EXPECT_EQ(c2d_published(daemon->control()), 3u);
  EXPECT_EQ(daemon->control().daemon_tail.load(), 3u);

  ASSERT_TRUE(daemon->write(Priority::High, std::string_view("pong")).ok());
  ASSERT_TRUE(client.wait(1s).ok());
  auto reply = client.read();
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(reply->payload.data()), reply->payload.size()), "pong");
}

TEST_F(TransportTest, SequenceNumbersAreDenseForOneWriter) {
  Client client = connect();
  // A refused write (Full, too large) claims no position, so takes no
  // sequence number (T-SEQ: the number is the position).
  const std::uint32_t cap = daemon->geometry().capacity(Priority::High);
  std::uint64_t expect = 0;
  for (int round = 0; round < 3; ++round) {
    for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(client.write(Priority::High, pattern_payload(i, 8)).ok());
    EXPECT_EQ(client.write(Priority::High, pattern_payload(0, 8)).code(), ErrorCode::Full);
    EXPECT_EQ(client.write(Priority::Low, pattern_payload(0, MAX_SLOT_SIZE + 1)).code(),
              ErrorCode::MessageTooLarge);
    for (std::uint32_t i = 0; i < cap; ++i) EXPECT_EQ(daemon->read()->sequence, expect++);
  }
}

TEST_F(TransportTest, EachClientCountsInItsOwnEntryAndTheSumIsWhatWasPublished) {  // T-COUNTERS, C-LINES
  const ControlRegion& c = daemon->control();
  {
    Client a = connect();
    Client b = connect();
    for (int i = 0; i < 5; ++i) {  // read as they come: the rings of this segment are small
      ASSERT_TRUE(a.write(Priority::Low, pattern_payload(i, 8)).ok());
      ASSERT_TRUE(daemon->read().ok());
    }
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(b.write(Priority::High, pattern_payload(i, 8)).ok());
      ASSERT_TRUE(daemon->read().ok());
    }
    ASSERT_FALSE(a.write(Priority::Low, pattern_payload(0, MAX_SLOT_SIZE + 1)).ok());  // refused: not counted
    // Entries 0 and 1 (the first two free ones), each in its own counter.
    EXPECT_EQ(c.client_published[published_index(0)].load(), 5u);
    EXPECT_EQ(c.client_published[published_index(1)].load(), 3u);
    EXPECT_EQ(c.client_head.load(), 0u) << "no client found the table full";
    EXPECT_EQ(c2d_published(c), 8u);
  }
  // The two left; a new client takes entry 0 and counts on from 5.
  Client again = connect();
  ASSERT_TRUE(again.write(Priority::Critical, pattern_payload(1, 8)).ok());
  EXPECT_EQ(c.client_published[published_index(0)].load(), 6u);
  EXPECT_EQ(c2d_published(c), 9u);
  ASSERT_TRUE(daemon->read().ok());
  EXPECT_EQ(c.daemon_tail.load(), 9u);
}

TEST(PublishedIndex, SpreadsTheFirstSixteenEntriesOverSixteenLinesAndUsesEveryCounterOnce) {  // C-LINES
  std::set<std::size_t> used, first_lines;
  for (std::size_t e = 0; e < CLIENT_TABLE_SIZE; ++e) {
    const std::size_t i = published_index(e);
    ASSERT_LT(i, CLIENT_TABLE_SIZE);
    EXPECT_TRUE(used.insert(i).second) << "entries share counter " << i;
    if (e < 16) first_lines.insert(i * sizeof(std::uint64_t) / CACHE_LINE_SIZE);
  }
  EXPECT_EQ(first_lines.size(), 16u);
}

TEST_F(TransportTest, OversizedPayloadIsRefused) {
  Client client = connect();
  auto r = client.write(Priority::High, pattern_payload(0, MAX_SLOT_SIZE + 1));
  EXPECT_EQ(r.code(), ErrorCode::MessageTooLarge);
  EXPECT_NE(r.error().detail.find("4097"), std::string::npos);
  EXPECT_TRUE(client.write(Priority::High, pattern_payload(0, MAX_SLOT_SIZE)).ok());
  EXPECT_EQ(daemon->read()->payload.size(), MAX_SLOT_SIZE);
}

TEST_F(TransportTest, FullRingAndBlockingWriteTimeout) {
  Client client = connect();
  const std::uint32_t cap = daemon->geometry().capacity(Priority::Critical);
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(client.write(Priority::Critical, pattern_payload(i, 8)).ok());
  EXPECT_EQ(client.write(Priority::Critical, pattern_payload(99, 8)).code(), ErrorCode::Full);
  for (WaitStrategy w : {WaitStrategy::Spin, WaitStrategy::Block, WaitStrategy::Adaptive}) {
    client.set_wait_strategy(w);
    auto r = client.write_blocking(Priority::Critical, pattern_payload(99, 8), 30ms);
    EXPECT_EQ(r.code(), ErrorCode::Timeout) << to_string(w);
  }
}

TEST_F(TransportTest, BlockingWriteProceedsWhenTheDaemonFreesASlot) {
  Client client = connect();
  client.set_wait_strategy(WaitStrategy::Block);
  const std::uint32_t cap = daemon->geometry().capacity(Priority::Low);
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(client.write(Priority::Low, pattern_payload(i, 8)).ok());
  std::thread reader([&] {
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(daemon->read().ok());
  });
  auto r = client.write_blocking(Priority::Low, pattern_payload(cap, 8), 10s);
  reader.join();
  EXPECT_TRUE(r.ok()) << r.error().message();
}

TEST_F(TransportTest, WaitTimesOutWithEachStrategy) {
  for (WaitStrategy w : {WaitStrategy::Spin, WaitStrategy::Block, WaitStrategy::Adaptive}) {
    daemon->set_wait_strategy(w);
    EXPECT_EQ(daemon->wait(20ms).code(), ErrorCode::Timeout) << to_string(w);
  }
}

TEST_F(TransportTest, WaitWakesOnAWriteFromAnotherThread) {
  Client client = connect();
  daemon->set_wait_strategy(WaitStrategy::Block);
  std::thread writer([&] {
    std::this_thread::sleep_for(30ms);
    ASSERT_TRUE(client.write(Priority::High, pattern_payload(5, 5)).ok());
  });
  EXPECT_TRUE(daemon->wait(10s).ok());
  writer.join();
}

// SPEC R-POSITIONS: take() decides by the slot word and does not
// read head when the tail is Empty, so broken positions are an idle
// consumer's to find in wait(): before each sleep and, spinning, now and
// then. Each strategy must report them and poison the segment, not sleep
// or spin on them.
TEST_F(TransportTest, BrokenPositionsReachAnIdleConsumersWait) {
  for (WaitStrategy w : {WaitStrategy::Block, WaitStrategy::Adaptive, WaitStrategy::Spin}) {
    SCOPED_TRACE(std::string(to_string(w)));
    RingBuffer& c2d = daemon->inbound().ring(Priority::High);
    auto& head = reinterpret_cast<RingHeader*>(reinterpret_cast<std::byte*>(&c2d.slot_header(0)) - RING_HEADER_SIZE)->head;
    const std::uint64_t good = head.load();
    head.store(good + 1000);
    daemon->set_wait_strategy(w);
    EXPECT_EQ(daemon->read().code(), ErrorCode::Empty);  // the word says nothing is there
    const Status s = daemon->wait(10s);
    ASSERT_FALSE(s.ok()) << "wait() slept through broken head/tail";
    EXPECT_EQ(s.code(), ErrorCode::CorruptSegment);
    EXPECT_NE(s.error().detail.find("ring[c2d/high].head/tail"), std::string::npos) << s.error().message();
    EXPECT_NE(daemon->control().flags.load() & FLAG_POISONED, 0u);
    head.store(good);
    daemon->control().flags.store(0);
  }
}

TEST_F(TransportTest, ProtocolMismatchNamesBothVersions) {
  auto c = Client::connect(path.str(), 8);
  ASSERT_EQ(c.code(), ErrorCode::ProtocolMismatch);
  EXPECT_NE(c.error().detail.find("7"), std::string::npos);
  EXPECT_NE(c.error().detail.find("8"), std::string::npos);
  EXPECT_EQ(daemon->client_count(), 0u);
}

TEST_F(TransportTest, BackpressureIsSharedAndBounded) {
  Client client = connect();
  EXPECT_EQ(client.backpressure(), 0u);
  ASSERT_TRUE(daemon->set_backpressure(750).ok());
  EXPECT_EQ(client.backpressure(), 750u);
  EXPECT_DOUBLE_EQ(client.backpressure_ratio(), 0.75);
  EXPECT_EQ(daemon->set_backpressure(1001).code(), ErrorCode::InvalidArgument);
}

TEST_F(TransportTest, ClientCountFollowsConnectAndShutdown) {
  {
    Client a = connect();
    Client b = connect();
    EXPECT_EQ(daemon->client_count(), 2u);
    b.shutdown();
    b.shutdown();  // idempotent
    EXPECT_EQ(daemon->client_count(), 1u);
    Client moved = std::move(a);
    EXPECT_EQ(daemon->client_count(), 1u);
  }
  EXPECT_EQ(daemon->client_count(), 0u);
}

TEST_F(TransportTest, ShutdownDisconnectsClients) {
  Client client = connect();
  EXPECT_TRUE(client.is_connected());
  EXPECT_EQ(client.protocol_version(), 7);
  client.set_wait_strategy(WaitStrategy::Block);
  std::thread stopper([&] {
    std::this_thread::sleep_for(30ms);
    daemon->shutdown();
  });
  EXPECT_EQ(client.wait(10s).code(), ErrorCode::Disconnected);
  stopper.join();
  EXPECT_FALSE(client.is_connected());
  EXPECT_EQ(client.write(Priority::Low, pattern_payload(1, 1)).code(), ErrorCode::Disconnected);
  EXPECT_EQ(daemon->write(Priority::Low, pattern_payload(1, 1)).code(), ErrorCode::Disconnected);
  EXPECT_EQ(Client::connect(path.str(), 7).code(), ErrorCode::NotFound);  // removed on shutdown
}

#if !defined(_WIN32)  // fork; two_process_test.cpp has it for every platform
TEST_F(TransportTest, SecondReadingClientProcessIsRefused) {
  Client client = connect();
  ASSERT_TRUE(daemon->write(Priority::Low, pattern_payload(1, 8)).ok());
  ASSERT_TRUE(client.read().ok());  // takes the reader token
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto other = Client::connect(path.str(), 7);
    if (!other) ::_exit(2);
    ::_exit(other->read().code() == ErrorCode::InvalidState ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}
#endif

TEST(TransportCreate, RefusesBadSizesAndExistingSegments) {
  test::TempSegmentPath path("create");
  EXPECT_EQ(Daemon::create(path.str(), MIN_SEGMENT_SIZE, 1).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(Daemon::create(path.str(), MAX_SEGMENT_SIZE + 1, 1).code(), ErrorCode::InvalidArgument);
  auto d = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, 1);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, 1).code(), ErrorCode::AlreadyExists);
}

// --- connect() validates a segment it did not write (SPEC V-CONNECT) ------

class CorruptSegmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonOptions o;
    o.remove_on_shutdown = false;
    o.heartbeat_interval = std::chrono::nanoseconds(0);
    auto d = Daemon::create(path.str(), kSmall, 3, o);
    ASSERT_TRUE(d.ok());
    daemon.emplace(std::move(d.value()));
    bytes = test::read_file(path.str());
    ASSERT_EQ(bytes.size(), kSmall);
  }
  // Writes `bytes` to a copy of the segment and expects connect to fail
  // naming `field`. (A copy: the live daemon's file may not be truncated
  // under its mapping: SIGBUS on Linux, refused on Windows.)
  void expect_rejected(const std::string& field, ErrorCode code = ErrorCode::CorruptSegment) {
    test::write_file(copy.str(), bytes);
    auto c = Client::connect(copy.str(), 3);
    ASSERT_FALSE(c.ok()) << "accepted a segment with a bad " << field;
    EXPECT_EQ(c.code(), code) << c.error().message();
    EXPECT_NE(c.error().detail.find(field), std::string::npos) << c.error().message();
  }
  template <class T>
  void poke(std::size_t offset, T value) {
    std::memcpy(bytes.data() + offset, &value, sizeof value);
  }
  test::TempSegmentPath path{"corrupt"};
  test::TempSegmentPath copy{"corrupt-copy"};
  std::optional<Daemon> daemon;
  std::vector<std::byte> bytes;
};

TEST_F(CorruptSegmentTest, IntactCopyIsAccepted) {
  test::write_file(copy.str(), bytes);
  EXPECT_TRUE(Client::connect(copy.str(), 3).ok());
}
TEST_F(CorruptSegmentTest, BadMagic) {
  poke<std::uint64_t>(0, 0xDEADBEEF);
  expect_rejected("control.magic");
}
TEST_F(CorruptSegmentTest, WrongLayoutVersion) {
  poke<std::uint32_t>(8, 99);
  expect_rejected("control.layout_version", ErrorCode::ProtocolMismatch);
}
// A segment of layout version 1 (before the slot word) is another protocol,
// not garbage: the error names both versions (SPEC L-CONST).
TEST_F(CorruptSegmentTest, ALayoutVersionOneSegmentIsRefusedNamingBothVersions) {
  poke<std::uint32_t>(8, 1);
  test::write_file(copy.str(), bytes);
  auto c = Client::connect(copy.str(), 3);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.code(), ErrorCode::ProtocolMismatch);
  EXPECT_NE(c.error().detail.find("layout version 1"), std::string::npos) << c.error().message();
  EXPECT_NE(c.error().detail.find("layout version 2"), std::string::npos) << c.error().message();
}
TEST_F(CorruptSegmentTest, Truncated) {
  bytes.resize(kSmall / 2);
  expect_rejected("control.segment_size");
}
TEST_F(CorruptSegmentTest, TruncatedBelowTheControlRegion) {
  bytes.resize(100);
  expect_rejected("segment.size");
}
TEST_F(CorruptSegmentTest, SlotSizeOutOfRange) {
  poke<std::uint32_t>(24, MAX_SLOT_SIZE + 1);
  expect_rejected("control.slot_size");
}
TEST_F(CorruptSegmentTest, SlotStrideMismatch) {
  poke<std::uint32_t>(28, 64);
  expect_rejected("control.slot_stride");
}
TEST_F(CorruptSegmentTest, HugeSlotCount) {
  poke<std::uint32_t>(32, 0xFFFFFFFF);
  expect_rejected("control.slots_per_direction");
}
TEST_F(CorruptSegmentTest, ZeroSlotCount) {
  poke<std::uint32_t>(32, 0);
  expect_rejected("control.slots_per_direction");
}
TEST_F(CorruptSegmentTest, DistributionMismatch) {
  poke<std::uint32_t>(36 + 4, 1000);  // slot_count[c2d][high]
  expect_rejected("control.slot_count[c2d][high]");
}
TEST_F(CorruptSegmentTest, UnknownFlags) {
  poke<std::uint32_t>(60, 0x80);
  expect_rejected("control.flags");
}
TEST_F(CorruptSegmentTest, BackpressureAboveOne) {
  poke<std::uint32_t>(88, 5000);
  expect_rejected("control.backpressure");
}
TEST_F(CorruptSegmentTest, RingHeaderCapacity) {
  poke<std::uint32_t>(RING_BUFFER_OFFSET + 4, 1);
  expect_rejected("ring[c2d/critical].capacity");
}
TEST_F(CorruptSegmentTest, RingPositions) {
  poke<std::uint64_t>(RING_BUFFER_OFFSET + 64, 1u << 20);  // c2d critical head
  expect_rejected("ring[c2d/critical].head/tail");
}
TEST_F(CorruptSegmentTest, PoisonedSegment) {
  poke<std::uint32_t>(60, FLAG_POISONED);
  expect_rejected("poisoned");
}
TEST_F(CorruptSegmentTest, ShutDownDaemonIsDisconnected) {
  poke<std::uint32_t>(60, FLAG_SHUTDOWN);
  expect_rejected("shut down", ErrorCode::Disconnected);
}

// A peer that stamps the heartbeat far in the future must not make a hung
// daemon look alive forever (that blocked every takeover): such a stamp is
// judged like one that stopped, and a client that watches it stay still
// calls the daemon unresponsive. A stamp a hair ahead (read just after it
// was made) is fresh.
TEST(DaemonHeartbeat, AStampFromTheFutureCountsAsStoppedNotFresh) {  // K-HEARTBEAT
  using namespace std::chrono_literals;
  const std::uint64_t now = 1'000'000'000'000ULL;
  EXPECT_EQ(heartbeat_age_ns(now - 5, now), 5u);
  EXPECT_EQ(heartbeat_age_ns(now + 1000, now), 0u);
  EXPECT_EQ(heartbeat_age_ns(now + kHeartbeatFutureSlackNs + 1, now), kHeartbeatFromTheFuture);
  EXPECT_EQ(heartbeat_age_ns(~0ULL, now), kHeartbeatFromTheFuture);

  test::TempSegmentPath path("hbfuture");
  DaemonOptions o;
  o.heartbeat_interval = std::chrono::nanoseconds(0);  // nobody stamps but us
  auto d = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, 1, o);
  ASSERT_TRUE(d.ok()) << d.error().message();
  EndpointOptions co;
  co.daemon_timeout = 50ms;
  co.sleep_slice = 20ms;
  auto c = Client::connect(path.str(), 1, co);
  ASSERT_TRUE(c.ok()) << c.error().message();
  d->control().heartbeat_ns.store(platform::monotonic_ns() + 3600'000'000'000ULL);  // an hour ahead, forever
  const Status s = c->wait(10s);
  ASSERT_FALSE(s.ok()) << "the client waited out its timeout: a heartbeat from the future still counts as fresh";
  EXPECT_EQ(s.code(), ErrorCode::Disconnected) << s.error().message();
  EXPECT_NE(s.error().detail.find("future"), std::string::npos) << s.error().detail;
}

TEST(DaemonHeartbeat, AThreadStampsItAndIntervalZeroLeavesItToTheApplication) {  // K-HEARTBEAT
  using namespace std::chrono_literals;
  for (auto interval : {std::chrono::nanoseconds(5ms), std::chrono::nanoseconds(0)}) {
    test::TempSegmentPath path("hb");
    DaemonOptions o;
    o.heartbeat_interval = interval;
    o.heartbeat_timeout = 1s;
    auto d = Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, 1, o);
    ASSERT_TRUE(d.ok()) << d.error().message();
    EXPECT_EQ(d->control().heartbeat_interval_ns.load(), static_cast<std::uint64_t>(interval.count()));
    const std::uint64_t first = d->control().heartbeat_ns.load();
    std::this_thread::sleep_for(30ms);
    const std::uint64_t later = d->control().heartbeat_ns.load();
    if (interval.count() > 0) {
      EXPECT_GT(later, first);
    } else {
      EXPECT_EQ(later, first);  // nobody stamped it
      d->heartbeat();
      EXPECT_GT(d->control().heartbeat_ns.load(), first);
    }
  }
  test::TempSegmentPath path("hbbad");
  DaemonOptions bad;
  bad.heartbeat_interval = 1s;
  bad.heartbeat_timeout = 1s;
  EXPECT_EQ(Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, 1, bad).code(), ErrorCode::InvalidArgument);
}

TEST(TransportErrors, EveryCodeHasAName) {
  for (int c = 0; c <= static_cast<int>(ErrorCode::IoError); ++c)
    EXPECT_NE(to_string(static_cast<ErrorCode>(c)), "Unknown");
  EXPECT_EQ(make_error(ErrorCode::Full, "ring x").message(), "Full: ring x");
}

}  // namespace
}  // namespace memlink::shm
