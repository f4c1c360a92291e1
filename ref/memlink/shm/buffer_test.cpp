#include "memlink/shm/buffer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "memlink/shm/segment_age.hpp"
#include "test_support.hpp"

namespace memlink::shm {
namespace {

using test::pattern_matches;
using test::pattern_payload;

RingBuffer make_ring(std::uint32_t capacity = 8, std::uint32_t slot_size = 256) {
  auto r = RingBuffer::create_owned(capacity, slot_size, Priority::High);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return std::move(r.value());
}

TEST(RingBuffer, OwnedConstructorRequiresPowerOfTwo) {
  EXPECT_EQ(RingBuffer::create_owned(0).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(RingBuffer::create_owned(6).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(RingBuffer::create_owned(8, 0).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(RingBuffer::create_owned(8, MAX_SLOT_SIZE + 1).code(), ErrorCode::InvalidArgument);
  EXPECT_TRUE(RingBuffer::create_owned(1).ok());
}

TEST(RingBuffer, WriteReadRoundTripAndFifo) {
  RingBuffer ring = make_ring();
  EXPECT_TRUE(ring.is_empty());
  for (std::uint64_t i = 0; i < 5; ++i) {
    auto id = ring.write_slot(pattern_payload(i, 10 + i));
    ASSERT_TRUE(id.ok()) << id.error().message();
    EXPECT_EQ(id->position, i);
  }
  EXPECT_EQ(ring.len(), 5u);
  std::vector<std::byte> out(256);
  for (std::uint64_t i = 0; i < 5; ++i) {
    auto info = ring.read_slot(out);
    ASSERT_TRUE(info.ok()) << info.error().message();
    EXPECT_EQ(info->sequence, i);  // T-SEQ: its position
    EXPECT_EQ(info->length, 10 + i);
    EXPECT_EQ(info->priority, Priority::High);
    EXPECT_TRUE(pattern_matches(std::span(out.data(), info->length), i));
  }
  EXPECT_EQ(ring.read_slot(out).code(), ErrorCode::Empty);
}

TEST(RingBuffer, FullThenWrapsAround) {
  RingBuffer ring = make_ring(4, 64);
  std::vector<std::byte> out(64);
  std::uint64_t next_read = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    if (ring.is_full()) {
      EXPECT_EQ(ring.write_slot(pattern_payload(i, 8)).code(), ErrorCode::Full);
      auto info = ring.read_slot(out);
      ASSERT_TRUE(info.ok());
      ASSERT_EQ(info->sequence, next_read++);
    }
    ASSERT_TRUE(ring.write_slot(pattern_payload(i, 8)).ok());
  }
  EXPECT_EQ(ring.head(), 1000u);
  EXPECT_EQ(ring.count_states().of(SlotState::Ready), 4u);
}

TEST(RingBuffer, PayloadSizeBoundaries) {
  RingBuffer ring = make_ring(4, MAX_SLOT_SIZE);
  std::vector<std::byte> out(MAX_SLOT_SIZE);
  EXPECT_TRUE(ring.write_slot({}).ok());
  EXPECT_TRUE(ring.write_slot(pattern_payload(2, MAX_SLOT_SIZE)).ok());
  auto too_big = ring.write_slot(pattern_payload(3, MAX_SLOT_SIZE + 1));
  EXPECT_EQ(too_big.code(), ErrorCode::MessageTooLarge);
  EXPECT_EQ(ring.len(), 2u);
  EXPECT_EQ(ring.read_slot(out)->length, 0u);
  auto big = ring.read_slot(out);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->length, MAX_SLOT_SIZE);
  EXPECT_TRUE(pattern_matches(out, 2));
}

TEST(RingBuffer, SmallOutputBufferConsumesNothing) {
  RingBuffer ring = make_ring();
  ASSERT_TRUE(ring.write_slot(pattern_payload(1, 100)).ok());
  std::vector<std::byte> small(99);
  EXPECT_EQ(ring.read_slot(small).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(ring.len(), 1u);
  std::vector<std::byte> out(100);
  EXPECT_TRUE(ring.read_slot(out).ok());
}

TEST(RingBuffer, PeekDoesNotConsume) {
  RingBuffer ring = make_ring();
  EXPECT_EQ(ring.peek_slot().code(), ErrorCode::Empty);
  ASSERT_TRUE(ring.write_slot(pattern_payload(7, 33)).ok());
  auto p = ring.peek_slot();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->sequence, 0u);  // T-SEQ: the first position
  EXPECT_EQ(p->length, 33u);
  EXPECT_EQ(ring.len(), 1u);
}

TEST(RingBuffer, MessageStillBeingWrittenIsNotReadable) {
  RingBuffer ring = make_ring();
  ASSERT_TRUE(ring.write_slot(pattern_payload(1, 8)).ok());
  // Simulate a producer that claimed position 0 and stopped in Writing.
  ring.slot_header(0).word.store(slot_word(SlotState::Writing, platform::current_pid(), 0));
  std::vector<std::byte> out(256);
  EXPECT_EQ(ring.read_slot(out).code(), ErrorCode::Empty);
  EXPECT_FALSE(ring.has_message());
  EXPECT_EQ(ring.len(), 1u);
}

// --- corruption: a peer's bytes are untrusted (SPEC V-*) ------------------

class CorruptRing : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ring.write_slot(pattern_payload(1, 40)).ok());
    ASSERT_TRUE(ring.write_slot(pattern_payload(2, 40)).ok());
  }
  // After a corrupt slot is dropped, the next good one must still come out.
  void expect_dropped_then_next_ok(const char* field) {
    auto r = ring.read_slot(out);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.code(), ErrorCode::CorruptSegment);
    EXPECT_NE(r.error().detail.find(field), std::string::npos) << r.error().detail;
    EXPECT_EQ(ring.corrupt_skipped(), 1u);
    auto next = ring.read_slot(out);
    ASSERT_TRUE(next.ok()) << next.error().message();
    EXPECT_EQ(next->sequence, 1u);  // the second position
    EXPECT_TRUE(pattern_matches(std::span(out.data(), next->length), 2));
  }
  RingBuffer ring = make_ring(4, 128);
  std::vector<std::byte> out = std::vector<std::byte>(128);
};

