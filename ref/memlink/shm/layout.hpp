// The segment layout: constants, the three structures that live in shared
// memory (control region, ring header, slot header) and the geometry that
// places the rings. SPEC.md section "Layout" is the normative version of this
// file; the static_asserts below pin every offset it lists.
//
//   offset 0                 4096
//   +------------------------+------------------------------------------------+
//   | ControlRegion (4096 B) | c2d rings: [crit][high][low] | d2c rings: same  |
//   +------------------------+------------------------------------------------+
//   each ring: RingHeader (192 B) then `capacity` slots of `slot_stride` bytes:
//   +------------+------------+-----------+-----------------+-----------------+
//   | meta line  | head line  | tail line | slot 0: hdr|data | slot 1: ...     |
//   +------------+------------+-----------+-----------------+-----------------+
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "memlink/shm/priority.hpp"
#include "memlink/shm/result.hpp"
#include "memlink/shm/shared_atomic.hpp"

namespace memlink::shm {

inline constexpr std::size_t PAGE_SIZE = 4096;
inline constexpr std::size_t CACHE_LINE_SIZE = 64;
inline constexpr std::size_t CONTROL_REGION_SIZE = 4096;
inline constexpr std::size_t RING_BUFFER_OFFSET = CONTROL_REGION_SIZE;
inline constexpr std::size_t CLIENT_TABLE_SIZE = 128;  // SPEC K-CLIENTS
inline constexpr std::size_t MIN_SEGMENT_SIZE = CONTROL_REGION_SIZE + 1;
inline constexpr std::size_t DEFAULT_SEGMENT_SIZE = CONTROL_REGION_SIZE + (std::size_t{1} << 20);
inline constexpr std::size_t MAX_SEGMENT_SIZE = CONTROL_REGION_SIZE + (std::size_t{256} << 20);
inline constexpr std::size_t MAX_SLOT_SIZE = 4096;  // payload bytes per slot, at most
inline constexpr std::size_t SLOT_HEADER_SIZE = 64;
inline constexpr std::size_t RING_HEADER_SIZE = 3 * CACHE_LINE_SIZE;

inline constexpr std::uint64_t SEGMENT_MAGIC = 0x314B4E494C4D454DULL;  // "MEMLINK1" little-endian
// 2: the slot word (SPEC S-WORD) replaced v1's state byte, owner pid and
// timestamp. A v1 segment is refused with ProtocolMismatch naming both.
inline constexpr std::uint32_t LAYOUT_VERSION = 2;
inline constexpr std::uint32_t RING_MAGIC = 0x474E4952;  // "RING"

inline constexpr std::uint32_t BACKPRESSURE_MAX = 1000;  // fixed point: 1000 = 1.0

// Control-region flag bits (SPEC C-FLAGS).
inline constexpr std::uint32_t FLAG_SHUTDOWN = 1u << 0;  // daemon shut down cleanly
inline constexpr std::uint32_t FLAG_POISONED = 1u << 1;  // structural corruption seen
inline constexpr std::uint32_t FLAGS_KNOWN = FLAG_SHUTDOWN | FLAG_POISONED;

enum class Direction : std::uint8_t { ClientToDaemon = 0, DaemonToClient = 1 };
inline constexpr std::size_t kDirectionCount = 2;

constexpr const char* to_string(Direction d) noexcept {
  return d == Direction::ClientToDaemon ? "c2d" : "d2c";
}

// A futex word and the count of processes sleeping on it. The waker only
// makes the wake syscall when `waiters` is non-zero (SPEC F-WAKE).
struct alignas(CACHE_LINE_SIZE) FutexWord {
  SharedAtomic<std::uint32_t> word;
  SharedAtomic<std::uint32_t> waiters;
  std::uint8_t pad_[CACHE_LINE_SIZE - 8];
};
static_assert(sizeof(FutexWord) == CACHE_LINE_SIZE);

// SPEC C-LAYOUT. One cache line per writer so the daemon's and the clients'
// stores do not contend.
struct alignas(CACHE_LINE_SIZE) ControlRegion {
  // Line 0 (offset 0): identity and geometry. Written once by the creator;
  // `magic` is stored last with release, so a reader that sees the magic with
  // acquire sees the rest (SPEC C-INIT).
  SharedAtomic<std::uint64_t> magic;       //   0
  std::uint32_t layout_version;           //   8
  std::uint16_t protocol_version;         //  12
  std::uint16_t reserved0;                //  14
  std::uint64_t segment_size;             //  16
  std::uint32_t slot_size;                //  24 payload bytes per slot
  std::uint32_t slot_stride;              //  28 bytes from one slot to the next
  std::uint32_t slots_per_direction;      //  32 n, input of the distribution
  std::uint32_t slot_count[kDirectionCount][kPriorityCount];  // 36..59
  SharedAtomic<std::uint32_t> flags;       //  60

