// The slot word (SPEC S-WORD, S-STATES, S-TRANSITIONS): the one place where a
// slot changes hands between processes.
//
// Layout version 2 keeps a slot's whole hand-off state in one 64-bit word:
//
//   bit 63            40 39                              8 7          0
//   +------------------+---------------------------------+------------+
//   | generation (24)  | owner pid (32)                   | state (8)  |
//   +------------------+---------------------------------+------------+
//
// generation = (position / capacity) mod 2^24, the lap the word belongs to.
// The owner pid is the process that holds the slot in Writing, Reading or
// Done, 0 in Empty and Ready. Because state, holder and lap change in one
// atomic step, whoever reads the word knows exactly who holds the slot for
// which message; a writer that stalled past its lap finds a word of another
// generation and its CAS fails (SPEC K-CLAIMED), and recovery takes a slot
// only from the holder it judged (SPEC K-STALE).
//
//   producer                                consumer
//   Empty(g) ─CAS─▶ Writing(g,w) ─store─▶ Ready(g) ─CAS─▶ Reading(g,c) ─store─▶ Done(g,c) ─store─▶ Empty(g+1)
//            claim             publish             take                 complete             release
//            [S-WORD.claim]    [S-WORD.publish]    [S-WORD.take]        (consumer's own)     [S-WORD.release]
//
// Ordering pairs (the tag names both halves, grep for it):
//  - [S-WORD.publish] the writer's release store of Ready publishes length,
//    sequence, checksum, position and payload; the consumer's acquire load
//    of the word in take() sees them.
//  - [S-WORD.release] the consumer's release store of Empty(g+1) precedes its
//    release store of tail; a producer's acquire load of tail (claim) then
//    sees the slot Empty for its lap.
//  - [K-FENCE] the take CAS and the epoch load are seq_cst, against the new
//    daemon's seq_cst epoch increment and seq_cst load of the word.
//
// Locked instructions per message: the producer's head CAS and its claim
// CAS; the consumer's take CAS. Publish, complete and release are plain
// stores by the slot's holder: only recovery changes a held slot, and only
// when its holder is dead (SPEC K-STALE), so nobody races those stores.
//
// Recovery's own transitions (SPEC K-*) are CASes from the word it judged:
//   Writing(g, dead) ──▶ Empty(g+1)   reclaimed: never delivered, tail + 1
//   Empty(g) at a claimed tail ──▶ Empty(g+1)   the claimer never entered, tail + 1
//   Reading(g, dead) ──▶ Ready(g)     delivered again (at-least-once)
//   Done(g, dead)    ──▶ Empty(g+1)   the dead consumer had finished, tail + 1
//   Empty(g+1) at the tail            released, tail not yet moved: tail + 1
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "memlink/shm/layout.hpp"
#include "memlink/shm/platform.hpp"

namespace memlink::shm {

enum class SlotState : std::uint8_t { Empty = 0, Writing = 1, Ready = 2, Reading = 3, Done = 4 };
inline constexpr std::size_t kSlotStateCount = 5;

inline constexpr unsigned kGenerationBits = 24;
inline constexpr std::uint32_t kGenerationMask = (1u << kGenerationBits) - 1;

constexpr std::string_view to_string(SlotState s) noexcept {
  switch (s) {
    case SlotState::Empty: return "Empty";
    case SlotState::Writing: return "Writing";
    case SlotState::Ready: return "Ready";
    case SlotState::Reading: return "Reading";
    case SlotState::Done: return "Done";
  }
  return "Invalid";
}

// Decodes a state byte read from shared memory; nullopt for garbage.
constexpr std::optional<SlotState> slot_state_from_byte(std::uint8_t b) noexcept {
  if (b < kSlotStateCount) return static_cast<SlotState>(b);
  return std::nullopt;
}

// A slot word taken apart (SPEC S-WORD). `state` is the raw byte: a peer may
// have written garbage there.
struct SlotWord {
  std::uint8_t state = 0;
  std::uint32_t owner_pid = 0;
  std::uint32_t generation = 0;