TEST_F(CorruptRing, LengthLargerThanTheSlotIsRejected) {
  ring.slot_header(0).length = 1u << 30;
  expect_dropped_then_next_ok("slot[0].length");
}

TEST_F(CorruptRing, PayloadChecksumMismatchIsRejected) {
  reinterpret_cast<unsigned char*>(&ring.slot_header(0))[SLOT_HEADER_SIZE + 5] ^= 0xFF;
  expect_dropped_then_next_ok("slot[0].checksum");
}

TEST_F(CorruptRing, WrongPriorityIsRejected) {
  ring.slot_header(0).priority = 7;
  expect_dropped_then_next_ok("slot[0].priority");
}

TEST_F(CorruptRing, WrongPositionIsRejected) {
  ring.slot_header(0).position = 12345;
  expect_dropped_then_next_ok("slot[0].position");
}

TEST_F(CorruptRing, ASequenceThatIsNotThePositionIsRejected) {
  // T-SEQ: a writer numbers a message by its position; any other number
  // was not written by a writer of this ring.
  ring.slot_header(0).sequence = 7;
  expect_dropped_then_next_ok("slot[0].sequence");
}

TEST_F(CorruptRing, GarbageStateIsRejected) {
  poke_state_byte(ring.slot_header(0), 0xEE);
  expect_dropped_then_next_ok("slot[0].state");
}

