// Zero-copy loans and views (SPEC T-LOAN): the same slot protocol as
// write/read, with the payload written and read where it lies.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "memlink/shm/buffer.hpp"
#include "memlink/shm/recovery.hpp"
#include "memlink/shm/transport.hpp"
#include "test_support.hpp"

namespace memlink::shm {
namespace {

using namespace std::chrono_literals;
using test::pattern_matches;
using test::pattern_payload;

void put(std::span<std::byte> into, std::span<const std::byte> what) {
  ASSERT_LE(what.size(), into.size());
  std::memcpy(into.data(), what.data(), what.size());
}

std::string read_one(RingBuffer& ring) {
  std::vector<std::byte> buf(ring.slot_size());
  auto r = ring.read_slot(buf);
  if (!r) return "<" + std::string(to_string(r.code())) + ">";
  return std::string(reinterpret_cast<const char*>(buf.data()), r->length);
}

TEST(RingLoan, ALoanIsWrittenInPlaceAndAViewReadsTheSameBytes) {
  auto ring = RingBuffer::create_owned(4, 256);
  ASSERT_TRUE(ring.ok());
  auto loan = ring->loan(200);
  ASSERT_TRUE(loan.ok()) << loan.error().message();
  ASSERT_EQ(loan->bytes.size(), 200u);
  EXPECT_EQ(load_slot_word(ring->slot_header(loan->slot.index)).state, static_cast<std::uint8_t>(SlotState::Writing));
  put(loan->bytes, pattern_payload(7, 150));
  EXPECT_EQ(ring->commit(*loan, 201).code(), ErrorCode::InvalidArgument);  // past the loan: refused, not cut
  EXPECT_EQ(load_slot_word(ring->slot_header(loan->slot.index)).state, static_cast<std::uint8_t>(SlotState::Writing));
  ASSERT_TRUE(ring->commit(*loan, 150).ok());

  auto view = ring->take_view();
  ASSERT_TRUE(view.ok()) << view.error().message();
  EXPECT_EQ(view->info.length, 150u);
  EXPECT_EQ(view->info.sequence, loan->slot.position);  // T-SEQ
  EXPECT_EQ(view->bytes.data(), loan->bytes.data()) << "a view is the slot itself, not a copy";
  EXPECT_TRUE(pattern_matches(view->bytes, 7));
  EXPECT_EQ(load_slot_word(ring->slot_header(view->info.slot.index)).state,
            static_cast<std::uint8_t>(SlotState::Reading));
  ring->complete(view->info.slot);
  ring->release(view->info.slot);
  EXPECT_TRUE(ring->is_empty());
  // Loans and copies share the ring: a whole lap of each goes through.
  for (int i = 0; i < 8; ++i) {
    auto l = ring->loan(3);
    ASSERT_TRUE(l.ok()) << i;
    put(l->bytes, as_bytes("abc"));
    ASSERT_TRUE(ring->commit(*l, 3).ok());
    EXPECT_EQ(read_one(*ring), "abc");
  }
}

TEST(RingLoan, TooLargeAndFullAreRefusedWithoutClaimingAPosition) {  // T-TOO-LARGE, R-CAPACITY
  auto ring = RingBuffer::create_owned(2, 64);
  ASSERT_TRUE(ring.ok());
  auto big = ring->loan(65);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.code(), ErrorCode::MessageTooLarge);
  EXPECT_EQ(ring->head(), 0u);
  ASSERT_TRUE(ring->loan(64).ok());
  ASSERT_TRUE(ring->loan(0).ok());
  auto full = ring->loan(1);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.code(), ErrorCode::Full);
  EXPECT_EQ(ring->head(), 2u);
}

TEST(RingLoan, AnOpenLoanHoldsItsPositionAndLaterMessagesWaitBehindIt) {  // R-FIFO
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  auto first = ring->loan(5);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(ring->write_slot(as_bytes("second")).ok());
  EXPECT_EQ(read_one(*ring), "<Empty>");  // the loan's position comes first
  put(first->bytes, as_bytes("first"));
  ASSERT_TRUE(ring->commit(*first, 5).ok());
  EXPECT_EQ(read_one(*ring), "first");
  EXPECT_EQ(read_one(*ring), "second");
}

TEST(RingLoan, BytesChangedAfterTheCommitAreDroppedNotViewed) {  // V-SLOT
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  auto loan = ring->loan(8);
  ASSERT_TRUE(loan.ok());
  put(loan->bytes, as_bytes("original"));
  ASSERT_TRUE(ring->commit(*loan, 8).ok());
  loan->bytes[3] = std::byte{'X'};  // a peer scribbling on the published slot
  ASSERT_TRUE(ring->write_slot(as_bytes("next")).ok());
  auto view = ring->take_view();
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.code(), ErrorCode::CorruptSegment);
  EXPECT_NE(view.error().detail.find("checksum"), std::string::npos) << view.error().detail;
  EXPECT_EQ(ring->corrupt_skipped(), 1u);
  auto next = ring->take_view();
  ASSERT_TRUE(next.ok()) << next.error().message();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(next->bytes.data()), next->bytes.size()), "next");
}

// K-FENCE for take_view: recovery_test.cpp's Fence test runs it for both takes.

