// The queue specification the linearizability search consults, and the
// delivery rules it shares with the model and the chaos checker, each
// judged alone.
#include "memlink/model/queue_spec.hpp"

#include <gtest/gtest.h>

namespace memlink::model {
namespace {

using P = shm::Priority;
constexpr std::array<std::uint32_t, 3> kCap{1, 2, 1};

QueueOp write(P p, std::uint64_t id, bool ok = true) { return {QueueOp::Kind::Write, p, id, ok, false}; }
QueueOp ghost(P p, std::uint64_t id) { return {QueueOp::Kind::Write, p, id, false, true}; }
QueueOp read(P p, std::uint64_t id) { return {QueueOp::Kind::Read, p, id, true, false}; }
QueueOp empty() { return {QueueOp::Kind::Read, P::Low, 0, false, false}; }
auto visible = [](std::size_t) { return false; };

TEST(QueueSpec, AFullWriteIsAllowedOnlyWhenTheRingIsFull) {
  const QueueSpec spec(kCap);
  auto s = spec.init();
  EXPECT_FALSE(spec.step(s, write(P::Critical, 1, false), 0, visible));  // R-CAPACITY: room for one
  EXPECT_TRUE(spec.step(s, write(P::Critical, 1), 0, visible));
  EXPECT_FALSE(spec.step(s, write(P::Critical, 2), 1, visible));  // full: an ok write is wrong
  EXPECT_TRUE(spec.step(s, write(P::Critical, 2, false), 1, visible));
}

TEST(QueueSpec, AReadTakesTheOldestOfTheMostUrgentReadableRing) {
  const QueueSpec spec(kCap);
  auto s = spec.init();
  ASSERT_TRUE(spec.step(s, write(P::High, 1), 0, visible));
  ASSERT_TRUE(spec.step(s, write(P::High, 2), 1, visible));
  ASSERT_TRUE(spec.step(s, write(P::Critical, 3), 2, visible));
  auto t = s;
  EXPECT_FALSE(spec.step(t, read(P::High, 1), 3, visible));  // R-ORDER: critical first
  EXPECT_FALSE(spec.step(t, read(P::Critical, 4), 3, visible));
  EXPECT_TRUE(spec.step(t, read(P::Critical, 3), 3, visible));
  EXPECT_FALSE(spec.step(t, read(P::High, 2), 4, visible));  // R-FIFO: 1 first
  EXPECT_TRUE(spec.step(t, read(P::High, 1), 4, visible));
  EXPECT_FALSE(spec.step(t, empty(), 5, visible));  // 2 is still there
  // R-VISIBLE: a critical write that had not returned may be passed over.
  auto u = s;
  EXPECT_TRUE(spec.step(u, read(P::High, 1), 3, [](std::size_t w) { return w == 2; }));
}

TEST(QueueSpec, AGhostHoldsItsRingEmptyUntilRecoveryReclaimsIt) {
  const QueueSpec spec(kCap);
  auto s = spec.init();
  ASSERT_TRUE(spec.step(s, ghost(P::High, 1), 0, visible));
  ASSERT_TRUE(spec.step(s, write(P::High, 2), 1, visible));
  EXPECT_FALSE(spec.step(s, write(P::High, 3), 2, visible));  // the ghost takes capacity
  auto t = s;
  EXPECT_TRUE(spec.step(t, empty(), 2, visible));  // the ring looks empty behind it
  EXPECT_FALSE(spec.step(t, read(P::High, 2), 3, visible));
  EXPECT_TRUE(spec.reclaim_ghost(t, P::High));
  EXPECT_TRUE(spec.step(t, read(P::High, 2), 3, visible));
  EXPECT_FALSE(spec.reclaim_ghost(t, P::High));
}

TEST(Rules, OrderFifoAndCapacity) {
  auto only = [](P p) { return [p](P q) { return q == p; }; };
  EXPECT_EQ(rules::ring_to_read(only(P::High)), P::High);
  EXPECT_FALSE(rules::ring_to_read([](P) { return false; }).has_value());
  EXPECT_TRUE(rules::order_allows(P::High, only(P::Low)));
  EXPECT_FALSE(rules::order_allows(P::Low, only(P::Critical)));
  EXPECT_TRUE(rules::fifo_allows(3, 4));
  EXPECT_FALSE(rules::fifo_allows(4, 4));
  EXPECT_TRUE(rules::full(2, 2));
  EXPECT_FALSE(rules::full(1, 2));
}

}  // namespace
}  // namespace memlink::model
