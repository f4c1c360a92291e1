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

TEST(Slot, TransitionIsACompareAndSwapThatStampsTheOwner) {
  SlotHeader slot{};
  std::uint8_t found = 99;
  EXPECT_FALSE(transition_slot(slot, SlotState::Writing, SlotState::Ready, &found));
  EXPECT_EQ(found, static_cast<std::uint8_t>(SlotState::Empty));
  EXPECT_EQ(slot.owner_pid.load(), 0u);  // only entering Writing/Reading stamps

  ASSERT_TRUE(transition_slot(slot, SlotState::Empty, SlotState::Writing));
  EXPECT_EQ(slot.owner_pid.load(), platform::current_pid());
  EXPECT_GT(slot.timestamp_ns.load(), 0u);
  EXPECT_EQ(load_state(slot), static_cast<std::uint8_t>(SlotState::Writing));
  // A second claimant loses.
  EXPECT_FALSE(transition_slot(slot, SlotState::Empty, SlotState::Writing, &found));
  EXPECT_EQ(found, static_cast<std::uint8_t>(SlotState::Writing));
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

TEST(Slot, OwnerIsVisibleWithTheStateItPublishes) {
  SlotHeader slot{};
  slot.owner_pid.store(12345);  // a previous, dead holder
  ASSERT_TRUE(transition_slot(slot, SlotState::Empty, SlotState::Writing));
  // Whoever sees Writing sees the new owner, never the previous one.
  EXPECT_EQ(slot.owner_pid.load(), platform::current_pid());
}

TEST(Slot, StateDecoding) {
  EXPECT_EQ(slot_state_from_byte(4), SlotState::Done);
  EXPECT_FALSE(slot_state_from_byte(5).has_value());
  EXPECT_EQ(to_string(SlotState::Reading), "Reading");
}

}  // namespace
}  // namespace memlink::shm