  static constexpr SlotWord decode(std::uint64_t w) noexcept {
    return {static_cast<std::uint8_t>(w & 0xFF), static_cast<std::uint32_t>(w >> 8),
            static_cast<std::uint32_t>(w >> 40) & kGenerationMask};
  }
  constexpr std::uint64_t encode() const noexcept {
    return std::uint64_t{state} | (std::uint64_t{owner_pid} << 8) |
           (std::uint64_t{generation & kGenerationMask} << 40);
  }
  constexpr std::optional<SlotState> known_state() const noexcept { return slot_state_from_byte(state); }
  friend constexpr bool operator==(const SlotWord&, const SlotWord&) = default;
};

constexpr std::uint64_t slot_word(SlotState s, std::uint32_t pid, std::uint32_t generation) noexcept {
  return SlotWord{static_cast<std::uint8_t>(s), pid, generation}.encode();
}

// The lap of `position` in a ring of `capacity` slots, as the word stores it.
constexpr std::uint32_t generation_of(std::uint64_t position, std::uint32_t capacity) noexcept {
  return static_cast<std::uint32_t>(position / capacity) & kGenerationMask;
}
constexpr std::uint32_t next_generation(std::uint32_t g) noexcept { return (g + 1) & kGenerationMask; }

// What the word at a consumer's tail means, the tail being of lap g (SPEC
// S-WORD). take(), peek() and wait() all decide by this one function.
enum class TailWord : std::uint8_t {
  Ready,    // Ready(g): a message
  NotYet,   // Empty(g) or Writing(g): claimed, not published yet; or
            // Empty(g+1): released, the tail not moved yet (K-DONE)
  Held,     // Reading(g) or Done(g): a consumer holds it or died there
  Garbage,  // anything else (another lap, an unknown state, Ready with a
            // holder): dropped as corrupt (V-SLOT)
};
constexpr TailWord classify_tail_word(std::uint64_t word, std::uint32_t g) noexcept {
  if (word == slot_word(SlotState::Ready, 0, g)) return TailWord::Ready;
  const SlotWord w = SlotWord::decode(word);
  if (word == slot_word(SlotState::Empty, 0, g) || word == slot_word(SlotState::Empty, 0, next_generation(g)))
    return TailWord::NotYet;
  if (w.generation != g) return TailWord::Garbage;
  switch (w.state) {
    case static_cast<std::uint8_t>(SlotState::Writing): return TailWord::NotYet;
    case static_cast<std::uint8_t>(SlotState::Reading):
    case static_cast<std::uint8_t>(SlotState::Done): return TailWord::Held;
    default: return TailWord::Garbage;
  }
}

// The five transitions of normal operation (SPEC S-TRANSITIONS). Recovery's
// own transitions are listed in SPEC K-* and are not accepted here.
constexpr bool is_normal_transition(SlotState from, SlotState to) noexcept {
  switch (from) {
    case SlotState::Empty: return to == SlotState::Writing;
    case SlotState::Writing: return to == SlotState::Ready;
    case SlotState::Ready: return to == SlotState::Reading;
    case SlotState::Reading: return to == SlotState::Done;
    case SlotState::Done: return to == SlotState::Empty;
  }
  return false;
}

// Recovery's transitions (SPEC K-*), for a slot whose holder is dead.
constexpr bool is_recovery_transition(SlotState from, SlotState to) noexcept {
  return (from == SlotState::Writing && to == SlotState::Empty) ||
         (from == SlotState::Reading && to == SlotState::Ready) ||
         (from == SlotState::Done && to == SlotState::Empty);
}

// The word, acquire: pairs with the release of the store or CAS that wrote it.
inline std::uint64_t load_word(const SlotHeader& slot) noexcept {
  return slot.word.load(std::memory_order_acquire);
}
// The raw state byte of the word.
inline std::uint8_t load_state(const SlotHeader& slot) noexcept {
  return static_cast<std::uint8_t>(load_word(slot) & 0xFF);
}
inline SlotWord load_slot_word(const SlotHeader& slot) noexcept { return SlotWord::decode(load_word(slot)); }

// A CAS of the whole word, seq_cst (K-FENCE needs it for take; elsewhere it
// is the same instruction). On failure `found` gets the word seen.
inline bool cas_word(SlotHeader& slot, std::uint64_t expected, std::uint64_t desired,
                     std::uint64_t* found = nullptr) noexcept {
  if (slot.word.compare_exchange_strong(expected, desired, std::memory_order_seq_cst,
                                        std::memory_order_seq_cst))
    return true;
  if (found != nullptr) *found = expected;
  return false;
}

// A holder's store of its own slot's next word (publish, complete, release).
inline void store_word(SlotHeader& slot, std::uint64_t w) noexcept {
  slot.word.store(w, std::memory_order_release);
}

// A generic transition for tests, tools and the testing build's broken
// recoveries: moves the slot from `from` to `to` if it is in `from` and the
// move is one of SPEC's (is_normal_transition or is_recovery_transition;
// anything else is refused, found = the state it is in), keeping the word's
// generation (bumping it on entering Empty) and recording this process as
// the holder of Writing, Reading and Done. The ring itself never uses this:
// it builds the exact word its position expects and changes it only through
// cas_word and store_word (buffer.cpp, each with its SPEC tag), because the
// generation it must expect comes from the position, not from the word.
inline bool transition_slot(SlotHeader& slot, SlotState from, SlotState to,
                            std::uint8_t* found = nullptr) noexcept {
  if (!is_normal_transition(from, to) && !is_recovery_transition(from, to)) {
    if (found != nullptr) *found = load_state(slot);
    return false;
  }
  const std::uint64_t now = load_word(slot);
  const SlotWord w = SlotWord::decode(now);
  if (w.state != static_cast<std::uint8_t>(from)) {
    if (found != nullptr) *found = w.state;
    return false;
  }
  const bool held = to == SlotState::Writing || to == SlotState::Reading || to == SlotState::Done;
  const std::uint32_t pid = to == SlotState::Done ? w.owner_pid : held ? platform::current_pid() : 0;
  const std::uint32_t g = to == SlotState::Empty ? next_generation(w.generation) : w.generation;
  std::uint64_t seen = 0;
  if (cas_word(slot, now, slot_word(to, pid, g), &seen)) return true;
  if (found != nullptr) *found = static_cast<std::uint8_t>(seen & 0xFF);
  return false;
}

// For tests and simulated peers: overwrite one part of the word.
inline void poke_state_byte(SlotHeader& slot, std::uint8_t raw) noexcept {
  const std::uint64_t w = slot.word.load();
  slot.word.store((w & ~std::uint64_t{0xFF}) | raw);
}
inline void poke_owner(SlotHeader& slot, std::uint32_t pid) noexcept {
  SlotWord w = load_slot_word(slot);
  w.owner_pid = pid;
  slot.word.store(w.encode());
}

}  // namespace memlink::shm