TEST(RingLoan, ALoanLeftByADeadWriterIsReclaimedAndItsLateCommitIsNotSent) {  // K-WRITING
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  auto loan = ring->loan(4);
  ASSERT_TRUE(loan.ok());
  put(loan->bytes, as_bytes("lost"));
  poke_owner(ring->slot_header(loan->slot.index), test::pid_of_exited_process());
  ASSERT_TRUE(ring->write_slot(as_bytes("after")).ok());
  RecoveryPolicy now;
  now.stale_after = 0ns;
  now.claim_timeout = 0ns;
  TailRecovery tails;
  EXPECT_EQ(tails.run(*ring, now).reclaimed_writing, 1u);
  auto late = ring->commit(*loan, 4);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.code(), ErrorCode::InvalidState);
  EXPECT_EQ(read_one(*ring), "after");
  EXPECT_EQ(read_one(*ring), "<Empty>");
}

class EndpointLoan : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = Daemon::create(path.str(), 64 * 1024, 7);
    ASSERT_TRUE(d.ok()) << d.error().message();
    daemon.emplace(std::move(d.value()));
    auto c = Client::connect(path.str(), 7);
    ASSERT_TRUE(c.ok()) << c.error().message();
    client.emplace(std::move(c.value()));
  }
  test::TempSegmentPath path{"loan"};
  std::optional<Daemon> daemon;
  std::optional<Client> client;
};

TEST_F(EndpointLoan, LoansAndViewsCarrySequencesPrioritiesAndCounters) {  // T-SEQ, T-COUNTERS, R-ORDER
  auto low = client->loan(Priority::Low, 100);
  ASSERT_TRUE(low.ok()) << low.error().message();
  auto critical = client->loan(Priority::Critical, 300);
  ASSERT_TRUE(critical.ok());
  // T-SEQ: each ring numbers by position, so two first messages are both 0.
  EXPECT_EQ(low->sequence, low->slot.slot.position);
  EXPECT_EQ(critical->sequence, 0u);
  EXPECT_EQ(low->sequence, 0u);
  put(low->slot.bytes, pattern_payload(1, 100));
  put(critical->slot.bytes, pattern_payload(2, 300));
  ASSERT_TRUE(client->commit(*low, 100).ok());
  ASSERT_TRUE(client->commit(*critical, 300).ok());
  EXPECT_EQ(c2d_published(daemon->control()), 2u);

  ASSERT_TRUE(daemon->wait(1s).ok());
  auto first = daemon->take_view();
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->info.priority, Priority::Critical);
  EXPECT_EQ(first->info.sequence, critical->sequence);
  EXPECT_TRUE(pattern_matches(first->bytes, 2));
  ASSERT_TRUE(daemon->release(*first).ok());
  auto second = daemon->take_view();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->info.priority, Priority::Low);
  EXPECT_EQ(second->info.sequence, low->sequence);
  EXPECT_TRUE(pattern_matches(second->bytes, 1));
  ASSERT_TRUE(daemon->release(*second).ok());
  EXPECT_EQ(daemon->control().daemon_tail.load(), 2u);
  EXPECT_EQ(daemon->take_view().code(), ErrorCode::Empty);
}

TEST_F(EndpointLoan, ACommitLongerThanTheLoanIsRefusedAndTheLoanStaysOpen) {
  auto loan = client->loan(Priority::High, 10);
  ASSERT_TRUE(loan.ok());
  auto r = client->commit(*loan, 11);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::InvalidArgument);
  EXPECT_NE(r.error().detail.find("loan of 10"), std::string::npos) << r.error().detail;
  put(loan->slot.bytes, as_bytes("0123456789"));
  ASSERT_TRUE(client->commit(*loan, 10).ok());
  std::vector<std::byte> buf(64 * 1024);
  auto m = daemon->read(buf);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), m->length), "0123456789");
}

TEST_F(EndpointLoan, ALoanTooLargeForTheSlotIsMessageTooLarge) {  // T-TOO-LARGE
  auto r = client->loan(Priority::Low, daemon->geometry().slot_size + 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::MessageTooLarge);
  EXPECT_EQ(client->outbound().ring(Priority::Low).head(), 0u);
}

// F-WAKE, the waker's half, without timing: a registered sleeper (waiters
// > 0) must see the futex word move when a commit publishes, or its futex
// wait would not return (a lost wake-up the read would then hide).
TEST_F(EndpointLoan, ACommitBumpsTheSleepersFutexWord) {  // F-WAKE
  FutexWord& fw = daemon->control().daemon_futex;
  const std::uint32_t before = fw.word.load();
  auto quiet = client->loan(Priority::High, 1);
  ASSERT_TRUE(quiet.ok());
  ASSERT_TRUE(client->commit(*quiet, 1).ok());
  EXPECT_EQ(fw.word.load(), before) << "nobody sleeps: no wake to pay for";
  fw.waiters.fetch_add(1);  // as a sleeper does before its futex wait
  auto loan = client->loan(Priority::Low, 4);
  ASSERT_TRUE(loan.ok()) << loan.error().message();
  put(loan->slot.bytes, as_bytes("wake"));
  ASSERT_TRUE(client->commit(*loan, 4).ok());
  EXPECT_NE(fw.word.load(), before) << "a sleeper registered, and the commit did not move its word";
  fw.waiters.fetch_sub(1);
}

}  // namespace
}  // namespace memlink::shm