  // Line 1 (offset 64): written by the daemon.
  SharedAtomic<std::uint32_t> daemon_alive;      //  64
  SharedAtomic<std::uint32_t> daemon_pid;        //  68
  SharedAtomic<std::uint64_t> heartbeat_ns;      //  72 CLOCK_MONOTONIC
  SharedAtomic<std::uint64_t> epoch;             //  80
  SharedAtomic<std::uint32_t> backpressure;      //  88 0..1000
  SharedAtomic<std::uint32_t> d2c_consumer_pid;  //  92 the client reading d2c, 0 if none
  SharedAtomic<std::uint64_t> heartbeat_interval_ns;  //  96 how often heartbeat_ns is stamped (0: unknown)
  std::uint8_t pad1_[CACHE_LINE_SIZE - 40];

  // Line 2 (offset 128): client bookkeeping.
  SharedAtomic<std::uint32_t> client_count;  // 128
  std::uint8_t pad2_[CACHE_LINE_SIZE - 4];

  // Line 3 (offset 192): written by clients that found the client table full.
  SharedAtomic<std::uint64_t> client_head;  // 192 c2d messages they published (T-COUNTERS)
  std::uint64_t unused_200_;                // 200 was client_seq (T-SEQ: sequences are positions)
  std::uint8_t pad3_[CACHE_LINE_SIZE - 16];

  // Line 4 (offset 256): written by the daemon.
  SharedAtomic<std::uint64_t> daemon_tail;  // 256 messages consumed c2d
  std::uint64_t unused_264_;                // 264 was daemon_seq
  std::uint8_t pad4_[CACHE_LINE_SIZE - 16];

  // Lines 5..8: futex words (SPEC F-WORDS).
  FutexWord daemon_futex;     // 320 bumped when c2d gets a message; daemon sleeps here
  FutexWord client_futex;     // 384 bumped when d2c gets a message; clients sleep here
  FutexWord c2d_space_futex;  // 448 bumped when a c2d slot is freed; blocked writers sleep
  FutexWord d2c_space_futex;  // 512 bumped when a d2c slot is freed

  // Lines 9..16 (offset 576): SPEC K-CLIENTS. A connected client's pid sits
  // in one entry (0 = free), so that a client killed before it could leave
  // is found by its pid and taken off client_count.
  SharedAtomic<std::uint32_t> client_pids[CLIENT_TABLE_SIZE];  // 576

  // Lines 17..32 (offset 1088): SPEC T-COUNTERS. The c2d messages published
  // by the clients that held each table entry, at published_index(entry):
  // the first 16 entries on 16 different lines, so that clients do not take
  // a counter's line from each other on every message. Never reset: a
  // client that takes a freed entry counts on from its predecessor's total.
  SharedAtomic<std::uint64_t> client_published[CLIENT_TABLE_SIZE];  // 1088

