#include "memlink/shm/buffer.hpp"

#include <cstdlib>
#if defined(_WIN32)
#include <malloc.h>
#endif
#include <cstring>
#include <new>

#include "memlink/shm/checksum.hpp"
#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/safety.hpp"
#include "memlink/shm/segment_age.hpp"

namespace memlink::shm {
namespace {

// "Reading by pid 42", for a word classify_tail_word() calls Held.
std::string held_text(std::uint64_t word) {
  const SlotWord w = SlotWord::decode(word);
  return std::string(to_string(static_cast<SlotState>(w.state))) + " by pid " + std::to_string(w.owner_pid);
}

// The field a Garbage word is wrong in: its state byte, or the word as a whole.
const char* garbage_field(std::uint64_t word) { return SlotWord::decode(word).known_state() ? "word" : "state"; }

// What is wrong with a word classify_tail_word() calls Garbage.
std::string garbage_text(std::uint64_t word, const SlotId& at) {
  const SlotWord w = SlotWord::decode(word);
  if (!w.known_state()) return "invalid state " + std::to_string(w.state);
  return std::string(to_string(static_cast<SlotState>(w.state))) + " by pid " + std::to_string(w.owner_pid) +
         " of lap " + std::to_string(w.generation) + " where position " + std::to_string(at.position) +
         " (lap " + std::to_string(at.generation) + ") should be";
}

std::string ring_name(Direction d, Priority p) {
  return std::string("ring[") + to_string(d) + "/" + std::string(to_string(p)) + "]";
}

// Full, the outcome a writer's loop expects: a fixed text per ring, so that
// returning it allocates nothing (result.hpp, fixed_error).
const char* full_text(Direction d, Priority p) {
  static constexpr const char* kText[2][3] = {
      {"ring[c2d/critical] is full", "ring[c2d/high] is full", "ring[c2d/low] is full"},
      {"ring[d2c/critical] is full", "ring[d2c/high] is full", "ring[d2c/low] is full"}};  // by Priority's value
  return kText[d == Direction::ClientToDaemon ? 0 : 1][static_cast<std::size_t>(p) % 3];
}

Status check_geometry(std::byte* mem, std::size_t bytes, std::uint32_t capacity,
                      std::uint32_t slot_size) {
  if (mem == nullptr) return make_error(ErrorCode::InvalidArgument, "ring memory is null");
  if (reinterpret_cast<std::uintptr_t>(mem) % CACHE_LINE_SIZE != 0)
    return make_error(ErrorCode::InvalidArgument, "ring memory is not 64-byte aligned");
  if (capacity == 0) return make_error(ErrorCode::InvalidArgument, "ring capacity is 0");
  if (slot_size == 0 || slot_size > MAX_SLOT_SIZE)
    return make_error(ErrorCode::InvalidArgument,
                      "slot size " + std::to_string(slot_size) + " is outside [1, " +
                          std::to_string(MAX_SLOT_SIZE) + "]");
  if (!safety::element_in_bounds(RING_HEADER_SIZE, capacity, slot_stride_for(slot_size), 0, bytes))
    return make_error(ErrorCode::InvalidArgument,
                      "ring of " + std::to_string(capacity) + " slots of " + std::to_string(slot_size) +
                          " bytes needs " + std::to_string(RingBuffer::bytes_for(capacity, slot_size)) +
                          " bytes, region has " + std::to_string(bytes));
  return {};
}

// The C runtime on Windows has no aligned_alloc.
void* allocate_aligned(std::size_t alignment, std::size_t bytes) {
#if defined(_WIN32)
  return _aligned_malloc(bytes, alignment);
#else
  return std::aligned_alloc(alignment, bytes);
#endif
}

void free_aligned(std::byte* p) {
#if defined(_WIN32)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

}  // namespace

RingBuffer::RingBuffer(RingHeader* hdr, std::uint32_t capacity, std::uint32_t slot_size,
                       Direction direction, Priority priority) noexcept
    : hdr_(hdr),
      slots_(reinterpret_cast<std::byte*>(hdr) + RING_HEADER_SIZE),
      capacity_(capacity),
      by_capacity_(capacity),
      slot_size_(slot_size),
      stride_(static_cast<std::uint32_t>(slot_stride_for(slot_size))),
      direction_(direction),
      priority_(priority) {}

Result<RingBuffer> RingBuffer::format(std::byte* mem, std::size_t bytes, std::uint32_t capacity,
                                      std::uint32_t slot_size, Direction direction, Priority priority,
                                      std::uint64_t first) {
  if (auto s = check_geometry(mem, bytes, capacity, slot_size); !s) return s.error();
  auto* hdr = new (mem) RingHeader{};
  hdr->ring_magic = RING_MAGIC;
  hdr->capacity = capacity;
  hdr->slot_size = slot_size;
  hdr->slot_stride = static_cast<std::uint32_t>(slot_stride_for(slot_size));
  hdr->direction = static_cast<std::uint8_t>(direction);
  hdr->priority = static_cast<std::uint8_t>(priority);
  hdr->head.store(first, std::memory_order_relaxed);
  hdr->tail.store(first, std::memory_order_relaxed);
  hdr->corrupt_skipped.store(0, std::memory_order_relaxed);
  hdr->reclaimed.store(0, std::memory_order_relaxed);
  RingBuffer ring(hdr, capacity, slot_size, direction, priority);
  for (std::uint32_t i = 0; i < capacity; ++i) {
    auto* slot = new (&ring.slot_header(i)) SlotHeader{};
    // Lap 0 when fresh; aged, the lap of the next position it serves (C-AGE).
    slot->word.store(slot_word(SlotState::Empty, 0, first_generation(first, capacity, i)), std::memory_order_relaxed);
  }
  // Publication of the formatted ring to other processes is the creator's
  // job (the control region's magic is stored with release after this).
  return ring;
}

Result<RingBuffer> RingBuffer::attach(std::byte* mem, std::size_t bytes, std::uint32_t capacity,
                                      std::uint32_t slot_size, Direction direction,
                                      Priority priority) {
  if (auto s = check_geometry(mem, bytes, capacity, slot_size); !s) return s.error();
  auto* hdr = reinterpret_cast<RingHeader*>(mem);
  const std::string name = ring_name(direction, priority);
  auto mismatch = [&](const char* f, std::uint64_t want, std::uint64_t got) {
    return make_error(ErrorCode::CorruptSegment, name + "." + f + ": expected " +
                                                     std::to_string(want) + ", found " +
                                                     std::to_string(got));
  };
  if (hdr->ring_magic != RING_MAGIC) return mismatch("ring_magic", RING_MAGIC, hdr->ring_magic);
  if (hdr->capacity != capacity) return mismatch("capacity", capacity, hdr->capacity);
  if (hdr->slot_size != slot_size) return mismatch("slot_size", slot_size, hdr->slot_size);
  if (hdr->slot_stride != slot_stride_for(slot_size))
    return mismatch("slot_stride", slot_stride_for(slot_size), hdr->slot_stride);
  if (hdr->direction != static_cast<std::uint8_t>(direction))
    return mismatch("direction", static_cast<std::uint8_t>(direction), hdr->direction);
  if (hdr->priority != static_cast<std::uint8_t>(priority))
    return mismatch("priority", static_cast<std::uint8_t>(priority), hdr->priority);
  RingBuffer ring(hdr, capacity, slot_size, direction, priority);
  if (!ring.positions_consistent()) return ring.positions_error(ring.head(), ring.tail());
  return ring;
}

Result<RingBuffer> RingBuffer::create_owned(std::uint32_t capacity, std::uint32_t slot_size,
                                            Priority priority) {
  if (capacity == 0 || (capacity & (capacity - 1)) != 0)
    return make_error(ErrorCode::InvalidArgument,
                      "capacity " + std::to_string(capacity) + " is not a power of two");
  if (slot_size == 0 || slot_size > MAX_SLOT_SIZE)
    return make_error(ErrorCode::InvalidArgument, "slot size " + std::to_string(slot_size) +
                                                      " is outside [1, " +
                                                      std::to_string(MAX_SLOT_SIZE) + "]");
  const std::size_t bytes = bytes_for(capacity, slot_size);
  void* mem = allocate_aligned(CACHE_LINE_SIZE, align_up(bytes, CACHE_LINE_SIZE));
  if (mem == nullptr) return make_error(ErrorCode::InvalidArgument, "out of memory for ring");
  std::shared_ptr<std::byte> owner(static_cast<std::byte*>(mem), free_aligned);
  auto ring = format(owner.get(), bytes, capacity, slot_size, Direction::ClientToDaemon, priority);
  if (ring) ring->owned_ = std::move(owner);
  return ring;
}

SlotHeader& RingBuffer::slot_header(std::uint32_t index) const noexcept {
  return *reinterpret_cast<SlotHeader*>(slots_ + std::size_t{index} * stride_);
}

std::byte* RingBuffer::payload(std::uint32_t index) const noexcept {
  std::byte* p = slots_ + std::size_t{index} * stride_ + SLOT_HEADER_SIZE;
  // The payload is plain shared memory: under the exploration scheduler a
  // peer may act before each use of it (testing_hooks.hpp).
  hooks::access(hooks::Access::PlainRead, p);
  return p;
}

std::uint64_t RingBuffer::head() const noexcept { return hdr_->head.load(std::memory_order_acquire); }
std::uint64_t RingBuffer::tail() const noexcept { return hdr_->tail.load(std::memory_order_acquire); }
std::uint64_t RingBuffer::corrupt_skipped() const noexcept {
  return hdr_->corrupt_skipped.load(std::memory_order_relaxed);
}

std::uint64_t RingBuffer::len() const noexcept {
  // Head first: a tail loaded later is at least as new, so the difference
  // never counts more messages than the ring held at one instant. (Tail
  // first, a thread descheduled between the loads saw an old tail with a new
  // head and called a ring full that never was: a spurious Full, R-CAPACITY.
  // Found by the exploration check.) It may count fewer: claim() decides.
  const std::uint64_t h = head();
  const std::uint64_t t = tail();
  return h >= t ? h - t : 0;
}

TailReadiness RingBuffer::tail_readiness() const noexcept {
  const std::uint64_t t = tail();
  const SlotId at = locate(t);
  const TailWord kind = classify_tail_word(load_word(slot_header(at.index)), at.generation);
  // As take() (R-POSITIONS): head is asked only for a held or garbage word.
  if (kind == TailWord::Ready) return TailReadiness::Readable;
  if (kind == TailWord::NotYet) return TailReadiness::Nothing;
  const std::uint64_t h = head();
  if (h == t) return TailReadiness::Nothing;
  if (h < t || h - t > capacity_) return TailReadiness::Readable;  // take() reports it
  switch (kind) {
    case TailWord::NotYet: return TailReadiness::Nothing;
    case TailWord::Held: return TailReadiness::Held;
    case TailWord::Ready:
    case TailWord::Garbage: return TailReadiness::Readable;  // take() drops garbage
  }
  return TailReadiness::Readable;
}

bool RingBuffer::positions_consistent() const noexcept {
  // A snapshot of one instant: tail, head, and tail again unchanged (both
  // only grow, so the head was read while the tail had that value). Two
  // plain loads, in either order, can pair values of different instants and
  // call a healthy ring broken (and the caller would poison the segment).
  std::uint64_t t = tail(), h = 0;
  for (int attempt = 0; attempt < 64; ++attempt) {
    h = head();
    const std::uint64_t again = tail();
    if (again == t) break;
    t = again;
  }
  return h >= t && h - t <= capacity_;
}

// [R-POSITIONS.newest] The positions as they are now, not as this thread's
// loads last saw them. A load may read an older value than the newest on a
// weakly ordered CPU (the consumer's advance of the tail still in flight to
// this core while another producer already claimed past it: a healthy ring
// that looks broken); a read-modify-write always reads the newest value of
// its word (C++ [atomics.order]: the last in its modification order), and
// fetch_or(0) changes nothing. Only on the rare path that would otherwise
// call the ring corrupt, and only by a producer or the consumer (a read-only
// mapping, inspect's, cannot: it keeps positions_consistent's loads). Found
// by the exploration's weak-memory search.
bool RingBuffer::newest_positions(std::uint64_t& h, std::uint64_t& t) const noexcept {
  t = hdr_->tail.fetch_or(0, std::memory_order_acq_rel);
  for (int attempt = 0; attempt < 64; ++attempt) {
    h = hdr_->head.fetch_or(0, std::memory_order_acq_rel);
    const std::uint64_t again = hdr_->tail.fetch_or(0, std::memory_order_acq_rel);
    if (again == t) break;
    t = again;
  }
  return h >= t && h - t <= capacity_;
}

Status RingBuffer::check_positions() const {
  if (positions_consistent()) return {};
  std::uint64_t h = 0, t = 0;
  if (newest_positions(h, t)) return {};
  return positions_error(h, t);
}

std::string RingBuffer::field(std::uint64_t position, const char* name) const {
  return ring_name(direction_, priority_) + ".slot[" + std::to_string(position % capacity_) + "]." +
         name;
}

Error RingBuffer::positions_error(std::uint64_t head, std::uint64_t tail) const {
  return make_error(ErrorCode::CorruptSegment,
                    ring_name(direction_, priority_) + ".head/tail: head " + std::to_string(head) +
                        " and tail " + std::to_string(tail) + " break tail <= head <= tail + " +
                        std::to_string(capacity_));
}

Status RingBuffer::check_writable(std::size_t size) const {
  if (size > slot_size_)
    return make_error(ErrorCode::MessageTooLarge,
                      "payload of " + std::to_string(size) + " bytes exceeds the slot size of " +
                          std::to_string(slot_size_) + " bytes");
  std::uint64_t tail = 0;
  if (full_at(head(), &tail) && positions_consistent())
    return fixed_error(ErrorCode::Full, full_text(direction_, priority_));
  return {};
}

Result<SlotId> RingBuffer::write_slot(std::span<const std::byte> data) {
  if (data.size() > slot_size_) return check_writable(data.size()).error();
  auto id = claim();
  if (!id) return id;
  fill(*id, data);
  if (!publish(*id)) return not_published_error(id->position);
  MEMLINK_CRASH_POINT("write.after-publish");
  return id;
}

Error RingBuffer::not_published_error(std::uint64_t position) const {
  return make_error(ErrorCode::InvalidState, field(position, "state") + ": the slot of position " +
                                                 std::to_string(position) +
                                                 " was taken from this writer before it was published; not sent");
}

bool RingBuffer::full_at(std::uint64_t head, std::uint64_t* tail_out) const noexcept {
  const std::uint64_t hint = tail_hint_.get();
  if (head >= hint && head - hint < capacity_) {  // room, proved without the consumer's line
    *tail_out = hint;
    return false;
  }
  // [R-CLAIM.tail] acquire, pairs with the consumer's release of the tail:
  // not needed for the slot (its word's CAS decides), only for a fresh view.
  const std::uint64_t tail = hdr_->tail.load(std::memory_order_acquire);
  tail_hint_.raise(tail);
  *tail_out = tail;
  return head >= tail && head - tail >= capacity_;
}

Result<SlotId> RingBuffer::claim() {
  // Claim a position (SPEC R-CLAIM): a CAS on head, judged against the tail
  // hint; the shared tail is read only when the hint says full.
  std::uint64_t head = hdr_->head.load(std::memory_order_relaxed);
  for (;;) {
    std::uint64_t tail = 0;
    const bool full = full_at(head, &tail);
    if (head < tail || head - tail > capacity_) {
      // A stale head we loaded before another producer advanced it can look
      // behind tail, and a tail still in flight to us far behind head: ask
      // for the newest positions before calling the ring corrupt.
      std::uint64_t h = 0, t = 0;
      if (!newest_positions(h, t)) return positions_error(h, t);
      head = h;
      continue;
    }
    // R-POSITIONS: positions never wrap; an exhausted ring is Full for good.
    if (full || head == kLastPosition) {
      return fixed_error(ErrorCode::Full, full_text(direction_, priority_));
    }
    // Relaxed is enough: the claim publishes nothing; the state CAS does.
    if (hdr_->head.compare_exchange_weak(head, head + 1, std::memory_order_relaxed,
                                         std::memory_order_relaxed)) {
      break;
    }
  }
  MEMLINK_CRASH_POINT("write.after-claim");
  const SlotId id = locate(head);
  SlotHeader& slot = slot_header(id.index);
  // The payload's first line comes from the consumer's core (it read it a
  // lap ago): ask for it now, so its transfer overlaps the claim CAS below.
  platform::prefetch_for_write(reinterpret_cast<std::byte*>(&slot) + SLOT_HEADER_SIZE);
  const std::uint32_t g = id.generation;
  const std::uint64_t empty = slot_word(SlotState::Empty, 0, g);
  // [S-WORD.claim] Empty(g) -> Writing(g, me): state, holder and lap in one
  // step, so recovery always sees the real holder (SPEC S-OWNER).
  std::uint64_t found = 0;
  if (!cas_word(slot, empty, slot_word(SlotState::Writing, platform::current_pid(), g), &found)) {
    if (auto s = enter_held_slot(slot, id, found); !s) return s.error();
  }
  // SPEC K-CLAIMED: the generation alone cannot tell a word of this lap from
  // one 2^24 laps later. If the consumer skipped our position while we
  // stalled, the slot we just took belongs to a later lap's writer: give it
  // back as we found it, and say so. Judged by head, not tail, so that a lone
  // producer reads only its own line:
  //  - the slot is ours: the tail has not passed our position (passing it
  //    takes a Ready word or a reclaim CAS, and ours won), so
  //    head <= tail + capacity <= position + capacity;
  //  - the slot is a lap 2^24k later (k >= 1): its previous lap was
  //    released, so head >= tail > position + (2^24k - 1) * capacity,
  //    which is more than position + capacity.
  if (hdr_->head.load(std::memory_order_relaxed) - head > capacity_) {
    cas_word(slot, slot_word(SlotState::Writing, platform::current_pid(), g), empty);
    return reclaimed_error(head);
  }
  MEMLINK_CRASH_POINT("write.after-writing");
  return id;
}

Error RingBuffer::reclaimed_error(std::uint64_t position) const {
  return make_error(ErrorCode::InvalidState,
                    field(position, "state") + ": position " + std::to_string(position) +
                        " was reclaimed by the consumer while this writer stalled; not sent");
}

// SPEC K-CLAIMED, the writer's side, when its claim CAS failed:
//  1. the tail passed its position, or the word is Empty(g+1): the consumer
//     reclaimed the position while the writer stalled: not sent;
//  2. Writing of our lap by another process: a writer stalled for a
//     multiple of 2^24 laps won our slot's CAS and is giving it back (the
//     tail check above): wait for Empty(g), up to kHeldSlotPatienceNs, then
//     not sent (the position stays claimed and the consumer reclaims it);
//  3. anything else: no protocol step puts it there: CorruptSegment.
Status RingBuffer::enter_held_slot(SlotHeader& slot, const SlotId& id, std::uint64_t found) {
  constexpr std::uint64_t kHeldSlotPatienceNs = 20'000'000;
  const std::uint64_t head = id.position;
  const std::uint32_t g = id.generation;
  const std::uint64_t empty = slot_word(SlotState::Empty, 0, g);
  const std::uint64_t mine = slot_word(SlotState::Writing, platform::current_pid(), g);
  const std::uint64_t give_up = platform::monotonic_ns() + kHeldSlotPatienceNs;
  for (std::uint32_t attempt = 0;; ++attempt) {
    const SlotWord w = SlotWord::decode(found);
    if (hdr_->tail.load(std::memory_order_acquire) > head ||
        found == slot_word(SlotState::Empty, 0, next_generation(g)))
      return reclaimed_error(head);
    if (w.state != static_cast<std::uint8_t>(SlotState::Writing) || w.generation != g)
      return make_error(ErrorCode::CorruptSegment,
                        field(head, "word") + ": expected Empty of lap " + std::to_string(g) + " for position " +
                            std::to_string(head) + ", found state " + std::to_string(w.state) + " of lap " +
                            std::to_string(w.generation));
    if (platform::monotonic_ns() >= give_up)
      return make_error(ErrorCode::InvalidState,
                        field(head, "state") + ": the slot of position " + std::to_string(head) +
                            " stayed held (Writing) by pid " + std::to_string(w.owner_pid) +
                            "; not sent (the consumer reclaims the position, K-CLAIMED)");
    if (attempt < 64) {
      platform::cpu_relax();
    } else {
      platform::sleep_for(std::chrono::microseconds(20));
    }
    if (cas_word(slot, empty, mine, &found)) return {};
  }
}

void RingBuffer::fill_header(SlotId id, std::uint32_t length, std::uint32_t checksum) {
  SlotHeader& slot = slot_header(id.index);
  slot.priority = static_cast<std::uint8_t>(priority_);
  slot.length = length;
  slot.sequence = id.position;  // T-SEQ: no counter shared between producers
  slot.position = id.position;
  slot.checksum = checksum;
}

void RingBuffer::fill(SlotId id, std::span<const std::byte> data) {
  const std::size_t half = data.size() / 2;
  if (half > 0) std::memcpy(payload(id.index), data.data(), half);
  MEMLINK_CRASH_POINT("write.mid-payload");
  if (data.size() > half) std::memcpy(payload(id.index) + half, data.data() + half, data.size() - half);
  fill_header(id, static_cast<std::uint32_t>(data.size()), crc32c(data.data(), data.size()));
}

Result<SlotLoan> RingBuffer::loan(std::size_t size) {
  if (size > slot_size_) return check_writable(size).error();  // MessageTooLarge, said once
  auto id = claim();
  if (!id) return id.error();
  return SlotLoan{*id, std::span<std::byte>(payload(id->index), size)};
}

Result<SlotId> RingBuffer::commit(const SlotLoan& loan, std::size_t length) {
  if (length > loan.bytes.size())
    return make_error(ErrorCode::InvalidArgument, "commit of " + std::to_string(length) + " bytes from a loan of " +
                                                      std::to_string(loan.bytes.size()) +
                                                      " (not sent; the loan stays open)");
  // The checksum covers the bytes as they lie now: a peer that writes them
  // later only makes the consumer drop the message (V-SLOT).
  fill_header(loan.slot, static_cast<std::uint32_t>(length), crc32c(payload(loan.slot.index), length));
  if (!publish(loan.slot)) return not_published_error(loan.slot.position);
  MEMLINK_CRASH_POINT("write.after-publish");
  return loan.slot;
}

bool RingBuffer::publish(SlotId id) {
  MEMLINK_CRASH_POINT("write.before-publish");
  SlotHeader& slot = slot_header(id.index);
  const std::uint32_t g = id.generation;
  // Nobody else moves a slot held by a live writer (SPEC K-STALE), so the
  // publish is a plain store, not a CAS. The load before it costs nothing
  // (the line is ours) and catches a writer whose slot recovery did take:
  // such a write is not acknowledged (S-PUBLISH).
  if (slot.word.load(std::memory_order_relaxed) != slot_word(SlotState::Writing, platform::current_pid(), g))
    return false;
  store_word(slot, slot_word(SlotState::Ready, 0, g));  // [S-WORD.publish] release
  return true;
}

Status RingBuffer::inspect_ready(const SlotHeader& slot, const SlotId& at, MessageInfo& info) const {
  const std::uint64_t tail = at.position;
  // Each field is read once into a local and validated before use.
  const std::uint32_t length = slot.length;
  const std::uint8_t prio = slot.priority;
  const std::uint64_t position = slot.position;
  const std::uint64_t sequence = slot.sequence;
  if (length > slot_size_)
    return make_error(ErrorCode::CorruptSegment, field(tail, "length") + ": " + std::to_string(length) +
                                                     " exceeds the slot size of " + std::to_string(slot_size_));
  if (prio != static_cast<std::uint8_t>(priority_))
    return make_error(ErrorCode::CorruptSegment, field(tail, "priority") + ": " +
                                                     std::to_string(prio) + " in the " +
                                                     std::string(to_string(priority_)) + " ring");
  if (position != tail)
    return make_error(ErrorCode::CorruptSegment, field(tail, "position") + ": " +
                                                     std::to_string(position) + ", expected " +
                                                     std::to_string(tail));
  if (sequence != tail)  // T-SEQ: the writer numbers a message by its position
    return make_error(ErrorCode::CorruptSegment, field(tail, "sequence") + ": " +
                                                     std::to_string(sequence) + ", expected " +
                                                     std::to_string(tail));
  info.priority = priority_;
  info.sequence = sequence;
  info.length = length;
  info.slot = at;
  return {};
}

// Why a CAS and not a store, though one consumer moves the tail: in a
// takeover the fenced daemon may be between its release of the slot at
// position p (Empty(g+1)) and its tail store when its successor finds
// Empty(g+1) at the tail and moves the tail itself (K-DONE), then reads on.
//
//   fenced daemon                 new daemon               tail
//   word(p) = Empty(g+1)                                    p
//                                 K-DONE: tail = p+1        p+1
//                                 take p+1, release         p+2
//   tail = p+1  (a store)                                   p+1   <- back: a producer
//                                                                  that saw p+2 claims
//                                                                  a position twice
// With the CAS the late step finds p+2, not p, and does nothing. The
// exploration check's takeover scenario found the store at seed 0, default
// depth ("head 3 and tail 1" in a ring of one slot). Release order pairs
// with the producers' acquire of the tail [R-CLAIM.tail].
void RingBuffer::advance_tail(std::uint64_t from) noexcept {
  hdr_->tail.compare_exchange_strong(from, from + 1, std::memory_order_release, std::memory_order_relaxed);
}

void RingBuffer::skip_corrupt(const SlotId& at) {
  // Only the consumer gets here, and only for the slot at tail: whatever a
  // peer wrote into the word, it becomes Empty for the next lap.
  store_word(slot_header(at.index), slot_word(SlotState::Empty, 0, next_generation(at.generation)));  // [S-WORD.release]
  hdr_->corrupt_skipped.fetch_add(1, std::memory_order_relaxed);
  advance_tail(at.position);
}

void RingBuffer::drop_ready(const SlotId& at, std::uint64_t seen) {
  // The Ready path did not read head (R-POSITIONS): a word only a forger
  // could have put at an unclaimed position must not move the tail past
  // head. Rare (the slot failed validation), so head is read here.
  if (hdr_->head.load(std::memory_order_acquire) > at.position) {
    skip_corrupt(at);
    return;
  }
  // Unclaimed: put back the word its writer will expect, drop nothing.
  cas_word(slot_header(at.index), seen, slot_word(SlotState::Empty, 0, at.generation));
  hdr_->corrupt_skipped.fetch_add(1, std::memory_order_relaxed);
}

Result<MessageInfo> RingBuffer::enter_reading(std::size_t room, const Fence* fence) {
  const std::uint64_t tail = hdr_->tail.load(std::memory_order_relaxed);  // ours alone
  const SlotId at = locate(tail);
  SlotHeader& slot = slot_header(at.index);
  const std::uint32_t g = at.generation;
  const std::uint64_t ready = slot_word(SlotState::Ready, 0, g);
  const std::uint64_t word = load_word(slot);  // [S-WORD.publish] acquire
  const TailWord kind = classify_tail_word(word, g);
  // [R-POSITIONS] The word alone decides the common cases, so the consumer does
  // not take the producers' head line from them: only a claimed position
  // becomes Ready, and Empty or Writing of the tail's lap is nothing yet,
  // whatever head says (polled often: no allocation). Head is asked only
  // when the word is held or garbage, which is judged differently at an
  // unclaimed position.
  if (kind == TailWord::NotYet) return make_error(ErrorCode::Empty);
  if (kind != TailWord::Ready) {
    const std::uint64_t head = hdr_->head.load(std::memory_order_acquire);
    if (head < tail || head - tail > capacity_) return positions_error(head, tail);
    if (head == tail) return make_error(ErrorCode::Empty);
  }
  switch (kind) {
    case TailWord::Ready: break;
    case TailWord::NotYet: break;  // returned above
    case TailWord::Held:
      return make_error(ErrorCode::InvalidState, field(tail, "state") + ": " + held_text(word) +
                                                     ": another consumer holds it (one consumer per ring)");
    case TailWord::Garbage:
      skip_corrupt(at);
      return make_error(ErrorCode::CorruptSegment, field(tail, garbage_field(word)) + ": " + garbage_text(word, at) + " (dropped)");
  }
  MessageInfo info;
  if (auto s = inspect_ready(slot, at, info); !s) {
    drop_ready(at, word);
    return make_error(ErrorCode::CorruptSegment, s.error().text() + " (dropped)");
  }
  if (info.length > room)
    return make_error(ErrorCode::InvalidArgument,
                      "output buffer of " + std::to_string(room) + " bytes is smaller than the " +
                          std::to_string(info.length) + "-byte message");
  MEMLINK_CRASH_POINT("read.before-take");
  const std::uint64_t reading = slot_word(SlotState::Reading, platform::current_pid(), g);
  if (!cas_word(slot, ready, reading)) {  // [K-FENCE] seq_cst
    return make_error(ErrorCode::InvalidState,
                      field(tail, "state") + ": changed under the consumer (one consumer per ring)");
  }
  MEMLINK_CRASH_POINT("read.after-take-cas");
  // SPEC K-FENCE. Both loads are seq_cst, as are the CAS above and the new
  // daemon's epoch increment: either we see the new epoch here and give the
  // slot back, or the new daemon sees our Reading and leaves the slot to us.
  // The tail check catches a consumer that was replaced and whose tail moved
  // on while it was stopped (the slot may already hold a later message).
  const bool fenced = fence != nullptr && fence->epoch->load(std::memory_order_seq_cst) != fence->mine;
  if (fenced || hdr_->tail.load(std::memory_order_seq_cst) != tail) {
    cas_word(slot, reading, ready);
    return make_error(ErrorCode::Disconnected,
                      fenced ? "fenced: the segment's epoch is " + std::to_string(fence->epoch->load()) +
                                   ", this consumer's was " + std::to_string(fence->mine) +
                                   " (another daemon took over)"
                             : field(tail, "state") + ": tail moved under this consumer; gave the slot back");
  }
  return info;
}

Status RingBuffer::verify_payload(const MessageInfo& info, std::span<const std::byte> bytes) {
  const SlotHeader& slot = slot_header(info.slot.index);
  const std::uint32_t want = slot.checksum;
  const std::uint32_t got = crc32c(bytes.data(), info.length);
  if (want == got) return {};
  drop_ready(info.slot, slot_word(SlotState::Reading, platform::current_pid(), info.slot.generation));
  return make_error(ErrorCode::CorruptSegment, field(info.slot.position, "checksum") + ": stored " +
                                                   std::to_string(want) + ", payload has " +
                                                   std::to_string(got) + " (dropped)");
}

Result<MessageInfo> RingBuffer::take(std::span<std::byte> out, const Fence* fence) {
  auto info = enter_reading(out.size(), fence);
  if (!info) return info;
  // Copy first, then verify the copy: a peer scribbling on the slot now can
  // only make the check fail, never make us deliver what we did not check.
  if (info->length > 0) std::memcpy(out.data(), payload(info->slot.index), info->length);
  if (auto s = verify_payload(*info, out); !s) return s.error();
  MEMLINK_CRASH_POINT("read.after-take");
  return info;
}

// SPEC T-LOAN: the view is verified on the slot itself. Unlike take()'s
// copy, the bytes stay where a peer that can write the segment can change
// them after the check; a consumer that must not trust its peers copies.
Result<SlotView> RingBuffer::take_view(const Fence* fence) {
  auto info = enter_reading(slot_size_, fence);
  if (!info) return info.error();
  const std::span<const std::byte> bytes(payload(info->slot.index), info->length);
  if (auto s = verify_payload(*info, bytes); !s) return s.error();
  MEMLINK_CRASH_POINT("read.after-take");
  return SlotView{*info, bytes};
}

// complete() and release() are the holder's own stores: only recovery moves
// a slot a consumer holds, and only when that consumer is dead (K-STALE).
void RingBuffer::complete(SlotId id) {
  MEMLINK_CRASH_POINT("read.before-done");
  store_word(slot_header(id.index), slot_word(SlotState::Done, platform::current_pid(), id.generation));
}

void RingBuffer::release(SlotId id) {
  MEMLINK_CRASH_POINT("read.after-done");
  // [S-WORD.release] the slot first, then the tail: a producer that sees the
  // new tail (acquire) finds the slot Empty for its lap.
  store_word(slot_header(id.index), slot_word(SlotState::Empty, 0, next_generation(id.generation)));
  advance_tail(id.position);  // [R-RELEASE.tail]
  MEMLINK_CRASH_POINT("read.after-release");
}

std::optional<TailView> RingBuffer::tail_view() const noexcept {
  TailView v = tail_word_view();
  v.head = hdr_->head.load(std::memory_order_acquire);
  if (v.head <= v.tail || v.head - v.tail > capacity_) return std::nullopt;
  return v;
}

bool RingBuffer::claimed(std::uint64_t tail) const noexcept {
  const std::uint64_t head = hdr_->head.load(std::memory_order_acquire);
  return head > tail && head - tail <= capacity_;
}

TailView RingBuffer::tail_word_view() const noexcept {
  TailView v;
  v.tail = hdr_->tail.load(std::memory_order_acquire);
  const SlotId at = locate(v.tail);
  const SlotHeader& slot = slot_header(at.index);
  // seq_cst: a new daemon's load of a slot, after its epoch increment, is
  // one half of the fencing pattern (SPEC K-FENCE).
  v.word = slot.word.load(std::memory_order_seq_cst);
  const SlotWord w = SlotWord::decode(v.word);
  v.state = w.state;
  v.owner_pid = w.owner_pid;
  v.generation = w.generation;
  v.tail_generation = at.generation;
  return v;
}

std::uint64_t RingBuffer::reclaimed() const noexcept {
  return hdr_->reclaimed.load(std::memory_order_relaxed);
}

// The recovery transitions. Each is one CAS from the word recovery judged
// (so a slot whose holder changed meanwhile is left alone) followed, where
// the position is done with, by the tail store. The slot is made Empty
// before the tail passes it: a producer that sees the new tail may claim
// the slot's next lap at once. A recovery that dies between the two is
// finished by the next one (release_done: Empty(g+1) at the tail).
SlotHeader* RingBuffer::judged_tail_slot(std::uint64_t tail, std::uint64_t judged, SlotState state,
                                         std::uint32_t* generation_out) const {
  if (hdr_->tail.load(std::memory_order_relaxed) != tail) return nullptr;
  const SlotId at = locate(tail);
  const SlotWord w = SlotWord::decode(judged);
  if (w.state != static_cast<std::uint8_t>(state) || w.generation != at.generation) return nullptr;
  *generation_out = at.generation;
  return &slot_header(at.index);
}

bool RingBuffer::reclaim_writing(std::uint64_t tail, std::uint64_t judged) {
  std::uint32_t g = 0;
  SlotHeader* slot = judged_tail_slot(tail, judged, SlotState::Writing, &g);
  if (slot == nullptr || !cas_word(*slot, judged, slot_word(SlotState::Empty, 0, next_generation(g)))) return false;
  hdr_->reclaimed.fetch_add(1, std::memory_order_relaxed);
  advance_tail(tail);  // [R-RELEASE.tail]
  return true;
}

bool RingBuffer::reclaim_claimed(std::uint64_t tail) {
  if (hdr_->tail.load(std::memory_order_relaxed) != tail) return false;
  const SlotId at = locate(tail);
  const std::uint32_t g = at.generation;
  // Empty(g) -> Empty(g+1): a writer still between its head CAS and its
  // claim CAS now fails that CAS (it expects Empty(g)) and reports its
  // write as not sent; a writer that won first makes this CAS fail.
  if (!cas_word(slot_header(at.index), slot_word(SlotState::Empty, 0, g), slot_word(SlotState::Empty, 0, next_generation(g))))
    return false;
  hdr_->reclaimed.fetch_add(1, std::memory_order_relaxed);
  advance_tail(tail);  // [R-RELEASE.tail]
  return true;
}

bool RingBuffer::requeue_reading(std::uint64_t tail, std::uint64_t judged) {
  std::uint32_t g = 0;
  SlotHeader* slot = judged_tail_slot(tail, judged, SlotState::Reading, &g);
  return slot != nullptr && cas_word(*slot, judged, slot_word(SlotState::Ready, 0, g));
}

bool RingBuffer::release_done(std::uint64_t tail, std::uint64_t judged) {
  std::uint32_t g = 0;
  if (SlotHeader* slot = judged_tail_slot(tail, judged, SlotState::Done, &g)) {
    if (!cas_word(*slot, judged, slot_word(SlotState::Empty, 0, next_generation(g)))) return false;
  } else {
    // Empty(g+1) at the tail: released, the tail store lost (K-DONE).
    if (hdr_->tail.load(std::memory_order_relaxed) != tail) return false;
    const SlotId at = locate(tail);
    const std::uint64_t released = slot_word(SlotState::Empty, 0, next_generation(at.generation));
    if (judged != released || load_word(slot_header(at.index)) != released) return false;
  }
  advance_tail(tail);  // [R-RELEASE.tail]
  return true;
}

Result<MessageInfo> RingBuffer::read_slot(std::span<std::byte> out) {
  auto info = take(out);
  if (!info) return info;
  complete(info->slot);
  release(info->slot);
  return info;
}

Result<MessageInfo> RingBuffer::peek_slot() const {
  const std::uint64_t tail = hdr_->tail.load(std::memory_order_acquire);
  const SlotId at = locate(tail);
  const SlotHeader& slot = slot_header(at.index);
  const std::uint64_t word = load_word(slot);
  const TailWord kind = classify_tail_word(word, at.generation);
  if (kind == TailWord::NotYet) return make_error(ErrorCode::Empty);  // as take()
  if (kind != TailWord::Ready) {
    const std::uint64_t head = hdr_->head.load(std::memory_order_acquire);
    if (head < tail || head - tail > capacity_) return positions_error(head, tail);
    if (head == tail) return make_error(ErrorCode::Empty);
  }
  switch (kind) {
    case TailWord::Ready: break;
    case TailWord::NotYet: break;  // returned above
    case TailWord::Held:
      return make_error(ErrorCode::InvalidState, field(tail, "state") + ": " + held_text(word) + " at the tail");
    case TailWord::Garbage:
      return make_error(ErrorCode::CorruptSegment, field(tail, garbage_field(word)) + ": " + garbage_text(word, at));
  }
  MessageInfo info;
  if (auto s = inspect_ready(slot, at, info); !s) return s.error();
  return info;
}

SlotStateCounts RingBuffer::count_states() const noexcept {
  SlotStateCounts c;
  for (std::uint32_t i = 0; i < capacity_; ++i) {
    const auto s = load_slot_word(slot_header(i)).known_state();
    if (s) {
      ++c.count[static_cast<std::size_t>(*s)];
    } else {
      ++c.invalid;
    }
  }
  return c;
}

}  // namespace memlink::shm