TEST_F(CorruptRing, InconsistentHeadAndTailAreReportedNotFollowed) {
  auto* hdr = reinterpret_cast<RingHeader*>(reinterpret_cast<std::byte*>(&ring.slot_header(0)) -
                                            RING_HEADER_SIZE);
  hdr->head.store(1000);  // 1000 - 0 > capacity 4
  EXPECT_FALSE(ring.positions_consistent());
  // R-POSITIONS: the consumer decides by the word at its tail and never indexes
  // with head: the two messages written before are delivered intact, and
  // the empty tail after them is Empty, not a slot picked by head.
  for (std::uint64_t tag : {1u, 2u}) {
    auto m = ring.read_slot(out);
    ASSERT_TRUE(m.ok()) << m.error().message();
    EXPECT_EQ(m->sequence, tag - 1);  // positions 0 and 1
    EXPECT_TRUE(pattern_matches(std::span(out.data(), m->length), tag));
  }
  EXPECT_EQ(ring.read_slot(out).code(), ErrorCode::Empty);
  // R-POSITIONS: reported by check_positions() (an idle consumer asks it
  // once per sleep slice) and by a producer whose tail hint cannot vouch
  // for the head it sees.
  auto r = ring.check_positions();
  EXPECT_EQ(r.code(), ErrorCode::CorruptSegment);
  EXPECT_NE(r.error().detail.find("head/tail"), std::string::npos);
  EXPECT_EQ(ring.write_slot(pattern_payload(3, 8)).code(), ErrorCode::CorruptSegment);
  hdr->head.store(2);
  hdr->tail.store(3);  // tail past head
  EXPECT_EQ(ring.check_positions().code(), ErrorCode::CorruptSegment);
  // A held or garbage word makes the consumer ask head too.
  store_word(ring.slot_header(3), slot_word(SlotState::Reading, 4242, 0));
  EXPECT_EQ(ring.read_slot(out).code(), ErrorCode::CorruptSegment);
  EXPECT_EQ(ring.peek_slot().code(), ErrorCode::CorruptSegment);
}

// R-POSITIONS: take() trusts a Ready word without reading head, so a word a
// peer forged at a position nobody claimed must not make the consumer move
// its tail past head, whichever validation the slot then fails.
TEST(ForgedReadyWord, AtAnUnclaimedTailIsPutBackNotSkippedPastHead) {
  for (const char* field : {"length", "checksum"}) {
    SCOPED_TRACE(field);
    RingBuffer ring = make_ring(4, 128);
    std::vector<std::byte> out(128);
    ASSERT_TRUE(ring.write_slot(pattern_payload(1, 16)).ok());
    ASSERT_TRUE(ring.read_slot(out).ok());  // tail = head = 1
    SlotHeader& slot = ring.slot_header(1);
    slot.position = 1;
    slot.priority = static_cast<std::uint8_t>(ring.priority());
    slot.length = std::string_view(field) == "length" ? 1u << 20 : 8u;
    slot.checksum = 0xDEADBEEF;  // wrong for any 8 bytes we left there
    store_word(slot, slot_word(SlotState::Ready, 0, 0));
    auto r = ring.read_slot(out);
    EXPECT_EQ(r.code(), ErrorCode::CorruptSegment) << (r.ok() ? "delivered a forged message" : r.error().message());
    EXPECT_EQ(ring.tail(), 1u);
    EXPECT_EQ(ring.head(), 1u);
    EXPECT_TRUE(ring.positions_consistent());
    EXPECT_EQ(load_word(slot), slot_word(SlotState::Empty, 0, 0)) << "the word its writer expects";
    EXPECT_EQ(ring.corrupt_skipped(), 1u);
    ASSERT_TRUE(ring.write_slot(pattern_payload(2, 16)).ok());
    auto m = ring.read_slot(out);
    ASSERT_TRUE(m.ok()) << m.error().message();
    EXPECT_EQ(m->sequence, 1u);  // the position the forged word sat at
    EXPECT_TRUE(pattern_matches(std::span(out.data(), m->length), 2));
  }
}

TEST(RingBufferAttach, ValidatesTheHeaderAgainstTheExpectedGeometry) {
  alignas(64) static std::byte mem[RING_HEADER_SIZE + 4 * 128];
  ASSERT_TRUE(RingBuffer::format(mem, sizeof mem, 4, 64, Direction::DaemonToClient, Priority::Low).ok());
  EXPECT_TRUE(RingBuffer::attach(mem, sizeof mem, 4, 64, Direction::DaemonToClient, Priority::Low).ok());
  auto wrong_cap = RingBuffer::attach(mem, sizeof mem, 2, 64, Direction::DaemonToClient, Priority::Low);
  EXPECT_EQ(wrong_cap.code(), ErrorCode::CorruptSegment);
  EXPECT_NE(wrong_cap.error().detail.find("capacity"), std::string::npos);
  EXPECT_EQ(RingBuffer::attach(mem, sizeof mem, 4, 64, Direction::ClientToDaemon, Priority::Low).code(),
            ErrorCode::CorruptSegment);
  // A region too small for the claimed geometry is refused before any access.
  EXPECT_EQ(RingBuffer::attach(mem, sizeof mem, 5, 64, Direction::DaemonToClient, Priority::Low).code(),
            ErrorCode::InvalidArgument);
  reinterpret_cast<RingHeader*>(mem)->ring_magic = 0;
  EXPECT_EQ(RingBuffer::attach(mem, sizeof mem, 4, 64, Direction::DaemonToClient, Priority::Low).code(),
            ErrorCode::CorruptSegment);
}

}  // namespace
}  // namespace memlink::shm