  std::uint8_t reserved_[CONTROL_REGION_SIZE - 1088 - 8 * CLIENT_TABLE_SIZE];
};

static_assert(sizeof(ControlRegion) == CONTROL_REGION_SIZE);
static_assert(offsetof(ControlRegion, magic) == 0);
static_assert(offsetof(ControlRegion, layout_version) == 8);
static_assert(offsetof(ControlRegion, protocol_version) == 12);
static_assert(offsetof(ControlRegion, segment_size) == 16);
static_assert(offsetof(ControlRegion, slot_size) == 24);
static_assert(offsetof(ControlRegion, slot_stride) == 28);
static_assert(offsetof(ControlRegion, slots_per_direction) == 32);
static_assert(offsetof(ControlRegion, slot_count) == 36);
static_assert(offsetof(ControlRegion, flags) == 60);
static_assert(offsetof(ControlRegion, daemon_alive) == 64);
static_assert(offsetof(ControlRegion, daemon_pid) == 68);
static_assert(offsetof(ControlRegion, heartbeat_ns) == 72);
static_assert(offsetof(ControlRegion, epoch) == 80);
static_assert(offsetof(ControlRegion, backpressure) == 88);
static_assert(offsetof(ControlRegion, d2c_consumer_pid) == 92);
static_assert(offsetof(ControlRegion, heartbeat_interval_ns) == 96);
static_assert(offsetof(ControlRegion, client_count) == 128);
static_assert(offsetof(ControlRegion, client_head) == 192);
static_assert(offsetof(ControlRegion, daemon_tail) == 256);
static_assert(offsetof(ControlRegion, daemon_futex) == 320);
static_assert(offsetof(ControlRegion, client_futex) == 384);
static_assert(offsetof(ControlRegion, c2d_space_futex) == 448);
static_assert(offsetof(ControlRegion, d2c_space_futex) == 512);
static_assert(offsetof(ControlRegion, client_pids) == 576);
static_assert(offsetof(ControlRegion, client_published) == 1088);

// Where client_pids[entry]'s counter sits in client_published (T-COUNTERS).
constexpr std::size_t published_index(std::size_t entry) noexcept {
  constexpr std::size_t per_line = CACHE_LINE_SIZE / sizeof(std::uint64_t), lines = CLIENT_TABLE_SIZE / per_line;
  return (entry % lines) * per_line + entry / lines;
}

// SPEC R-LAYOUT. Head (producers) and tail (consumer) on separate lines.
struct alignas(CACHE_LINE_SIZE) RingHeader {
  // Line 0: geometry, written once when the ring is formatted.
  std::uint32_t ring_magic;   //  0
  std::uint32_t capacity;     //  4 slots in this ring
  std::uint32_t slot_size;    //  8
  std::uint32_t slot_stride;  // 12
  std::uint8_t direction;     // 16
  std::uint8_t priority;      // 17
  std::uint8_t pad0_[CACHE_LINE_SIZE - 18];
  // Line 1: claimed by producers with CAS.
  SharedAtomic<std::uint64_t> head;  // 64 next position to claim
  std::uint8_t pad1_[CACHE_LINE_SIZE - 8];
  // Line 2: owned by the consumer.
  SharedAtomic<std::uint64_t> tail;             // 128 next position to read
  SharedAtomic<std::uint64_t> corrupt_skipped;  // 136 slots dropped as corrupt
  SharedAtomic<std::uint64_t> reclaimed;        // 144 positions reclaimed by recovery (SPEC K-WRITING)
  std::uint8_t pad2_[CACHE_LINE_SIZE - 24];
};
static_assert(sizeof(RingHeader) == RING_HEADER_SIZE);
static_assert(offsetof(RingHeader, head) == 64);
static_assert(offsetof(RingHeader, tail) == 128);
static_assert(offsetof(RingHeader, corrupt_skipped) == 136);
static_assert(offsetof(RingHeader, reclaimed) == 144);

// SPEC S-LAYOUT. One cache line, followed by the payload bytes. The word
// (slot.hpp, SPEC S-WORD) is the only field more than one process writes;
// the others are written by the slot's writer before it publishes.
struct alignas(CACHE_LINE_SIZE) SlotHeader {
  SharedAtomic<std::uint64_t> word;          //  0 state | owner pid << 8 | generation << 40
  SharedField<std::uint64_t> sequence;       //  8 the writer's message number
  SharedField<std::uint32_t> length;         // 16 payload bytes
  SharedField<std::uint32_t> checksum;       // 20 CRC32C of the payload
  SharedField<std::uint8_t> priority;        // 24
  std::uint8_t reserved0_[7];                // 25
  SharedField<std::uint64_t> position;       // 32 ring position of this message
  std::uint8_t reserved1_[SLOT_HEADER_SIZE - 40];
};
static_assert(sizeof(SlotHeader) == SLOT_HEADER_SIZE);
static_assert(offsetof(SlotHeader, word) == 0);
static_assert(offsetof(SlotHeader, sequence) == 8);
static_assert(offsetof(SlotHeader, length) == 16);
static_assert(offsetof(SlotHeader, checksum) == 20);
static_assert(offsetof(SlotHeader, priority) == 24);
static_assert(offsetof(SlotHeader, position) == 32);

// Cross-process atomics must not hide a lock in process-private memory.
static_assert(std::atomic<std::uint8_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

constexpr std::size_t align_up(std::size_t v, std::size_t a) noexcept {
  return (v + a - 1) / a * a;
}

constexpr std::size_t slot_stride_for(std::size_t slot_size) noexcept {
  return align_up(SLOT_HEADER_SIZE + slot_size, CACHE_LINE_SIZE);
}

constexpr std::size_t ring_bytes(std::size_t capacity, std::size_t stride) noexcept {
  return RING_HEADER_SIZE + capacity * stride;
}

// Where everything is, derived from (segment_size, slot_size) alone (SPEC G-FIT).
struct Geometry {
  std::size_t segment_size = 0;
  std::uint32_t slot_size = 0;
  std::uint32_t slot_stride = 0;
  std::uint32_t slots_per_direction = 0;
  SlotDistribution distribution{};
  std::size_t ring_offset[kDirectionCount][kPriorityCount] = {};
  std::size_t used_bytes = 0;  // end of the last ring

  std::uint32_t capacity(Priority p) const noexcept { return distribution.of(p); }
  std::size_t offset(Direction d, Priority p) const noexcept {
    return ring_offset[static_cast<std::size_t>(d)][static_cast<std::size_t>(p)];
  }
};

// Lays out rings for n slots per direction; used_bytes tells whether it fits.
Geometry layout_for(std::size_t segment_size, std::uint32_t slot_size, std::uint32_t n) noexcept;

// The largest n whose layout fits in segment_size. InvalidArgument if the
// size is outside [MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE], the slot size outside
// [1, MAX_SLOT_SIZE], or not even one slot per priority fits.
Result<Geometry> compute_geometry(std::size_t segment_size, std::uint32_t slot_size = MAX_SLOT_SIZE);

// Smallest segment that holds one slot per priority in both directions.
std::size_t min_transport_segment_size(std::uint32_t slot_size) noexcept;

}  // namespace memlink::shm
