#include "memlink/model/model.hpp"

#include <gtest/gtest.h>

namespace memlink::model {
namespace {

std::vector<std::byte> bytes(std::size_t n, int v = 1) { return std::vector<std::byte>(n, std::byte(v)); }

Model small(std::uint32_t slot = 64) {
  // n = 4: capacities 1 / 2 / 1.
  const std::size_t stride = (64 + slot + 63) / 64 * 64;
  auto m = Model::create({4096 + 2 * (3 * 192 + 4 * stride), slot, 7});
  EXPECT_TRUE(m.has_value());
  return *m;
}

TEST(Model, DistributionAndFitFollowTheSpec) {
  EXPECT_EQ(distribution(10), (shm::SlotDistribution{2, 5, 3}));
  EXPECT_EQ(distribution(1), (shm::SlotDistribution{1, 1, 1}));
  EXPECT_EQ(slots_per_direction(shm::DEFAULT_SEGMENT_SIZE, 4096), 125u);
  EXPECT_FALSE(slots_per_direction(shm::MIN_SEGMENT_SIZE, 4096).has_value());
  // The model agrees with the reference's geometry (two independent codings of G-FIT).
  for (std::size_t size : {std::size_t{30000}, std::size_t{100000}, shm::DEFAULT_SEGMENT_SIZE})
    for (std::uint32_t slot : {1u, 64u, 4096u}) {
      auto g = shm::compute_geometry(size, slot);
      auto n = slots_per_direction(size, slot);
      ASSERT_EQ(g.ok(), n.has_value()) << size << " " << slot;
      if (n) EXPECT_EQ(g->slots_per_direction, *n);
    }
}

TEST(Model, WriteReadOrderCapacityAndSequence) {
  Model m = small();
  EXPECT_EQ(m.capacity(Priority::High), 2u);
  EXPECT_EQ(m.write(Direction::ClientToDaemon, Priority::Low, bytes(3)).sequence, 0u);
  EXPECT_EQ(m.write(Direction::ClientToDaemon, Priority::Low, bytes(3)).error, ErrorCode::Full);
  EXPECT_EQ(m.write(Direction::ClientToDaemon, Priority::High, bytes(65)).error, ErrorCode::MessageTooLarge);
  EXPECT_EQ(m.write(Direction::ClientToDaemon, Priority::Critical, bytes(64)).sequence, 0u);  // T-SEQ: its ring's position
  auto r = m.read(Direction::ClientToDaemon);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.message->priority, Priority::Critical);
  EXPECT_EQ(m.read(Direction::ClientToDaemon).message->priority, Priority::Low);
  EXPECT_EQ(m.read(Direction::ClientToDaemon).error, ErrorCode::Empty);
  EXPECT_EQ(m.write(Direction::ClientToDaemon, Priority::Low, bytes(1)).sequence, 1u);  // dense within the ring
  const View v = m.view();
  EXPECT_EQ(v.client_head, 3u);
  EXPECT_EQ(v.daemon_tail, 2u);
  EXPECT_EQ(v.rings[0][2].head, 2u);  // low: two written, one read
  EXPECT_EQ(v.rings[0][2].tail, 1u);
}

TEST(Model, StoppedWriterBlocksItsRingButNotLowerOnes) {
  Model m = small();
  ASSERT_TRUE(m.stop_writer(Direction::ClientToDaemon, Priority::Critical, WriterStop::AfterClaim, bytes(1)).ok());
  ASSERT_TRUE(m.write(Direction::ClientToDaemon, Priority::High, bytes(1)).ok());
  auto r = m.read(Direction::ClientToDaemon);  // R-VISIBLE: critical is still Writing
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.message->priority, Priority::High);
  EXPECT_EQ(m.view().rings[0][0].slots[0], SlotState::Writing);
  EXPECT_EQ(m.view().client_head, 1u);  // the stopped write was never acknowledged
}

TEST(Model, StoppedReaderHoldsTheSlotAndCorruptionIsDropped) {
  Model m = small();
  ASSERT_TRUE(m.write(Direction::DaemonToClient, Priority::High, bytes(4)).ok());
  ASSERT_TRUE(m.write(Direction::DaemonToClient, Priority::High, bytes(4, 2)).ok());
  ASSERT_TRUE(m.corrupt_oldest(Direction::DaemonToClient, Priority::High).ok());
  EXPECT_EQ(m.read(Direction::DaemonToClient).error, ErrorCode::CorruptSegment);
  EXPECT_EQ(m.view().rings[1][1].corrupt_skipped, 1u);
  ASSERT_TRUE(m.stop_reader(Direction::DaemonToClient, ReaderStop::AfterComplete).ok());
  EXPECT_EQ(m.read(Direction::DaemonToClient).error, ErrorCode::InvalidState);  // R-HELD
  EXPECT_EQ(m.view().rings[1][1].slots[1], SlotState::Done);
}

TEST(Model, ConnectShutdownAndBackpressure) {
  Model m = small();
  EXPECT_EQ(m.connect(8).error, ErrorCode::ProtocolMismatch);
  EXPECT_TRUE(m.connect(7).ok());
  EXPECT_EQ(m.set_backpressure(1001).error, ErrorCode::InvalidArgument);
  EXPECT_TRUE(m.set_backpressure(1000).ok());
  EXPECT_TRUE(m.shutdown().ok());
  EXPECT_EQ(m.connect(7).error, ErrorCode::Disconnected);
  EXPECT_EQ(m.write(Direction::ClientToDaemon, Priority::Low, bytes(1)).error, ErrorCode::Disconnected);
  EXPECT_EQ(m.view().client_count, 1u);
}

// SPEC C-AGE: an aged segment's rings start where a long life left them,
// sequence numbers are their positions, and a ring at 2^64 - 1 is Full.
TEST(Model, AgedSegmentStartsLateAndExhaustsItsRings) {
  const std::size_t stride = (64 + 64 + 63) / 64 * 64;
  Config c{4096 + 2 * (3 * 192 + 4 * stride), 64, 7};
  c.age = shm::SegmentAge::PositionEnd;
  auto m = Model::create(c);
  ASSERT_TRUE(m.has_value());
  const std::uint32_t cap = m->capacity(Priority::High);
  const std::uint64_t first = shm::first_position(c.age, cap);
  EXPECT_EQ(m->view().rings[0][1].head, first);
  for (std::uint64_t i = 0; i < 2 * cap + 1; ++i) {
    auto w = m->write(Direction::ClientToDaemon, Priority::High, bytes(4));
    ASSERT_TRUE(w.ok()) << i;
    EXPECT_EQ(w.sequence, first + i);
    ASSERT_TRUE(m->read(Direction::ClientToDaemon).ok()) << i;
  }
  auto w = m->write(Direction::ClientToDaemon, Priority::High, bytes(4));
  EXPECT_EQ(w.error, ErrorCode::Full);
  EXPECT_EQ(w.clause, ClauseId::R_POSITIONS);
  EXPECT_EQ(m->view().rings[0][1].head, shm::kLastPosition);
  EXPECT_TRUE(m->write(Direction::ClientToDaemon, Priority::Low, bytes(4)).ok());  // other rings go on
}

}  // namespace
}  // namespace memlink::model
