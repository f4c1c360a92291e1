// The executable model of SPEC.md: what a conforming transport does, written
// as plainly as possible. Single-threaded, no atomics, no shared memory. Per
// direction and priority it keeps a FIFO of the messages between tail and
// head, each with its slot state. Every operation returns the outcome the
// spec requires and names the clause that decides it.
//
// It is the one oracle of the conformance suite (conformance/), and is meant
// for the differential fuzzer and the chaos checker too.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "memlink/shm/layout.hpp"
#include "memlink/shm/priority.hpp"
#include "memlink/shm/result.hpp"
#include "memlink/shm/segment_age.hpp"
#include "memlink/shm/slot.hpp"
#include "memlink/spec/clause_ids.hpp"

namespace memlink::model {

// Vocabulary shared with the reference (enums only; no behaviour), and the
// clause ids of SPEC.md (generated from it at build time).
using shm::Direction;
using shm::ErrorCode;
using shm::Priority;
using shm::SlotState;
using spec::ClauseId;

struct Config {
  std::size_t segment_size = 0;
  std::uint32_t slot_size = 0;
  std::uint16_t protocol_version = 1;
  // An implementation without the SPEC layout (a driver that does not claim
  // spec_layout) is not bound by G-DIST: its own ring capacities, per
  // priority, as it reported them. Unset: G-FIT and G-DIST decide.
  std::optional<std::array<std::uint32_t, shm::kPriorityCount>> capacity;
  // How old the segment is formatted (SPEC C-AGE): where positions start.
  shm::SegmentAge age = shm::SegmentAge::Fresh;
};
// For counterexamples (RapidCheck finds it by argument-dependent lookup).
void showValue(const Config& c, std::ostream& os);

// G-DIST, written out as the spec states it, in integers.
shm::SlotDistribution distribution(std::uint32_t n);

// G-FIT / G-PLACE: slots per direction for a segment, or nullopt if too small.
std::optional<std::uint32_t> slots_per_direction(std::size_t segment_size, std::uint32_t slot_size);

struct Message {
  Priority priority = Priority::Low;
  std::uint64_t sequence = 0;
  std::vector<std::byte> payload;
  friend bool operator==(const Message&, const Message&) = default;
};

// The result the spec requires of one operation.
struct Outcome {
  std::optional<ErrorCode> error;  // nullopt: Ok
  ClauseId clause = ClauseId::E_CODES;  // the clause that decides this outcome
  std::optional<Message> message;  // read and peek (peek: payload left empty)
  std::uint64_t sequence = 0;      // write: the sequence number taken
  std::uint32_t length = 0;        // peek: the payload length
  bool ok() const { return !error.has_value(); }
};

// What a hostile peer changes in the oldest Ready slot of a ring (SPEC
// V-SLOT, V-ONCE): every field a peer can write, each with the outcome the
// spec requires.
enum class Corruption : std::uint8_t {
  Payload,          // a payload byte (the checksum, for an empty payload): dropped
  ChecksumLowBit,   // checksum bit 3: dropped
  ChecksumHighBit,  // checksum bit 27: dropped
  LengthPastSlot,   // length = slot_size + 1: dropped; peek fails
  LengthInPadding,  // length = the end of the slot's padding (stride - 64; slot_size + 1
                    // when slot_size is a multiple of 64): dropped; peek fails
  LengthShorter,    // length - 1: the checksum no longer matches (dropped), unless CRC32C
                    // of the shorter payload happens to equal it (then delivered, shorter)
  Priority,         // another ring's priority: dropped; peek fails
  Position,         // position + 1: dropped; peek fails
  State,            // a state byte that is no state (0xEE): dropped; peek fails
  Sequence,         // sequence + 1000: no longer the position (T-SEQ): dropped; peek fails
};
inline constexpr int kCorruptionCount = 10;
const char* to_string(Corruption c);

enum class WriterStop : std::uint8_t { AfterClaim, AfterFill };   // leaves Writing
enum class ReaderStop : std::uint8_t { AfterTake, AfterComplete };  // leaves Reading / Done

// What the spec makes observable about one ring.
struct RingView {
  std::uint32_t capacity = 0;
  std::uint64_t head = 0;
  std::uint64_t tail = 0;
  std::vector<SlotState> slots;  // by slot index
  std::uint64_t corrupt_skipped = 0;
  std::uint64_t reclaimed = 0;  // K-WRITING
  // Where head and tail started (SPEC C-AGE): the model's own bookkeeping,
  // not observable, and left out of the comparison.
  std::uint64_t first = 0;
  friend bool operator==(const RingView& a, const RingView& b) {
    return a.capacity == b.capacity && a.head == b.head && a.tail == b.tail && a.slots == b.slots &&
           a.corrupt_skipped == b.corrupt_skipped && a.reclaimed == b.reclaimed;
  }
};

// Everything the suite compares after each command.
struct View {
  RingView rings[shm::kDirectionCount][shm::kPriorityCount];
  std::uint32_t backpressure = 0;
  std::uint32_t client_count = 0;
  std::uint64_t client_head = 0;
  std::uint64_t daemon_tail = 0;
  bool shutdown = false;
  friend bool operator==(const View&, const View&) = default;
};

class Model {
 public:
  // nullopt if the config is not a valid transport segment (G-FIT).
  static std::optional<Model> create(const Config& config);