namespace memlink::shm {
namespace {

TEST(RingBufferSteps, EachStopLeavesTheStateACrashWould) {
  RingBuffer ring = make_ring(4, 64);
  std::vector<std::byte> out(64);
  // Writer stopped after claim: Writing, unreadable, still occupies a slot.
  auto id = ring.claim();
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(load_state(ring.slot_header(id->index)), static_cast<std::uint8_t>(SlotState::Writing));
  EXPECT_EQ(ring.len(), 1u);
  EXPECT_EQ(ring.read_slot(out).code(), ErrorCode::Empty);
  // Finishing the steps publishes it.
  ring.fill(*id, pattern_payload(9, 20));
  EXPECT_EQ(ring.read_slot(out).code(), ErrorCode::Empty);
  EXPECT_TRUE(ring.publish(*id));
  // Reader stopped after take: Reading; a second consumer is refused.
  auto info = ring.take(out);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->sequence, id->position);  // T-SEQ
  EXPECT_EQ(load_state(ring.slot_header(info->slot.index)), static_cast<std::uint8_t>(SlotState::Reading));
  EXPECT_EQ(ring.read_slot(out).code(), ErrorCode::InvalidState);
  ring.complete(info->slot);
  EXPECT_EQ(load_state(ring.slot_header(info->slot.index)), static_cast<std::uint8_t>(SlotState::Done));
  EXPECT_EQ(ring.read_slot(out).code(), ErrorCode::InvalidState);
  EXPECT_EQ(ring.len(), 1u);
  ring.release(info->slot);
  EXPECT_EQ(ring.len(), 0u);
  EXPECT_EQ(ring.count_states().of(SlotState::Empty), 4u);
}

#if !defined(__SANITIZE_THREAD__)  // the peer's writes race by design: TSan would report them, not the bug
// SPEC V-ONCE with a peer that keeps flipping one payload byte while the
// consumer reads (a buggy or hostile process sharing the segment): every
// read is either dropped as corrupt or delivers exactly what was written.
// A consumer that verifies the checksum over the shared slot and copies
// separately can copy a flipped byte and check a restored one. The peer
// may or may not overlap a given read (two threads on a loaded machine);
// the assertion holds either way, and the count of dropped reads says how
// often it did.
TEST(RingBuffer, APeerFlippingPayloadBytesNeverGetsUncheckedBytesDelivered) {
  RingBuffer ring = make_ring(1, 64);
  auto* byte = reinterpret_cast<volatile std::uint8_t*>(&ring.slot_header(0)) + SLOT_HEADER_SIZE + 3;
  std::atomic<bool> stop{false};
  std::thread peer([&] {
    while (!stop.load(std::memory_order_relaxed)) *byte = static_cast<std::uint8_t>(*byte ^ 0x5Au);
  });
  std::vector<std::byte> out(64);
  int delivered = 0, dropped = 0, differ = 0;
  for (std::uint64_t i = 0; i < 1000000; ++i) {
    ASSERT_TRUE(ring.write_slot(pattern_payload(i, 32)).ok());
    auto info = ring.read_slot(out);
    if (info) {
      ++delivered;
      differ += !pattern_matches(std::span(out.data(), info->length), i);
    } else {
      ASSERT_EQ(info.code(), ErrorCode::CorruptSegment) << info.error().message();
      ++dropped;
    }
  }
  stop.store(true);
  peer.join();
  EXPECT_EQ(differ, 0) << differ << " of " << delivered << " delivered messages differ from what was written ("
                       << dropped << " dropped as corrupt)";
  RecordProperty("dropped_as_corrupt", dropped);
}
#endif

// SPEC C-AGE: a ring formatted aged passes its generation's wrap (2^24
// laps) and runs into the end of its positions within a few messages.
RingBuffer aged_ring(std::vector<std::byte>& mem, std::uint32_t capacity, SegmentAge age) {
  mem.assign(RingBuffer::bytes_for(capacity, 64) + 64, std::byte{0});
  auto* at = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(mem.data()) + 63) / 64 * 64);
  auto r = RingBuffer::format(at, RingBuffer::bytes_for(capacity, 64), capacity, 64, Direction::ClientToDaemon,
                              Priority::High, first_position(age, capacity));
  EXPECT_TRUE(r.ok()) << r.error().message();
  return std::move(r.value());
}

