#include "memlink/shm/layout.hpp"

#include <gtest/gtest.h>

namespace memlink::shm {
namespace {

TEST(Layout, ConstantsMatchTheSpec) {
  EXPECT_EQ(CONTROL_REGION_SIZE, 4096u);
  EXPECT_EQ(RING_BUFFER_OFFSET, 4096u);
  EXPECT_EQ(MIN_SEGMENT_SIZE, 4097u);
  EXPECT_EQ(DEFAULT_SEGMENT_SIZE, 4096u + 1048576u);
  EXPECT_EQ(MAX_SEGMENT_SIZE, 4096u + 268435456u);
  EXPECT_EQ(MAX_SLOT_SIZE, 4096u);
  EXPECT_EQ(sizeof(ControlRegion), 4096u);
  EXPECT_EQ(sizeof(RingHeader), 192u);
  EXPECT_EQ(sizeof(SlotHeader), 64u);
}

TEST(Layout, DefaultSegmentGeometry) {
  auto g = compute_geometry(DEFAULT_SEGMENT_SIZE);
  ASSERT_TRUE(g.ok()) << g.error().message();
  EXPECT_EQ(g->slot_size, MAX_SLOT_SIZE);
  EXPECT_EQ(g->slot_stride, 64u + 4096u);
  EXPECT_EQ(g->slots_per_direction, 125u);
  EXPECT_EQ(g->distribution, (SlotDistribution{25, 63, 37}));
  EXPECT_LE(g->used_bytes, DEFAULT_SEGMENT_SIZE);
  // One more slot per direction would not fit: n is the largest that does.
  EXPECT_GT(layout_for(DEFAULT_SEGMENT_SIZE, MAX_SLOT_SIZE, 126).used_bytes, DEFAULT_SEGMENT_SIZE);
}

TEST(Layout, RingsAreContiguousCacheAlignedAndInsideTheSegment) {
  for (std::size_t size : {min_transport_segment_size(MAX_SLOT_SIZE), std::size_t{100000},
                           DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE}) {
    auto g = compute_geometry(size);
    ASSERT_TRUE(g.ok()) << size << ": " << g.error().message();
    std::size_t expect = RING_BUFFER_OFFSET;
    for (Direction d : {Direction::ClientToDaemon, Direction::DaemonToClient}) {
      for (Priority p : kAllPriorities) {
        EXPECT_EQ(g->offset(d, p), expect);
        EXPECT_EQ(g->offset(d, p) % CACHE_LINE_SIZE, 0u);
        expect += ring_bytes(g->capacity(p), g->slot_stride);
      }
    }
    EXPECT_EQ(g->used_bytes, expect);
    EXPECT_LE(g->used_bytes, size);
  }
}

TEST(Layout, SizeLimitsAreEnforced) {
  EXPECT_EQ(compute_geometry(MIN_SEGMENT_SIZE - 1).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(compute_geometry(MAX_SEGMENT_SIZE + 1).code(), ErrorCode::InvalidArgument);
  // In range for the mmap layer, but too small for a slot per priority.
  auto small = compute_geometry(MIN_SEGMENT_SIZE);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.code(), ErrorCode::InvalidArgument);
  EXPECT_NE(small.error().detail.find("need at least"), std::string::npos);
  EXPECT_EQ(compute_geometry(DEFAULT_SEGMENT_SIZE, 0).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(compute_geometry(DEFAULT_SEGMENT_SIZE, MAX_SLOT_SIZE + 1).code(), ErrorCode::InvalidArgument);
}

TEST(Layout, SmallSlotsGiveMoreSlots) {
  auto g = compute_geometry(DEFAULT_SEGMENT_SIZE, 64);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->slot_stride, 128u);
  EXPECT_GT(g->slots_per_direction, 4000u);
}

}  // namespace
}  // namespace memlink::shm
