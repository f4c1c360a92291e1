#include "linearizability.hpp"

#include <gtest/gtest.h>

namespace memlink::conformance {
namespace {

using P = shm::Priority;
constexpr std::array<std::uint32_t, 3> kCap{2, 2, 2};

HistoryOp w(P p, std::uint64_t id, std::uint64_t a, std::uint64_t b, bool ok = true, int proc = 1) {
  return HistoryOp{HistoryOp::Kind::Write, proc, p, id, ok, a, b};
}
HistoryOp r(P p, std::uint64_t id, std::uint64_t a, std::uint64_t b) {
  return HistoryOp{HistoryOp::Kind::Read, 0, p, id, true, a, b};
}
HistoryOp empty(std::uint64_t a, std::uint64_t b) { return HistoryOp{HistoryOp::Kind::Read, 0, P::Low, 0, false, a, b}; }

TEST(Linearizability, SequentialFifoIsAccepted) {
  EXPECT_TRUE(check_linearizable({w(P::High, 1, 0, 1), w(P::High, 2, 2, 3), r(P::High, 1, 4, 5), r(P::High, 2, 6, 7)}, kCap).linearizable);
}

TEST(Linearizability, FifoViolationIsRejected) {
  const auto res = check_linearizable({w(P::High, 1, 0, 1), w(P::High, 2, 2, 3), r(P::High, 2, 4, 5), r(P::High, 1, 6, 7)}, kCap);
  EXPECT_FALSE(res.linearizable);
  EXPECT_NE(res.explanation.find("longest valid prefix"), std::string::npos);
}

TEST(Linearizability, ConcurrentWritesMayBeOrderedEitherWay) {
  EXPECT_TRUE(check_linearizable({w(P::High, 1, 0, 10, true, 1), w(P::High, 2, 1, 9, true, 2), r(P::High, 2, 11, 12), r(P::High, 1, 13, 14)}, kCap).linearizable);
}

TEST(Linearizability, PriorityViolationIsRejected) {
  EXPECT_FALSE(check_linearizable({w(P::Critical, 1, 0, 1), w(P::Low, 2, 2, 3), r(P::Low, 2, 4, 5), r(P::Critical, 1, 6, 7)}, kCap).linearizable);
}

TEST(Linearizability, AnOverlappingHigherWriteMayBeInvisible) {
  // R-VISIBLE: the critical write had not returned when the read began.
  EXPECT_TRUE(check_linearizable({w(P::Critical, 1, 0, 10, true, 1), w(P::Low, 2, 0, 1, true, 2), r(P::Low, 2, 2, 3), r(P::Critical, 1, 11, 12)}, kCap).linearizable);
}

TEST(Linearizability, EmptyWhileACompletedWriteIsQueuedIsRejected) {
  EXPECT_FALSE(check_linearizable({w(P::High, 1, 0, 1), empty(2, 3), r(P::High, 1, 4, 5)}, kCap).linearizable);
}

TEST(Linearizability, FullWhenNotFullIsRejectedAndFullWhenFullAccepted) {
  EXPECT_FALSE(check_linearizable({w(P::Low, 1, 0, 1), w(P::Low, 2, 2, 3, false)}, kCap).linearizable);
  EXPECT_TRUE(check_linearizable({w(P::Low, 1, 0, 1), w(P::Low, 2, 2, 3), w(P::Low, 3, 4, 5, false)}, kCap).linearizable);
}

TEST(Linearizability, ReadOfAMessageNeverWrittenIsRejected) {
  EXPECT_FALSE(check_linearizable({w(P::High, 1, 0, 1), r(P::High, 99, 2, 3)}, kCap).linearizable);
}

HistoryOp ghost(P p, std::uint64_t id, std::uint64_t a, std::uint64_t b = ~0ULL) {
  HistoryOp op = w(p, id, a, b);
  op.ghost = true;
  return op;
}

TEST(Linearizability, AGhostAtTheFrontMakesItsRingLookEmpty) {
  // A writer died holding the oldest position (R-VISIBLE): the ring reads
  // Empty although a later write completed, until recovery reclaims it.
  EXPECT_TRUE(check_linearizable({ghost(P::High, 1, 0), w(P::High, 2, 1, 2), empty(3, 4), r(P::High, 2, 5, 6)}, kCap)
                  .linearizable);
}

TEST(Linearizability, AGhostNeverExplainsAnEmptyReadBeforeItsInvocation) {
  EXPECT_FALSE(check_linearizable({w(P::High, 2, 0, 1), empty(2, 3), ghost(P::High, 1, 4), r(P::High, 2, 5, 6)}, kCap)
                   .linearizable);
}

TEST(Linearizability, AGhostTakesCapacity) {
  // Capacity 2: a ghost and one message make a Full write linearizable.
  EXPECT_TRUE(check_linearizable({ghost(P::Low, 1, 0), w(P::Low, 2, 1, 2), w(P::Low, 3, 3, 4, false)}, kCap).linearizable);
  EXPECT_FALSE(check_linearizable({w(P::Low, 2, 1, 2), w(P::Low, 3, 3, 4, false)}, kCap).linearizable);
}

TEST(Linearizability, AGhostIsNeverDelivered) {
  EXPECT_FALSE(check_linearizable({ghost(P::High, 1, 0), r(P::High, 1, 5, 6)}, kCap).linearizable);
}

TEST(Linearizability, FormatShowsEveryOperation) {
  const std::string text = format_history({w(P::High, 1, 1000, 2000), empty(3000, 4000)});
  EXPECT_NE(text.find("write high"), std::string::npos);
  EXPECT_NE(text.find("Empty"), std::string::npos);
}

// The search is as deep as the history is long (exploration's schedules
// record thousands of steps): it must not live on the call stack, where a
// sanitizer's large frames overflowed it at about 1,400 operations.
TEST(Linearizability, AHistoryOfThousandsOfOperationsIsDecided) {
  std::vector<HistoryOp> ok, broken;
  for (std::uint64_t k = 0; k < 1500; ++k) {
    ok.push_back(w(P::Low, k + 1, 4 * k, 4 * k + 1));
    ok.push_back(r(P::Low, k + 1, 4 * k + 2, 4 * k + 3));
  }
  broken = ok;
  broken.back().id = 1;  // the last read returns the first message again
  const auto good = check_linearizable(ok, kCap);
  EXPECT_TRUE(good.decided);
  EXPECT_TRUE(good.linearizable);
  const auto bad = check_linearizable(broken, kCap);
  EXPECT_TRUE(bad.decided);
  EXPECT_FALSE(bad.linearizable);
  EXPECT_EQ(bad.longest_prefix, broken.size() - 1);
}

}  // namespace
}  // namespace memlink::conformance
