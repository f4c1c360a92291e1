// The slot state machine (SPEC S-STATES, S-TRANSITIONS): the one place where
// a slot changes hands between processes.
//
//        producer                         consumer
//   Empty ──CAS──▶ Writing ──CAS──▶ Ready ──CAS──▶ Reading ──CAS──▶ Done ──CAS──▶ Empty
//          claim     fill,      publish       take      copy,     finish    release
//                    checksum   (release)   (acquire)   verify              (release)
//
// Every transition is one compare-and-swap on `state` with acq_rel order:
//  - Writing -> Ready is the release that publishes length, sequence,
//    checksum and payload; the consumer's acquire load of Ready sees them.
//  - Done -> Empty is the release that hands the slot back; a producer's
//    acquire load of the ring tail (stored after it) sees the slot Empty.
// The owner pid and a timestamp are stamped on entering Writing and Reading
// so that recovery (SPEC K-*) can tell whose half-finished work a slot holds.
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

// The single cross-process hand-off helper. Moves `slot` from `from` to `to`
// if it is in `from`; returns false (and the state found in `found`) if not.
// Entering Writing or Reading records this process as the owner.
inline bool transition_slot(SlotHeader& slot, SlotState from, SlotState to,
                            std::uint8_t* found = nullptr) noexcept {
  auto expected = static_cast<std::uint8_t>(from);
  if (!slot.state.compare_exchange_strong(expected, static_cast<std::uint8_t>(to),
                                          std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
    if (found != nullptr) *found = expected;
    return false;
  }
  if (to == SlotState::Writing || to == SlotState::Reading) {
    // Relaxed: these are diagnostics for recovery and the inspector; the
    // data hand-off is ordered by the state CAS alone.
    slot.owner_pid.store(platform::current_pid(), std::memory_order_relaxed);
    slot.timestamp_ns.store(platform::monotonic_ns(), std::memory_order_relaxed);
  }
  return true;
}

}  // namespace memlink::shm
