// RingBuffer: one bounded FIFO of slots whose header and slots live in a
// memory region the caller supplies (a mapped segment) or that it owns.
//
// Contract (SPEC R-*):
//  - any number of producers, in any processes, may call write_slot();
//  - exactly one consumer at a time may call read_slot() / peek_slot();
//  - len(), is_empty(), is_full() may be called by anyone (a snapshot).
// Positions are monotonic u64 counters; the slot of position p is p % capacity.
// Producers claim a position by CAS on `head`; the consumer owns `tail`.
// Every value read from the region is validated before use (SPEC V-*): a bad
// value is reported as CorruptSegment naming the field, never dereferenced.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "memlink/shm/divisor.hpp"
#include "memlink/shm/layout.hpp"
#include "memlink/shm/priority.hpp"
#include "memlink/shm/result.hpp"
#include "memlink/shm/slot.hpp"

namespace memlink::shm {

// Where a message sits: its ring position and the slot index it maps to.
struct SlotId {
  std::uint64_t position = 0;
  std::uint32_t index = 0;       // position % capacity
  std::uint32_t generation = 0;  // the lap its slot word carries (SPEC S-WORD)
  friend bool operator==(const SlotId&, const SlotId&) = default;
};

// What the consumer learns about a message (payload copied separately).
struct MessageInfo {
  Priority priority = Priority::Low;
  std::uint64_t sequence = 0;
  std::uint32_t length = 0;
  SlotId slot{};
};

// A claimed slot lent to its writer (zero-copy write): `bytes` is the first
// `size` bytes of the slot's payload, in shared memory. The slot stays
// Writing, held by this process, until commit() publishes it (SPEC T-LOAN).
struct SlotLoan {
  SlotId slot{};
  std::span<std::byte> bytes{};
};

// A message taken for reading in place (zero-copy read): `bytes` is the
// payload in shared memory, verified (V-SLOT) when it was taken. The slot
// stays Reading until complete() + release() (SPEC T-LOAN).
struct SlotView {
  MessageInfo info{};
  std::span<const std::byte> bytes{};
};

// A consumer's proof that it may still consume: the segment's epoch must
// equal `mine` (SPEC K-FENCE). Checked after the take CAS, so that a consumer
// stopped between a check and its CAS cannot take a message after it was
// replaced.
struct Fence {
  const SharedAtomic<std::uint64_t>* epoch = nullptr;
  std::uint64_t mine = 0;
};

// What the consumer sees at its tail, for recovery's decisions (recovery.hpp).
struct TailView {
  std::uint64_t head = 0;
  std::uint64_t tail = 0;
  std::uint64_t word = 0;             // the slot word, raw (SPEC S-WORD)
  std::uint8_t state = 0;             // its state byte
  std::uint32_t owner_pid = 0;        // meaningful in Writing, Reading, Done
  std::uint32_t generation = 0;       // the word's lap
  std::uint32_t tail_generation = 0;  // the lap of the tail position
};

// What the consumer would find at a ring's tail (RingBuffer::tail_readiness).
enum class TailReadiness : std::uint8_t { Nothing, Readable, Held };

// A count of slots in each state, for the inspector and the tests.
struct SlotStateCounts {
  std::uint64_t count[kSlotStateCount] = {};
  std::uint64_t invalid = 0;
  std::uint64_t of(SlotState s) const noexcept { return count[static_cast<std::size_t>(s)]; }
};

// A producer's last sight of a ring's tail, in its own process's memory
// (SPEC R-CLAIM). The tail only grows, so the hint is never ahead of it:
// head - hint < capacity proves there is room without reading the
// consumer's cache line. Threads of one process share a hint (relaxed: it
// is a hint; the slot word's CAS decides); copies start from the value
// they copy.
class TailHint {
 public:
  TailHint() = default;
  TailHint(const TailHint& o) noexcept : v_(o.get()) {}
  TailHint& operator=(const TailHint& o) noexcept {
    v_.store(o.get(), std::memory_order_relaxed);
    return *this;
  }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }
  // Takes a tail this thread read. Two threads racing here may leave the
  // older of their two values: harmless (a hint behind the tail only costs
  // a read of the real one), and cheaper than a locked instruction.
  void raise(std::uint64_t seen) noexcept {
    if (seen > get()) v_.store(seen, std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class RingBuffer {
 public:
  // Writes a fresh ring header and `capacity` Empty slots into `mem`, head
  // and tail at `first` (0, or an aged start: SPEC C-AGE, segment_age.hpp).
  static Result<RingBuffer> format(std::byte* mem, std::size_t bytes, std::uint32_t capacity, std::uint32_t slot_size,
                                   Direction direction, Priority priority, std::uint64_t first = 0);

  // Attaches to a ring formatted by another process, checking its header
  // against the geometry the caller expects (from the validated control region).
  static Result<RingBuffer> attach(std::byte* mem, std::size_t bytes, std::uint32_t capacity,
                                   std::uint32_t slot_size, Direction direction, Priority priority);

  // An in-process ring that owns its memory. capacity must be a power of two
  // (the crate's contract for its standalone ring); slot_size <= MAX_SLOT_SIZE.
  static Result<RingBuffer> create_owned(std::uint32_t capacity, std::uint32_t slot_size = MAX_SLOT_SIZE,
                                         Priority priority = Priority::Low);

  RingBuffer() = default;

  // Copies `data` into the next slot and publishes it Ready. Errors:
  // MessageTooLarge (data > slot_size), Full, CorruptSegment (head/tail or
  // the claimed slot's state are not what the protocol allows).
  Result<SlotId> write_slot(std::span<const std::byte> data);

  // The same two operations in the steps of the slot state machine, for
  // crash simulation and recovery tests: a caller that stops between steps
  // leaves the slot exactly as a process killed there would.
  //   write_slot = claim (head CAS, Empty -> Writing) + fill + publish (-> Ready)
  //   read_slot  = take (validate, Ready -> Reading, copy, verify)
  //                + complete (-> Done) + release (-> Empty, tail + 1)
  // take() returns the same errors as read_slot(); complete() and release()
  // must follow a successful take() of the same slot, in order.
  Result<SlotId> claim();
  void fill(SlotId id, std::span<const std::byte> data);
  bool publish(SlotId id);  // false: the slot was taken from us, not published
  Result<MessageInfo> take(std::span<std::byte> out, const Fence* fence = nullptr);
  void complete(SlotId id);
  // Zero-copy (SPEC T-LOAN): the same protocol steps with the payload
  // written and read where it lies.
  //   loan   = claim, and the slot's payload lent to the caller; errors as
  //            claim() plus MessageTooLarge (size > slot_size)
  //   commit = the header (length, sequence, checksum of the bytes as they
  //            are now) + publish; InvalidArgument for a length past the
  //            loan (nothing changes: the loan stays open), InvalidState where
  //            publish() says false (the slot was taken from this writer)
  //   take_view = take() without the copy: the checksum is verified on the
  //            slot itself; complete() + release() end the view
  Result<SlotLoan> loan(std::size_t size);
  Result<SlotId> commit(const SlotLoan& loan, std::size_t length);
  Result<SlotView> take_view(const Fence* fence = nullptr);
  void release(SlotId id);

  // Recovery's transitions (SPEC K-*), for the consumer only, on the slot at
  // position `tail`, which must be the current tail. Each returns false and
  // changes nothing if the slot is no longer in the expected state. Each step
  // is one CAS or store that a re-run recognises, so recovery may crash and
  // be run again (SPEC K-IDEMPOTENT).
  //   reclaim_writing:  Writing(g) -> Empty(g+1), tail + 1   (K-WRITING)
  //   reclaim_claimed:  Empty(g) at a claimed position -> Empty(g+1),
  //                     tail + 1: the claimer's CAS then fails (K-CLAIMED)
  //   requeue_reading:  Reading(g) -> Ready(g)                 (K-READING)
  //   release_done:     Done(g) -> Empty(g+1), tail + 1, or only tail + 1
  //                     when the slot is Empty(g+1) already     (K-DONE)
  // `judged` is the word recovery saw (TailView::word): the CAS starts from
  // it, so a slot whose holder changed since is left alone (SPEC K-STALE).
  bool reclaim_writing(std::uint64_t tail, std::uint64_t judged);
  bool reclaim_claimed(std::uint64_t tail);
  bool requeue_reading(std::uint64_t tail, std::uint64_t judged);
  bool release_done(std::uint64_t tail, std::uint64_t judged);

  // A snapshot of the tail, or nullopt when the ring holds nothing.
  std::optional<TailView> tail_view() const noexcept;
  // The tail and its word without reading head (TailView::head is 0):
  // recovery asks claimed() only where the answer decides (K-CLAIMED).
  TailView tail_word_view() const noexcept;
  // True when position `tail` is claimed: tail < head <= tail + capacity.
  bool claimed(std::uint64_t tail) const noexcept;
  std::uint64_t reclaimed() const noexcept;

  // Ok if a write of `size` bytes would be accepted now: MessageTooLarge or
  // Full otherwise (a snapshot; another producer may take the last slot).
  Status check_writable(std::size_t size) const;

  // Consumes the oldest Ready message into `out`. Errors: Empty (nothing, or
  // the oldest message is still being written), InvalidArgument (`out` is
  // smaller than the message; nothing is consumed), InvalidState (the slot is
  // held by another consumer), CorruptSegment (the slot failed validation:
  // it is dropped, counted in corrupt_skipped(), and the ring moves on).
  Result<MessageInfo> read_slot(std::span<std::byte> out);

  // Like read_slot() without consuming or copying.
  Result<MessageInfo> peek_slot() const;

  // What a take() at the tail would find now (SPEC T-WAIT, R-HELD): Nothing
  // (empty, or the oldest message still Empty/Writing), Readable (Ready, or
  // something take() must report and drop: a garbage state, broken
  // positions) or Held (Reading/Done: a consumer is mid-read or died there;
  // only that consumer or recovery moves it). Cheap: no allocation.
  TailReadiness tail_readiness() const noexcept;
  // True if a take() would make progress now (Readable). A held tail is not
  // a message: a consumer that waited on it would spin (SPEC T-WAIT).
  bool has_message() const noexcept { return tail_readiness() == TailReadiness::Readable; }

  std::uint64_t len() const noexcept;  // messages claimed and not yet consumed
  bool is_empty() const noexcept { return len() == 0; }
  bool is_full() const noexcept { return len() >= capacity_; }
  std::uint32_t capacity() const noexcept { return capacity_; }
  std::uint32_t slot_size() const noexcept { return slot_size_; }
  Priority priority() const noexcept { return priority_; }
  Direction direction() const noexcept { return direction_; }
  std::uint64_t head() const noexcept;
  std::uint64_t tail() const noexcept;
  std::uint64_t corrupt_skipped() const noexcept;

  // False when head/tail break head - capacity <= tail <= head.
  bool positions_consistent() const noexcept;
  // Both positions by read-modify-writes (the newest values), consistent.
  bool newest_positions(std::uint64_t& head, std::uint64_t& tail) const noexcept;
  // CorruptSegment naming the ring's head/tail when they are broken (SPEC
  // R-POSITIONS). take() does not read head in the common cases, so
  // an idle consumer asks this once per sleep slice.
  Status check_positions() const;

  SlotStateCounts count_states() const noexcept;
  // The header of slot `index` (0 <= index < capacity), for inspection/tests.
  SlotHeader& slot_header(std::uint32_t index) const noexcept;

  // Bytes a ring of this geometry occupies.
  static std::size_t bytes_for(std::uint32_t capacity, std::uint32_t slot_size) noexcept {
    return ring_bytes(capacity, slot_stride_for(slot_size));
  }

 private:
  RingBuffer(RingHeader* hdr, std::uint32_t capacity, std::uint32_t slot_size,
             Direction direction, Priority priority) noexcept;

  std::byte* payload(std::uint32_t index) const noexcept;
  std::string field(std::uint64_t position, const char* name) const;
  Error positions_error(std::uint64_t head, std::uint64_t tail) const;
  // take()'s steps before the payload is read: classify the tail's word,
  // validate the Ready slot (its length must fit `room`), Ready -> Reading,
  // the K-FENCE check. The slot is then Reading, held by this process.
  Result<MessageInfo> enter_reading(std::size_t room, const Fence* fence);
  // V-SLOT's last step: `bytes` (the copy, or the slot itself for a view)
  // against the stored checksum; a mismatch drops the slot (drop_ready).
  Status verify_payload(const MessageInfo& info, std::span<const std::byte> bytes);
  // The header fields a writer stores before publishing; the sequence
  // number is the slot's position (SPEC T-SEQ).
  void fill_header(SlotId id, std::uint32_t length, std::uint32_t checksum);
  // Validates the Ready slot at the tail `at`; fills info or returns the error.
  Status inspect_ready(const SlotHeader& slot, const SlotId& at, MessageInfo& info) const;
  std::uint32_t generation(std::uint64_t position) const noexcept { return locate(position).generation; }
  // Slot index and lap of a position: the hot path's one division, by the
  // capacity's reciprocal (divisor.hpp).
  SlotId locate(std::uint64_t position) const noexcept {
    const auto [lap, index] = by_capacity_.divide(position);
    return {position, index, static_cast<std::uint32_t>(lap) & kGenerationMask};
  }
  // claim(), when the slot of its position was not Empty(g) (SPEC K-CLAIMED).
  Status enter_held_slot(SlotHeader& slot, const SlotId& id, std::uint64_t found);
  // Drops the slot at the tail `at`, counts it, advances tail.
  void skip_corrupt(const SlotId& at);
  // [R-RELEASE.tail] tail: `from` -> `from + 1`, never backwards (SPEC
  // R-RELEASE, K-FENCE): a fenced consumer's late store must not undo its
  // successor's progress.
  void advance_tail(std::uint64_t from) noexcept;
  // A Ready word (now `seen`) at the tail whose slot failed validation:
  // skip_corrupt() at a claimed position; at an unclaimed one (a forged
  // word) the word goes back to Empty of the tail's lap and the tail stays.
  void drop_ready(const SlotId& at, std::uint64_t seen);
  // Recovery's precondition: `tail` is still the tail and the word it judged
  // is `state` of the tail's lap. The tail's slot (and its lap), or null.
  SlotHeader* judged_tail_slot(std::uint64_t tail, std::uint64_t judged, SlotState state,
                               std::uint32_t* generation_out) const;
  Error reclaimed_error(std::uint64_t position) const;
  Error not_published_error(std::uint64_t position) const;
  // True when a claim at `head` would find the ring full, reading the
  // shared tail only when the hint cannot prove there is room; `tail_out`
  // gets the tail it judged by (SPEC R-CLAIM).
  bool full_at(std::uint64_t head, std::uint64_t* tail_out) const noexcept;

  RingHeader* hdr_ = nullptr;
  std::byte* slots_ = nullptr;
  std::uint32_t capacity_ = 0;
  PositionDivisor by_capacity_;  // of capacity_
  std::uint32_t slot_size_ = 0;
  std::uint32_t stride_ = 0;
  Direction direction_ = Direction::ClientToDaemon;
  Priority priority_ = Priority::Low;
  std::shared_ptr<std::byte> owned_;  // set by create_owned only
  mutable TailHint tail_hint_;    // producers' view of the tail (R-CLAIM)
};

}  // namespace memlink::shm
