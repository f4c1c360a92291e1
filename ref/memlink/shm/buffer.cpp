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

namespace memlink::shm {
namespace {

std::string ring_name(Direction d, Priority p) {
  return std::string("ring[") + to_string(d) + "/" + std::string(to_string(p)) + "]";
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
      slot_size_(slot_size),
      stride_(static_cast<std::uint32_t>(slot_stride_for(slot_size))),
      direction_(direction),
      priority_(priority) {}

Result<RingBuffer> RingBuffer::format(std::byte* mem, std::size_t bytes, std::uint32_t capacity,
                                      std::uint32_t slot_size, Direction direction,
                                      Priority priority) {
  if (auto s = check_geometry(mem, bytes, capacity, slot_size); !s) return s.error();
  auto* hdr = new (mem) RingHeader{};
  hdr->ring_magic = RING_MAGIC;
  hdr->capacity = capacity;
  hdr->slot_size = slot_size;
  hdr->slot_stride = static_cast<std::uint32_t>(slot_stride_for(slot_size));
  hdr->direction = static_cast<std::uint8_t>(direction);
  hdr->priority = static_cast<std::uint8_t>(priority);
  hdr->head.store(0, std::memory_order_relaxed);
  hdr->tail.store(0, std::memory_order_relaxed);
  hdr->corrupt_skipped.store(0, std::memory_order_relaxed);
  hdr->reclaimed.store(0, std::memory_order_relaxed);
  RingBuffer ring(hdr, capacity, slot_size, direction, priority);
  for (std::uint32_t i = 0; i < capacity; ++i) {
    auto* slot = new (&ring.slot_header(i)) SlotHeader{};
    slot->state.store(static_cast<std::uint8_t>(SlotState::Empty), std::memory_order_relaxed);
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
  const std::uint64_t h = head();
  if (h == t) return TailReadiness::Nothing;
  if (h < t || h - t > capacity_) return TailReadiness::Readable;  // take() reports it
  const std::uint8_t raw = load_state(slot_header(static_cast<std::uint32_t>(t % capacity_)));
  switch (raw) {
    case static_cast<std::uint8_t>(SlotState::Empty):
    case static_cast<std::uint8_t>(SlotState::Writing): return TailReadiness::Nothing;
    case static_cast<std::uint8_t>(SlotState::Reading):
    case static_cast<std::uint8_t>(SlotState::Done): return TailReadiness::Held;
    default: return TailReadiness::Readable;  // Ready, or garbage that take() drops
  }
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
  if (is_full() && positions_consistent())
    return make_error(ErrorCode::Full, ring_name(direction_, priority_) + " is full (" +
                                           std::to_string(capacity_) + " slots)");
  return {};
}

Result<SlotId> RingBuffer::write_slot(std::span<const std::byte> data, std::uint64_t sequence) {
  if (data.size() > slot_size_) return check_writable(data.size()).error();
  auto id = claim();
  if (!id) return id;
  fill(*id, data, sequence);
  if (!publish(*id))
    return make_error(ErrorCode::InvalidState,
                      field(id->position, "state") + ": the slot of position " + std::to_string(id->position) +
                          " was taken from this writer before it was published; not sent");
  MEMLINK_CRASH_POINT("write.after-publish");
  return id;
}

Result<SlotId> RingBuffer::claim() {
  // Claim a position (SPEC R-CLAIM). The acquire load of tail pairs with the
  // consumer's release store after it emptied the slot we are about to take.
  std::uint64_t head = hdr_->head.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint64_t tail = hdr_->tail.load(std::memory_order_acquire);
    if (head < tail || head - tail > capacity_) {
      // A stale head we loaded before another producer advanced it can look
      // behind tail; reload once before calling the ring corrupt.
      const std::uint64_t fresh = hdr_->head.load(std::memory_order_acquire);
      if (fresh != head) {
        head = fresh;
        continue;
      }
      return positions_error(head, tail);
    }
    if (head - tail == capacity_) {
      return make_error(ErrorCode::Full, ring_name(direction_, priority_) + " is full (" +
                                             std::to_string(capacity_) + " slots)");
    }
    // Relaxed is enough: the claim publishes nothing; the state CAS does.
    if (hdr_->head.compare_exchange_weak(head, head + 1, std::memory_order_relaxed,
                                         std::memory_order_relaxed)) {
      break;
    }
  }
  MEMLINK_CRASH_POINT("write.after-claim");
  const auto index = static_cast<std::uint32_t>(head % capacity_);
  SlotHeader& slot = slot_header(index);
  std::uint8_t found = 0;
  if (!enter_writing(slot, &found)) {
    if (auto s = enter_held_slot(slot, head, found); !s) return s.error();
  }
  // SPEC K-CLAIMED: if we stalled between claiming the position and the CAS
  // above for longer than the consumer's claim timeout, the consumer has
  // skipped the position (it advances tail before it frees the slot, and the
  // acquire of our CAS saw that free). Give the slot back and say so: the
  // message was not sent.
  if (hdr_->tail.load(std::memory_order_acquire) > head) {
    transition_slot(slot, SlotState::Writing, SlotState::Empty);
    return make_error(ErrorCode::InvalidState,
                      field(head, "state") + ": position " + std::to_string(head) +
                          " was reclaimed by the consumer while this writer stalled; not sent");
  }
  MEMLINK_CRASH_POINT("write.after-writing");
  return SlotId{head, index};
}

// Empty -> Writing for the writer of a claimed position (SPEC S-OWNER,
// K-CLAIMED). Unlike the consumer, a writer may find its slot held by
// another process (a writer of an earlier lap that stalled past the claim
// timeout, or a later lap's writer if that is us): it stamps only a slot it
// saw Empty, and if it loses the CAS anyway it puts back the stamp it
// overwrote, so that recovery always sees the slot's real holder. (Stamping
// after the CAS instead leaves a moment in which the slot is Writing under
// a dead process's name and recovery takes it from a live writer: the
// exploration check found both that and the stamp overwritten by a loser.)
bool RingBuffer::enter_writing(SlotHeader& slot, std::uint8_t* found) {
  const std::uint8_t now = load_state(slot);
  if (now != static_cast<std::uint8_t>(SlotState::Empty)) {
    *found = now;
    return false;
  }
  const std::uint32_t me = platform::current_pid();
  const std::uint64_t since = platform::coarse_monotonic_ns();
  std::uint32_t prev_owner = slot.owner_pid.exchange(me, std::memory_order_relaxed);
  std::uint64_t prev_since = slot.timestamp_ns.exchange(since, std::memory_order_relaxed);
  if (cas_state(slot, SlotState::Empty, SlotState::Writing, found)) return true;
  std::uint32_t mine = me;
  slot.owner_pid.compare_exchange_strong(mine, prev_owner, std::memory_order_relaxed);
  std::uint64_t my_since = since;
  slot.timestamp_ns.compare_exchange_strong(my_since, prev_since, std::memory_order_relaxed);
  return false;
}

// SPEC K-CLAIMED, the writer's side, when its Empty -> Writing CAS failed:
//  1. the tail passed its position: the consumer reclaimed it while the
//     writer stalled, and the slot may already serve a later lap: not sent;
//  2. Writing, the tail not past it: the slot is held for a moment by a
//     writer of an earlier lap that is giving it back (case 1 of claim(),
//     after its CAS won), or by the consumer in the middle of a K-CLAIMED
//     reclaim (Writing, tail + 1, Empty): wait for Empty, up to
//     kHeldSlotPatienceNs, then not sent (the position stays claimed and
//     the consumer reclaims it);
//  3. anything else, the tail not past it: no protocol step puts Ready,
//     Reading or Done there: CorruptSegment.
// (Found by the exploration check: a writer stalled past the claim timeout
// used to fail the write of a later lap's healthy writer with CorruptSegment.)
Status RingBuffer::enter_held_slot(SlotHeader& slot, std::uint64_t head, std::uint8_t found) {
  constexpr std::uint64_t kHeldSlotPatienceNs = 20'000'000;
  const std::uint64_t give_up = platform::monotonic_ns() + kHeldSlotPatienceNs;
  for (std::uint32_t attempt = 0;; ++attempt) {
    if (hdr_->tail.load(std::memory_order_acquire) > head)
      return make_error(ErrorCode::InvalidState,
                        field(head, "state") + ": position " + std::to_string(head) +
                            " was reclaimed by the consumer while this writer stalled; not sent");
    if (found != static_cast<std::uint8_t>(SlotState::Writing))
      return make_error(ErrorCode::CorruptSegment,
                        field(head, "state") + ": expected Empty for position " + std::to_string(head) +
                            ", found " + std::to_string(found));
    if (platform::monotonic_ns() >= give_up)
      return make_error(ErrorCode::InvalidState,
                        field(head, "state") + ": the slot of position " + std::to_string(head) + " stayed held (Writing) by pid " +
                            std::to_string(slot.owner_pid.load(std::memory_order_relaxed)) +
                            "; not sent (the consumer reclaims the position, K-CLAIMED)");
    if (attempt < 64) {
      platform::cpu_relax();
    } else {
      platform::sleep_for(std::chrono::microseconds(20));
    }
    if (enter_writing(slot, &found)) return {};
  }
}

void RingBuffer::fill(SlotId id, std::span<const std::byte> data, std::uint64_t sequence) {
  SlotHeader& slot = slot_header(id.index);
  slot.priority = static_cast<std::uint8_t>(priority_);
  slot.length = static_cast<std::uint32_t>(data.size());
  slot.sequence = sequence;
  slot.position = id.position;
  const std::size_t half = data.size() / 2;
  if (half > 0) std::memcpy(payload(id.index), data.data(), half);
  MEMLINK_CRASH_POINT("write.mid-payload");
  if (data.size() > half) std::memcpy(payload(id.index) + half, data.data() + half, data.size() - half);
  slot.checksum = crc32c(data.data(), data.size());
}

bool RingBuffer::publish(SlotId id) {
  MEMLINK_CRASH_POINT("write.before-publish");
  // False only if the slot is no longer ours (recovery took it): then the
  // message was not published and the write must not be acknowledged (S-PUBLISH).
  return transition_slot(slot_header(id.index), SlotState::Writing, SlotState::Ready);  // release
}

Status RingBuffer::inspect_ready(const SlotHeader& slot, std::uint64_t tail,
                                 MessageInfo& info) const {
  // Each field is read once into a local and validated before use.
  const std::uint32_t length = slot.length;
  const std::uint8_t prio = slot.priority;
  const std::uint64_t position = slot.position;
#ifndef MEMLINK_FAULT_SKIP_LENGTH_CHECK
  // (The macro exists only for fuzz/'s proof that hostile_peer catches a
  // reader that trusts the length, the crate's defect. Never define it.)
  if (length > slot_size_)
    return make_error(ErrorCode::CorruptSegment,
                      field(tail, "length") + ": " + std::to_string(length) +
                          " exceeds the slot size of " + std::to_string(slot_size_));
#endif
  if (prio != static_cast<std::uint8_t>(priority_))
    return make_error(ErrorCode::CorruptSegment, field(tail, "priority") + ": " +
                                                     std::to_string(prio) + " in the " +
                                                     std::string(to_string(priority_)) + " ring");
  if (position != tail)
    return make_error(ErrorCode::CorruptSegment, field(tail, "position") + ": " +
                                                     std::to_string(position) + ", expected " +
                                                     std::to_string(tail));
  info.priority = priority_;
  info.sequence = slot.sequence;
  info.length = length;
  info.slot = SlotId{tail, static_cast<std::uint32_t>(tail % capacity_)};
  return {};
}

void RingBuffer::skip_corrupt(SlotHeader& slot, std::uint8_t from, std::uint64_t tail) {
  // Only the consumer gets here, and only for the slot at tail, whose state
  // it has just observed: store Empty directly (a garbage state has no CAS path).
  if (from == static_cast<std::uint8_t>(SlotState::Reading)) {
    transition_slot(slot, SlotState::Reading, SlotState::Done);
    transition_slot(slot, SlotState::Done, SlotState::Empty);
  } else {
    slot.state.store(static_cast<std::uint8_t>(SlotState::Empty), std::memory_order_release);
  }
  hdr_->corrupt_skipped.fetch_add(1, std::memory_order_relaxed);
  hdr_->tail.store(tail + 1, std::memory_order_release);
}

Result<MessageInfo> RingBuffer::take(std::span<std::byte> out, const Fence* fence) {
  const std::uint64_t tail = hdr_->tail.load(std::memory_order_relaxed);  // ours alone
  const std::uint64_t head = hdr_->head.load(std::memory_order_acquire);
  if (head < tail || head - tail > capacity_) return positions_error(head, tail);
  if (head == tail) return make_error(ErrorCode::Empty, ring_name(direction_, priority_) + " is empty");
  const auto index = static_cast<std::uint32_t>(tail % capacity_);
  SlotHeader& slot = slot_header(index);
  const std::uint8_t raw = load_state(slot);  // acquire: pairs with the publish
  const auto state = slot_state_from_byte(raw);
  if (!state) {
    skip_corrupt(slot, raw, tail);
    return make_error(ErrorCode::CorruptSegment,
                      field(tail, "state") + ": invalid value " + std::to_string(raw) + " (dropped)");
  }
  switch (*state) {
    case SlotState::Empty:
    case SlotState::Writing:
      return make_error(ErrorCode::Empty, field(tail, "state") + ": oldest message (position " +
                                              std::to_string(tail) + ") is still being written");
    case SlotState::Reading:
    case SlotState::Done:
      return make_error(ErrorCode::InvalidState,
                        field(tail, "state") + ": " + std::string(to_string(*state)) +
                            " by pid " + std::to_string(slot.owner_pid.load(std::memory_order_relaxed)) +
                            ": another consumer holds it (one consumer per ring)");
    case SlotState::Ready: break;
  }
  MessageInfo info;
  if (auto s = inspect_ready(slot, tail, info); !s) {
    skip_corrupt(slot, raw, tail);
    return make_error(ErrorCode::CorruptSegment, s.error().detail + " (dropped)");
  }
  if (info.length > out.size())
    return make_error(ErrorCode::InvalidArgument,
                      "output buffer of " + std::to_string(out.size()) + " bytes is smaller than the " +
                          std::to_string(info.length) + "-byte message");
  MEMLINK_CRASH_POINT("read.before-take");
  if (!transition_slot(slot, SlotState::Ready, SlotState::Reading)) {
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
    transition_slot(slot, SlotState::Reading, SlotState::Ready);
    return make_error(ErrorCode::Disconnected,
                      fenced ? "fenced: the segment's epoch is " + std::to_string(fence->epoch->load()) +
                                   ", this consumer's was " + std::to_string(fence->mine) +
                                   " (another daemon took over)"
                             : field(tail, "state") + ": tail moved under this consumer; gave the slot back");
  }
  // Copy first, then verify the copy: a peer scribbling on the slot now can
  // only make the check fail, never make us deliver what we did not check.
  if (info.length > 0) std::memcpy(out.data(), payload(index), info.length);
  const std::uint32_t want = slot.checksum;
  const std::uint32_t got = crc32c(out.data(), info.length);
  if (want != got) {
    skip_corrupt(slot, static_cast<std::uint8_t>(SlotState::Reading), tail);
    return make_error(ErrorCode::CorruptSegment, field(tail, "checksum") + ": stored " +
                                                     std::to_string(want) + ", payload has " +
                                                     std::to_string(got) + " (dropped)");
  }
  MEMLINK_CRASH_POINT("read.after-take");
  return info;
}

void RingBuffer::complete(SlotId id) {
  MEMLINK_CRASH_POINT("read.before-done");
  transition_slot(slot_header(id.index), SlotState::Reading, SlotState::Done);
}

void RingBuffer::release(SlotId id) {
  MEMLINK_CRASH_POINT("read.after-done");
  transition_slot(slot_header(id.index), SlotState::Done, SlotState::Empty);  // slot reusable
  hdr_->tail.store(id.position + 1, std::memory_order_release);  // pairs with producers' acquire
  MEMLINK_CRASH_POINT("read.after-release");
}

std::optional<TailView> RingBuffer::tail_view() const noexcept {
  TailView v;
  v.tail = hdr_->tail.load(std::memory_order_acquire);
  v.head = hdr_->head.load(std::memory_order_acquire);
  if (v.head <= v.tail || v.head - v.tail > capacity_) return std::nullopt;
  const SlotHeader& slot = slot_header(static_cast<std::uint32_t>(v.tail % capacity_));
  // seq_cst: a new daemon's load of a slot, after its epoch increment, is
  // one half of the fencing pattern (SPEC K-FENCE); it also acquires the
  // owner fields, stored before the state.
  v.state = slot.state.load(std::memory_order_seq_cst);
  v.owner_pid = slot.owner_pid.load(std::memory_order_relaxed);
  v.since_ns = slot.timestamp_ns.load(std::memory_order_relaxed);
  return v;
}

std::uint64_t RingBuffer::reclaimed() const noexcept {
  return hdr_->reclaimed.load(std::memory_order_relaxed);
}

// The recovery transitions. Order matters in each: a slot is made Empty
// before the tail passes it, because a producer that sees the new tail may
// claim the slot's next lap at once and expects it Empty.
bool RingBuffer::reclaim_writing(std::uint64_t tail) {
  if (hdr_->tail.load(std::memory_order_relaxed) != tail) return false;
  SlotHeader& slot = slot_header(static_cast<std::uint32_t>(tail % capacity_));
  if (!transition_slot(slot, SlotState::Writing, SlotState::Empty)) return false;
  hdr_->reclaimed.fetch_add(1, std::memory_order_relaxed);
  hdr_->tail.store(tail + 1, std::memory_order_release);
  return true;
}

bool RingBuffer::reclaim_claimed(std::uint64_t tail) {
  if (hdr_->tail.load(std::memory_order_relaxed) != tail) return false;
  SlotHeader& slot = slot_header(static_cast<std::uint32_t>(tail % capacity_));
  // Take the slot first so that a writer still between its claim and its
  // CAS loses that CAS (and if it wins later, it finds tail past its
  // position and gives the slot back: see claim()). Here the tail moves
  // before the slot is freed, so that such a writer's acquire sees it.
  // No owner stamp: the hold lasts three steps of this function, and the
  // stamp of the writer that stalled must stay (claim() relies on it).
  if (!cas_state(slot, SlotState::Empty, SlotState::Writing)) return false;
  hdr_->reclaimed.fetch_add(1, std::memory_order_relaxed);
  hdr_->tail.store(tail + 1, std::memory_order_seq_cst);
  slot.state.store(static_cast<std::uint8_t>(SlotState::Empty), std::memory_order_release);
  return true;
}

bool RingBuffer::requeue_reading(std::uint64_t tail) {
  if (hdr_->tail.load(std::memory_order_relaxed) != tail) return false;
  SlotHeader& slot = slot_header(static_cast<std::uint32_t>(tail % capacity_));
  return transition_slot(slot, SlotState::Reading, SlotState::Ready);
}

bool RingBuffer::release_done(std::uint64_t tail) {
  if (hdr_->tail.load(std::memory_order_relaxed) != tail) return false;
  SlotHeader& slot = slot_header(static_cast<std::uint32_t>(tail % capacity_));
  if (!transition_slot(slot, SlotState::Done, SlotState::Empty)) return false;
  hdr_->tail.store(tail + 1, std::memory_order_release);
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
  const std::uint64_t head = hdr_->head.load(std::memory_order_acquire);
  if (head < tail || head - tail > capacity_) return positions_error(head, tail);
  if (head == tail) return make_error(ErrorCode::Empty, ring_name(direction_, priority_) + " is empty");
  const SlotHeader& slot = slot_header(static_cast<std::uint32_t>(tail % capacity_));
  const std::uint8_t raw = load_state(slot);
  if (raw != static_cast<std::uint8_t>(SlotState::Ready)) {
    if (raw == static_cast<std::uint8_t>(SlotState::Empty) ||
        raw == static_cast<std::uint8_t>(SlotState::Writing))
      return make_error(ErrorCode::Empty, field(tail, "state") + ": oldest message is still being written");
    return make_error(slot_state_from_byte(raw) ? ErrorCode::InvalidState : ErrorCode::CorruptSegment,
                      field(tail, "state") + ": " + std::to_string(raw) + " at the tail");
  }
  MessageInfo info;
  if (auto s = inspect_ready(slot, tail, info); !s) return s.error();
  return info;
}

SlotStateCounts RingBuffer::count_states() const noexcept {
  SlotStateCounts c;
  for (std::uint32_t i = 0; i < capacity_; ++i) {
    const auto s = slot_state_from_byte(load_state(slot_header(i)));
    if (s) {
      ++c.count[static_cast<std::size_t>(*s)];
    } else {
      ++c.invalid;
    }
  }
  return c;
}

}  // namespace memlink::shm
