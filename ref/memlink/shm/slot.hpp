// The slot state machine (SPEC S-STATES, S-TRANSITIONS): the one place where
// a slot changes hands between processes.
//
//        producer                         consumer
//   Empty ──CAS──▶ Writing ──CAS──▶ Ready ──CAS──▶ Reading ──CAS──▶ Done ──CAS──▶ Empty
//          claim     fill,      publish       take      copy,     finish    release
//                    checksum   (release)   (acquire)   verify              (release)
//
// Every transition is one compare-and-swap on `state`, seq_cst (on x86 the
// same instruction as acq_rel; seq_cst because fencing, SPEC K-FENCE, pairs
// the consumer's take CAS and its epoch load with the new daemon's epoch
// increment and its load of the slot, a store-buffering pattern):
//  - Writing -> Ready is the release that publishes length, sequence,
//    checksum and payload; the consumer's acquire load of Ready sees them.
//  - Done -> Empty is the release that hands the slot back; a producer's
//    acquire load of the ring tail (stored after it) sees the slot Empty.
// The owner pid and a timestamp are stamped *before* entering Writing and
// Reading (the CAS then publishes them), so that whoever sees a slot in
// Writing or Reading with acquire also sees who holds it and since when:
// recovery (SPEC K-*) decides on exactly that.
//
// Recovery's own transitions (SPEC K-WRITING, K-READING, K-DONE) are below
// the normal ones; only the ring's consumer performs them, only on the slot
// at its tail, and only when the holder is dead (recovery.hpp decides).
//
//   Writing (dead owner) ──▶ Empty    reclaimed: never delivered, tail + 1
//   Reading (dead owner) ──▶ Ready    delivered again (at-least-once)
//   Done    (dead owner) ──▶ Empty    the dead consumer had finished, tail + 1
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "memlink/shm/layout.hpp"
#include "memlink/shm/platform.hpp"

namespace memlink::shm {

enum class SlotState : std::uint8_t { Empty = 0, Writing = 1, Ready = 2, Reading = 3, Done = 4 };
inline constexpr std::size_t kSlotStateCount = 5;

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

// The raw state byte, acquire: pairs with the release of the transition that
// stored it.
inline std::uint8_t load_state(const SlotHeader& slot) noexcept {
  return slot.state.load(std::memory_order_acquire);
}

// Recovery's transitions (SPEC K-*), for a slot whose holder is dead.
constexpr bool is_recovery_transition(SlotState from, SlotState to) noexcept {
  return (from == SlotState::Writing && to == SlotState::Empty) ||
         (from == SlotState::Reading && to == SlotState::Ready) ||
         (from == SlotState::Done && to == SlotState::Empty);
}

// Records this process as the holder of `slot` (SPEC S-OWNER).
inline void stamp_owner(SlotHeader& slot) noexcept {
  slot.owner_pid.store(platform::current_pid(), std::memory_order_relaxed);
  slot.timestamp_ns.store(platform::coarse_monotonic_ns(), std::memory_order_relaxed);
}

// The state CAS alone, stamping nothing: for a step that must not overwrite
// the stamp of whoever may hold the slot (K-CLAIMED's fence, a writer
// retrying for a slot another process holds).
inline bool cas_state(SlotHeader& slot, SlotState from, SlotState to, std::uint8_t* found = nullptr) noexcept {
  auto expected = static_cast<std::uint8_t>(from);
  if (!slot.state.compare_exchange_strong(expected, static_cast<std::uint8_t>(to), std::memory_order_seq_cst,
                                          std::memory_order_seq_cst)) {
    if (found != nullptr) *found = expected;
    return false;
  }
  return true;
}

// The single cross-process hand-off helper. Moves `slot` from `from` to `to`
// if it is in `from`; returns false (and the state found in `found`) if not.
// Entering Writing or Reading records this process as the owner first: the
// caller has the right to the slot already (its claimed position, or the
// consumer's tail), and the CAS's release makes the stamp visible together
// with the new state. (One race breaks "nobody else writes these fields
// meanwhile": a writer stalled past the claim timeout whose position was
// reclaimed; claim() re-stamps after its CAS, see K-CLAIMED.)
inline bool transition_slot(SlotHeader& slot, SlotState from, SlotState to,
                            std::uint8_t* found = nullptr) noexcept {
  if (to == SlotState::Writing || to == SlotState::Reading) stamp_owner(slot);
  auto expected = static_cast<std::uint8_t>(from);
  if (!slot.state.compare_exchange_strong(expected, static_cast<std::uint8_t>(to),
                                          std::memory_order_seq_cst,
                                          std::memory_order_seq_cst)) {
    if (found != nullptr) *found = expected;
    return false;
  }
  return true;
}

}  // namespace memlink::shm
