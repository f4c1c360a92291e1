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
  EXPECT_FALSE(transition_slot(slot, SlotState::Ready, SlotState::Reading, &found));
  EXPECT_EQ(found, static_cast<std::uint8_t>(SlotState::Empty));
  EXPECT_EQ(slot.owner_pid.load(), 0u);

  ASSERT_TRUE(transition_slot(slot, SlotState::Empty, SlotState::Writing));
  EXPECT_EQ(slot.owner_pid.load(), platform::current_pid());
  EXPECT_GT(slot.timestamp_ns.load(), 0u);
  EXPECT_EQ(load_state(slot), static_cast<std::uint8_t>(SlotState::Writing));
  // A second claimant loses.
  EXPECT_FALSE(transition_slot(slot, SlotState::Empty, SlotState::Writing, &found));
  EXPECT_EQ(found, static_cast<std::uint8_t>(SlotState::Writing));
}

TEST(Slot, StateDecoding) {
  EXPECT_EQ(slot_state_from_byte(4), SlotState::Done);
  EXPECT_FALSE(slot_state_from_byte(5).has_value());
  EXPECT_EQ(to_string(SlotState::Reading), "Reading");
}

}  // namespace
}  // namespace memlink::shm
