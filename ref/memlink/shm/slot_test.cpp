#include "memlink/shm/slot.hpp"

#include <gtest/gtest.h>

namespace memlink::shm {
namespace {

TEST(Slot, OnlyTheFiveNormalTransitionsAreAllowed) {
  int allowed = 0;
  for (std::uint8_t a = 0; a < kSlotStateCount; ++a) {
    for (std::uint8_t b = 0; b < kSlotStateCount; ++b) {
      const auto from = static_cast<SlotState>(a), to = static_cast<SlotState>(b);
      if (is_normal_transition(from, to)) ++allowed;
    }
  }
  EXPECT_EQ(allowed, 5);
  EXPECT_TRUE(is_normal_transition(SlotState::Empty, SlotState::Writing));
  EXPECT_TRUE(is_normal_transition(SlotState::Done, SlotState::Empty));
  EXPECT_FALSE(is_normal_transition(SlotState::Writing, SlotState::Reading));
  EXPECT_FALSE(is_normal_transition(SlotState::Ready, SlotState::Empty));
}

TEST(Slot, TransitionIsACompareAndSwapThatRecordsTheHolderInTheWord) {
  SlotHeader slot{};
  std::uint8_t found = 99;
  EXPECT_FALSE(transition_slot(slot, SlotState::Writing, SlotState::Ready, &found));
  EXPECT_EQ(found, static_cast<std::uint8_t>(SlotState::Empty));
  EXPECT_EQ(load_slot_word(slot).owner_pid, 0u);

  ASSERT_TRUE(transition_slot(slot, SlotState::Empty, SlotState::Writing));
  EXPECT_EQ(load_slot_word(slot).owner_pid, platform::current_pid());
  EXPECT_EQ(load_state(slot), static_cast<std::uint8_t>(SlotState::Writing));
  // A second claimant loses.
  EXPECT_FALSE(transition_slot(slot, SlotState::Empty, SlotState::Writing, &found));
  EXPECT_EQ(found, static_cast<std::uint8_t>(SlotState::Writing));
  // Ready carries no holder; entering Empty moves to the next lap.
  ASSERT_TRUE(transition_slot(slot, SlotState::Writing, SlotState::Ready));
  EXPECT_EQ(load_slot_word(slot), (SlotWord{static_cast<std::uint8_t>(SlotState::Ready), 0, 0}));
  ASSERT_TRUE(transition_slot(slot, SlotState::Ready, SlotState::Reading));
  ASSERT_TRUE(transition_slot(slot, SlotState::Reading, SlotState::Done));
  EXPECT_EQ(load_slot_word(slot).owner_pid, platform::current_pid());
  ASSERT_TRUE(transition_slot(slot, SlotState::Done, SlotState::Empty));
  EXPECT_EQ(load_slot_word(slot), (SlotWord{0, 0, 1}));
}

// Only SPEC's moves: the five of S-TRANSITIONS and recovery's three (K-*).
// Every other pair is refused without touching the word, even when the slot
// is in `from` (a tool or test cannot make a slot do what no peer may).
TEST(Slot, TransitionRefusesEveryMoveSpecDoesNotList) {
  const SlotState all[] = {SlotState::Empty, SlotState::Writing, SlotState::Ready, SlotState::Reading, SlotState::Done};
  int accepted = 0;
  for (SlotState from : all)
    for (SlotState to : all) {
      SlotHeader slot{};
      slot.word.store(slot_word(from, from == SlotState::Empty || from == SlotState::Ready ? 0 : 7, 3));
      const std::uint64_t before = load_word(slot);
      std::uint8_t found = 99;
      const bool moved = transition_slot(slot, from, to, &found);
      EXPECT_EQ(moved, is_normal_transition(from, to) || is_recovery_transition(from, to))
          << static_cast<int>(from) << " -> " << static_cast<int>(to);
      if (!moved) {
        EXPECT_EQ(load_word(slot), before);
        EXPECT_EQ(found, static_cast<std::uint8_t>(from));
      }
      accepted += moved;
    }
  EXPECT_EQ(accepted, 7);  // 5 normal + 3 recovery, Done -> Empty being both
}

// SPEC S-WORD: the bit layout every implementation must share.
TEST(Slot, TheWordPacksStatePidAndGenerationAtTheSpecifiedBits) {
  const std::uint64_t w = slot_word(SlotState::Reading, 0xDEADBEEF, 0xABCDEF);
  EXPECT_EQ(w & 0xFF, 3u);
  EXPECT_EQ((w >> 8) & 0xFFFFFFFFu, 0xDEADBEEFu);
  EXPECT_EQ(w >> 40, 0xABCDEFu);
  const SlotWord d = SlotWord::decode(w);
  EXPECT_EQ(d.state, 3u);
  EXPECT_EQ(d.owner_pid, 0xDEADBEEFu);
  EXPECT_EQ(d.generation, 0xABCDEFu);
  EXPECT_EQ(d.encode(), w);
  // The generation wraps at 2^24 laps; it is the lap of the position.
  EXPECT_EQ(generation_of(5, 4), 1u);
  EXPECT_EQ(generation_of((std::uint64_t{1} << 24) * 3 + 2, 3), 0u);
  EXPECT_EQ(next_generation(kGenerationMask), 0u);
  // Garbage in the state byte decodes as unknown, never as a state.
  EXPECT_FALSE(SlotWord::decode(0xEE).known_state().has_value());
}

TEST(Slot, RecoveryTransitionsAreExactlyTheThreeOfSpecK) {
  int allowed = 0;
  for (std::uint8_t f = 0; f < kSlotStateCount; ++f)
    for (std::uint8_t t = 0; t < kSlotStateCount; ++t) {
      const auto from = static_cast<SlotState>(f), to = static_cast<SlotState>(t);
      if (is_recovery_transition(from, to)) ++allowed;
    }
  EXPECT_EQ(allowed, 3);
  // Two are new edges; Done -> Empty is release, done for a dead consumer.
  EXPECT_FALSE(is_normal_transition(SlotState::Writing, SlotState::Empty));
  EXPECT_FALSE(is_normal_transition(SlotState::Reading, SlotState::Ready));
  EXPECT_TRUE(is_normal_transition(SlotState::Done, SlotState::Empty));
  EXPECT_TRUE(is_recovery_transition(SlotState::Writing, SlotState::Empty));
  EXPECT_TRUE(is_recovery_transition(SlotState::Reading, SlotState::Ready));
  EXPECT_TRUE(is_recovery_transition(SlotState::Done, SlotState::Empty));
}

TEST(Slot, AStalledClaimOfAnEarlierLapFailsItsCas) {  // SPEC K-CLAIMED
  SlotHeader slot{};
  slot.word.store(slot_word(SlotState::Empty, 0, 7));
  // The writer of lap 6 (stalled) expects Empty of lap 6: it loses.
  std::uint64_t found = 0;
  EXPECT_FALSE(cas_word(slot, slot_word(SlotState::Empty, 0, 6), slot_word(SlotState::Writing, 1, 6), &found));
  EXPECT_EQ(found, slot_word(SlotState::Empty, 0, 7));
  EXPECT_TRUE(cas_word(slot, slot_word(SlotState::Empty, 0, 7), slot_word(SlotState::Writing, 1, 7)));
}

// Every word a consumer can meet at a tail of lap 7, and what it means.
TEST(Slot, EveryTailWordIsClassifiedOneWay) {
  constexpr std::uint32_t g = 7;
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Ready, 0, g), g), TailWord::Ready);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Empty, 0, g), g), TailWord::NotYet);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Writing, 42, g), g), TailWord::NotYet);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Empty, 0, g + 1), g), TailWord::NotYet);  // released
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Reading, 42, g), g), TailWord::Held);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Done, 42, g), g), TailWord::Held);
  // Garbage: a Ready with a holder, another lap, a holder in Empty, an
  // unknown state, the lap before (a publish of a lap the tail passed).
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Ready, 42, g), g), TailWord::Garbage);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Ready, 0, g + 1), g), TailWord::Garbage);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Ready, 0, g - 1), g), TailWord::Garbage);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Empty, 42, g), g), TailWord::Garbage);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Empty, 0, g + 2), g), TailWord::Garbage);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Writing, 42, g + 1), g), TailWord::Garbage);
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Reading, 42, g - 1), g), TailWord::Garbage);
  EXPECT_EQ(classify_tail_word(SlotWord{0xEE, 0, g}.encode(), g), TailWord::Garbage);
  // At the wrap, the next lap of 2^24 - 1 is 0.
  EXPECT_EQ(classify_tail_word(slot_word(SlotState::Empty, 0, 0), kGenerationMask), TailWord::NotYet);
}

TEST(Slot, StateDecoding) {
  EXPECT_EQ(slot_state_from_byte(4), SlotState::Done);
  EXPECT_FALSE(slot_state_from_byte(5).has_value());
  EXPECT_EQ(to_string(SlotState::Reading), "Reading");
}

}  // namespace
}  // namespace memlink::shm