  Outcome write(Direction d, Priority p, std::span<const std::byte> payload);
  // Every error a write of `size` bytes may be refused with now. write()
  // returns the first (T-SHUTDOWN, T-TOO-LARGE, R-CAPACITY); SPEC.md orders
  // none of them, so an implementation may give any.
  std::vector<ErrorCode> write_refusals(Direction d, Priority p, std::size_t size) const;
  // Single-threaded, nobody frees a slot while we wait: Full becomes Timeout.
  Outcome write_blocking(Direction d, Priority p, std::span<const std::byte> payload);
  Outcome read(Direction d);
  Outcome peek(Direction d) const;
  Outcome set_backpressure(std::uint32_t permille);
  Outcome connect(std::uint16_t version);
  Outcome disconnect();
  Outcome reopen();
  Outcome shutdown();
  // A writer that stops partway (crashes) after a step of S-TRANSITIONS.
  Outcome stop_writer(Direction d, Priority p, WriterStop where, std::span<const std::byte> payload);
  // The consumer stops partway through the read it would do next.
  Outcome stop_reader(Direction d, ReaderStop where);
  // K-STALE: every writer and reader that stopped partway in direction d
  // is now dead, and the consumer of d recovers its tails (K-WRITING,
  // K-READING, K-DONE). Afterwards a read that finds nothing recovers again.
  Outcome recover(Direction d);
  struct RecoveryCounts {
    std::uint64_t writing = 0, reading = 0, done = 0;
  };
  // What the last recovery (explicit, or inside a read) did.
  const RecoveryCounts& last_recovery() const { return last_recovery_; }
  // A hostile peer corrupts the oldest message of a ring; only meaningful
  // when that message is Ready (oldest_is_corruptible).
  Outcome corrupt_oldest(Direction d, Priority p, Corruption c = Corruption::Payload);

  View view() const;
  std::uint32_t capacity(Priority p) const { return ring(Direction::ClientToDaemon, p).capacity; }
  std::uint32_t slot_size() const { return config_.slot_size; }
  std::uint16_t protocol_version() const { return config_.protocol_version; }
  std::uint32_t client_count() const { return client_count_; }
  bool is_shut_down() const { return shutdown_; }
  // True if the oldest message of the ring is Ready (readable).
  bool oldest_is_ready(Direction d, Priority p) const;
  // True if the oldest message is Ready and not corrupted yet (corrupting it
  // twice could restore it).
  bool oldest_is_corruptible(Direction d, Priority p, Corruption c = Corruption::Payload) const;
  // The message occupying slot `index` of a ring (nullopt if the slot is Empty).
  std::optional<Message> message_in_slot(Direction d, Priority p, std::uint32_t index) const;
  std::size_t pending(Direction d, Priority p) const { return ring(d, p).entries.size(); }
  // The state of the oldest message of a ring (nullopt: the ring is empty).
  std::optional<SlotState> oldest_state(Direction d, Priority p) const;
  // Acknowledged messages of direction d waiting, intact, to be delivered.
  std::size_t deliverable(Direction d) const;

 private:
  struct Entry {
    std::uint64_t position = 0;
    SlotState state = SlotState::Empty;
    Message message;
    bool corrupt = false;     // a read drops it (V-SLOT)
    bool peek_fails = false;  // a header field is invalid: peek reports CorruptSegment
    bool tampered = false;    // a peer changed it already (once is enough)
    std::optional<std::uint8_t> raw_state;  // the garbage a peer wrote into its state byte
    bool holder_dead = false;  // K-STALE: its writer or reader has died
  };
  struct Ring {
    std::uint32_t capacity = 0;
    std::uint64_t head = 0;  // tail + entries.size()
    std::uint64_t tail = 0;
    std::deque<Entry> entries;  // positions tail .. head-1, oldest first
    std::uint64_t corrupt_skipped = 0;
    std::uint64_t reclaimed = 0;
  };

  explicit Model(const Config& config, std::uint32_t n);
  Ring& ring(Direction d, Priority p) { return rings_[std::size_t(d)][std::size_t(p)]; }
  const Ring& ring(Direction d, Priority p) const { return rings_[std::size_t(d)][std::size_t(p)]; }
  std::optional<Outcome> refuse_write(Direction d, Priority p, std::size_t size) const;
  // The ring a read of direction d acts on, per R-ORDER / R-VISIBLE.
  std::optional<Priority> ring_to_read(Direction d) const;
  // The consumer's tail recovery over the rings of d; true if it did anything.
  bool recover_tails(Direction d);
  Outcome read_once(Direction d);
  RecoveryCounts last_recovery_{};

  Config config_;
  Ring rings_[shm::kDirectionCount][shm::kPriorityCount];
  std::uint64_t client_head_ = 0;
  std::uint64_t daemon_tail_ = 0;
  std::uint32_t backpressure_ = 0;
  std::uint32_t client_count_ = 0;
  bool shutdown_ = false;
};

}  // namespace memlink::model
