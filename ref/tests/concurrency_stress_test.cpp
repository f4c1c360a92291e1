// Many producer threads and one consumer on one mapping, to run under
// ThreadSanitizer (TSan cannot see other processes, so the concurrency of the
// rings is checked with threads sharing a mapping). Checks: nothing lost,
// nothing duplicated, FIFO per (producer, priority), checksums intact, and
// T-SEQ (every message its own sequence number, growing per producer and
// priority).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstring>
#include <thread>
#include <set>
#include <unordered_set>
#include <vector>

#include "memlink/shm/buffer.hpp"
#include "memlink/shm/transport.hpp"
#include "test_support.hpp"

namespace memlink::shm {
namespace {

Result<SlotId> send_by_loan(Client& client, Priority p, const std::vector<std::byte>& payload) {
  for (;;) {
    auto loan = client.loan(p, payload.size());
    if (loan) {
      std::memcpy(loan->slot.bytes.data(), payload.data(), payload.size());
      return client.commit(*loan, payload.size());
    }
    if (loan.code() != ErrorCode::Full) return loan.error();
    std::this_thread::yield();
  }
}

// A view, copied out and released (the copy is what the checks read).
Result<MessageInfo> read_by_view(Daemon& daemon, std::vector<std::byte>& buf) {
  auto v = daemon.take_view();
  if (!v) return v.error();
  std::memcpy(buf.data(), v->bytes.data(), v->bytes.size());
  const MessageInfo info = v->info;
  (void)daemon.release(*v);
  return info;
}

using namespace std::chrono_literals;

constexpr int kProducers = 4;
#if defined(__SANITIZE_THREAD__)
constexpr std::uint64_t kPerProducer = 5000;
#else
constexpr std::uint64_t kPerProducer = 50000;
#endif

std::uint64_t tag(int producer, Priority p, std::uint64_t i) {
  return (std::uint64_t(producer) << 60) | (std::uint64_t(p) << 56) | i;
}

void run(WaitStrategy strategy, std::size_t segment_size, std::uint32_t slot_size) {
  test::TempSegmentPath path("stress");
  DaemonOptions o;
  o.endpoint.wait_strategy = strategy;
  o.slot_size = slot_size;
  auto daemon = Daemon::create(path.str(), segment_size, 1, o);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  EndpointOptions co;
  co.wait_strategy = strategy;
  auto client = Client::connect(path.str(), 1, co);  // one mapping shared by the producers
  ASSERT_TRUE(client.ok());

  std::atomic<int> failures{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kProducers; ++t) {
    producers.emplace_back([&, t] {
      std::array<std::uint64_t, kPriorityCount> next{};
      for (std::uint64_t n = 0; n < kPerProducer; ++n) {
        const Priority p = kAllPriorities[(n + t) % kPriorityCount];
        const std::uint64_t tg = tag(t, p, next[static_cast<std::size_t>(p)]++);
        const auto payload = test::pattern_payload(tg, 8 + n % (slot_size - 7));
        // Every other message through a loan (SPEC T-LOAN): a Full ring is
        // retried, as the consumer keeps reading.
        auto r = n % 2 == 0 ? client->write_blocking(p, payload, 30s) : send_by_loan(*client, p, payload);
        if (!r) {
          ADD_FAILURE() << "producer " << t << ": " << r.error().message();
          failures.fetch_add(1);
          return;
        }
      }
    });
  }

  std::array<std::array<std::uint64_t, kPriorityCount>, kProducers> next{};
  std::array<std::array<std::int64_t, kPriorityCount>, kProducers> last_seq;
  for (auto& a : last_seq) a.fill(-1);
  std::set<std::pair<Priority, std::uint64_t>> sequences;  // (ring, sequence)
  std::vector<std::byte> buf(slot_size);
  const std::uint64_t total = kProducers * kPerProducer;
  std::uint64_t got = 0;
  while (got < total && failures.load() == 0) {
    auto m = got % 2 == 0 ? daemon->read(buf) : read_by_view(*daemon, buf);
    if (!m) {
      ASSERT_EQ(m.code(), ErrorCode::Empty) << m.error().message();
      auto s = daemon->wait(1s);
      ASSERT_TRUE(s.ok() || s.code() == ErrorCode::Timeout) << s.error().message();
      continue;
    }
    std::span<const std::byte> payload(buf.data(), m->length);
    const std::uint64_t tg = test::pattern_tag(payload);
    const int producer = static_cast<int>(tg >> 60);
    ASSERT_LT(producer, kProducers);
    ASSERT_EQ(static_cast<Priority>((tg >> 56) & 0xF), m->priority);
    auto& expect = next[producer][static_cast<std::size_t>(m->priority)];
    ASSERT_EQ(tg & ((1ULL << 56) - 1), expect) << "FIFO per (producer, priority) broken";
    ASSERT_TRUE(test::pattern_matches(payload, tg));
    ASSERT_TRUE(sequences.insert({m->priority, m->sequence}).second)
        << "T-SEQ: sequence " << m->sequence << " delivered twice from one ring";
    auto& last = last_seq[producer][static_cast<std::size_t>(m->priority)];
    ASSERT_GT(static_cast<std::int64_t>(m->sequence), last) << "T-SEQ: a producer's sequence numbers went back";
    last = static_cast<std::int64_t>(m->sequence);
    ++expect;
    ++got;
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(got, total);
  EXPECT_EQ(daemon->read(buf).code(), ErrorCode::Empty);
  for (Priority p : kAllPriorities) EXPECT_EQ(daemon->inbound().ring(p).corrupt_skipped(), 0u);
}

// Small rings (few slots) force constant Full / wrap-around contention.
TEST(ConcurrencyStress, ProducersAndConsumerBlockStrategySmallRings) {
  run(WaitStrategy::Block, 64 * 1024, 64 * 4 - 64);
}
TEST(ConcurrencyStress, ProducersAndConsumerAdaptiveStrategy) {
  run(WaitStrategy::Adaptive, DEFAULT_SEGMENT_SIZE, 256);
}
TEST(ConcurrencyStress, ProducersAndConsumerSpinStrategy) {
  run(WaitStrategy::Spin, 256 * 1024, 128);
}

// One ring, no transport around it: producers spin on Full, the consumer
// spins on Empty. Nothing but the slot state's release (the publish) and
// acquire (the consumer's load) orders the consumer's reads of a slot's
// header and payload after the producer's writes (S-PUBLISH), so under
// ThreadSanitizer a weakened side of that pair is a reported race, and in
// any build a torn read is a wrong payload.
TEST(ConcurrencyStress, ProducersAndASpinningConsumerOnOneRing) {
  auto ring = RingBuffer::create_owned(4, 128, Priority::High);
  ASSERT_TRUE(ring.ok()) << ring.error().message();
  constexpr int kRingProducers = 2;
  const std::uint64_t per = kPerProducer / 2;
  std::vector<std::thread> producers;
  for (int t = 0; t < kRingProducers; ++t)
    producers.emplace_back([&, t] {
      for (std::uint64_t n = 0; n < per; ++n) {
        const std::uint64_t tg = tag(t, Priority::High, n);
        for (;;) {
          auto r = ring->write_slot(test::pattern_payload(tg, 8 + n % 100));
          if (r) break;
          ASSERT_EQ(r.code(), ErrorCode::Full) << r.error().message();
          std::this_thread::yield();
        }
      }
    });
  std::array<std::uint64_t, kRingProducers> next{};
  std::vector<std::byte> buf(128);
  for (std::uint64_t got = 0; got < kRingProducers * per;) {
    auto m = ring->read_slot(buf);
    if (!m) {
      ASSERT_EQ(m.code(), ErrorCode::Empty) << m.error().message();
      std::this_thread::yield();
      continue;
    }
    std::span<const std::byte> payload(buf.data(), m->length);
    const std::uint64_t tg = test::pattern_tag(payload);
    const auto producer = static_cast<std::size_t>(tg >> 60);
    ASSERT_LT(producer, static_cast<std::size_t>(kRingProducers));
    ASSERT_EQ(tg & ((1ULL << 56) - 1), next[producer]++) << "FIFO per producer broken";
    ASSERT_TRUE(test::pattern_matches(payload, tg));
    ASSERT_EQ(m->sequence, got) << "T-SEQ: a message is numbered by its position";
    ++got;
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(ring->corrupt_skipped(), 0u);
}

}  // namespace
}  // namespace memlink::shm