TEST(RingBuffer, AgedRingCrossesTheGenerationWrap) {
  for (std::uint32_t capacity : {1u, 3u, 4u}) {
    std::vector<std::byte> mem;
    RingBuffer ring = aged_ring(mem, capacity, SegmentAge::LapWrap);
    const std::uint64_t first = first_position(SegmentAge::LapWrap, capacity);
    EXPECT_EQ(ring.head(), first);
    std::vector<std::byte> out(64);
    // Three laps: the generation goes 2^24 - 1 -> 0 -> 1 for every slot.
    for (std::uint64_t i = 0; i < 3 * capacity + 2; ++i) {
      auto id = ring.write_slot(pattern_payload(i, 8));
      ASSERT_TRUE(id.ok()) << "capacity " << capacity << " message " << i << ": " << id.error().message();
      EXPECT_EQ(id->generation, generation_of(first + i, capacity));
      auto info = ring.read_slot(out);
      ASSERT_TRUE(info.ok()) << "capacity " << capacity << " message " << i << ": " << info.error().message();
      EXPECT_EQ(info->sequence, first + i);
      EXPECT_TRUE(pattern_matches(std::span(out.data(), info->length), i));
    }
  }
}

TEST(RingBuffer, ExhaustedRingIsFullForGood) {
  const std::uint32_t capacity = 2;
  std::vector<std::byte> mem;
  RingBuffer ring = aged_ring(mem, capacity, SegmentAge::PositionEnd);
  std::vector<std::byte> out(64);
  // 2c + 1 messages fit; the tail passes 2^64 - c on the way, where a room
  // check by `tail + capacity` would overflow.
  for (std::uint64_t i = 0; i < 2 * capacity + 1; ++i) {
    ASSERT_TRUE(ring.write_slot(pattern_payload(i, 8)).ok()) << "message " << i;
    ASSERT_TRUE(ring.read_slot(out).ok()) << "message " << i;
  }
  EXPECT_EQ(ring.head(), kLastPosition);
  EXPECT_EQ(ring.write_slot(pattern_payload(9, 8)).code(), ErrorCode::Full);  // R-POSITIONS
  EXPECT_EQ(ring.head(), kLastPosition);
  EXPECT_EQ(ring.read_slot(out).code(), ErrorCode::Empty);
  EXPECT_TRUE(ring.positions_consistent());
}

TEST(SegmentAge, EpochSkipsZeroAndAgesParse) {
  EXPECT_EQ(next_epoch(1), 2u);
  EXPECT_EQ(next_epoch(first_epoch(SegmentAge::LapWrap)), 1u);
  EXPECT_EQ(next_epoch(first_epoch(SegmentAge::PositionEnd)), ~std::uint64_t{0});
  for (SegmentAge a : kAllSegmentAges) EXPECT_EQ(parse_segment_age(to_string(a)), a);
  EXPECT_FALSE(parse_segment_age("old").has_value());
  // Slot i of a ring starting at P is Empty of the lap of the first position >= P it serves.
  EXPECT_EQ(first_generation(first_position(SegmentAge::LapWrap, 4), 4, 3), kGenerationMask);
  EXPECT_EQ(first_generation(first_position(SegmentAge::LapWrap, 4), 4, 0), 0u);
}

}  // namespace
}  // namespace memlink::shm
