// Nothing PASS that was not seen: each rule of evidence.cpp (stateful) and
// clauses_seen (linearizability) records a clause only where its behaviour
// happened, and a history in which nothing was delivered shows no ordering
// clause at all.
#include "evidence.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "linearizability.hpp"

namespace memlink::conformance {
namespace {

using model::Model;
using P = shm::Priority;
using D = model::Direction;

Model small() {
  // n = 4: capacities 1 / 2 / 1 per direction.
  auto m = Model::create({4096 + 2 * (3 * 192 + 4 * 128), 64, 1});
  EXPECT_TRUE(m.has_value());
  m->connect(1);
  return *m;
}

bool has(const std::vector<ClauseId>& v, ClauseId c) { return std::find(v.begin(), v.end(), c) != v.end(); }

std::vector<ClauseId> read_seen(const Model& before) {
  Model after = before;
  StepFacts f;
  f.kind = StepKind::Read;
  f.direction = D::ClientToDaemon;
  const auto want = after.read(D::ClientToDaemon);
  return clauses_seen(f, before, after, want);
}

TEST(Evidence, FifoNeedsASecondMessageInTheRing) {
  Model m = small();
  m.write(D::ClientToDaemon, P::High, std::vector<std::byte>(4));
  EXPECT_FALSE(has(read_seen(m), ClauseId::R_FIFO));
  EXPECT_TRUE(has(read_seen(m), ClauseId::S_PUBLISH));
  m.write(D::ClientToDaemon, P::High, std::vector<std::byte>(4));
  EXPECT_TRUE(has(read_seen(m), ClauseId::R_FIFO));
}

TEST(Evidence, PriorityOrderNeedsTwoPrioritiesPendingAtOnce) {
  Model m = small();
  m.write(D::ClientToDaemon, P::Low, std::vector<std::byte>(4));
  EXPECT_FALSE(has(read_seen(m), ClauseId::R_ORDER));
  m.write(D::ClientToDaemon, P::Critical, std::vector<std::byte>(4));
  EXPECT_TRUE(has(read_seen(m), ClauseId::R_ORDER));
}

TEST(Evidence, CapacityNeedsAFullRingRefusing) {
  Model m = small();
  StepFacts f;
  f.kind = StepKind::Write;
  f.priority = P::Critical;
  Model a = m;
  const auto ok = a.write(D::ClientToDaemon, P::Critical, std::vector<std::byte>(4));
  EXPECT_FALSE(has(clauses_seen(f, m, a, ok), ClauseId::R_CAPACITY));
  Model b = a;
  const auto full = b.write(D::ClientToDaemon, P::Critical, std::vector<std::byte>(4));
  EXPECT_TRUE(has(clauses_seen(f, a, b, full), ClauseId::R_CAPACITY));
}

TEST(Evidence, AnEmptyReadOfAnEmptySegmentShowsOnlyItsError) {
  // E-CODES: the error (Empty, with a detail) was seen; no delivery clause.
  EXPECT_EQ(read_seen(small()), std::vector<ClauseId>{ClauseId::E_CODES});
}

HistoryOp w(P p, std::uint64_t id, std::uint64_t a, std::uint64_t b, bool ok = true, int proc = 1) {
  return HistoryOp{HistoryOp::Kind::Write, proc, p, id, ok, a, b};
}
HistoryOp r(P p, std::uint64_t id, std::uint64_t a, std::uint64_t b) {
  return HistoryOp{HistoryOp::Kind::Read, 0, p, id, true, a, b};
}
HistoryOp empty(std::uint64_t a, std::uint64_t b) {
  return HistoryOp{HistoryOp::Kind::Read, 0, P::Low, 0, false, a, b};
}

TEST(HistoryEvidence, NothingDeliveredShowsNoOrderingClause) {
  // Acknowledged writes and Empty reads only: what a transport that
  // delivers nothing produces.
  const auto seen = clauses_seen({w(P::High, 1, 0, 1), w(P::Low, 2, 2, 3, true, 2), empty(4, 5), empty(6, 7)}, true);
  EXPECT_TRUE(seen.empty()) << seen.size() << " clauses seen";
}

TEST(HistoryEvidence, EachClauseNeedsItsOwnBehaviour) {
  // One writer, two messages on one ring, read in order: FIFO, not ROLES.
  auto seen = clauses_seen({w(P::High, 1, 0, 1), w(P::High, 2, 2, 3), r(P::High, 1, 4, 5), r(P::High, 2, 6, 7)}, true);
  EXPECT_TRUE(seen.count(ClauseId::R_FIFO));
  EXPECT_TRUE(seen.count(ClauseId::T_SEQ));
  EXPECT_FALSE(seen.count(ClauseId::R_ROLES));
  EXPECT_FALSE(seen.count(ClauseId::R_CAPACITY));
  EXPECT_FALSE(seen.count(ClauseId::R_ORDER));
  // A low message read while a critical one, written before, waited: ORDER.
  seen = clauses_seen(
      {w(P::Low, 1, 0, 1), w(P::Critical, 2, 2, 3, true, 2), r(P::Critical, 2, 4, 5), r(P::Low, 1, 6, 7)}, false);
  EXPECT_TRUE(seen.count(ClauseId::R_ORDER));
  EXPECT_TRUE(seen.count(ClauseId::R_ROLES) == 0);  // one message per ring
  EXPECT_FALSE(seen.count(ClauseId::T_SEQ));        // not claimed
  // A write refused Full: CAPACITY.
  seen = clauses_seen({w(P::Low, 1, 0, 1), w(P::Low, 2, 2, 3, false)}, false);
  EXPECT_TRUE(seen.count(ClauseId::R_CAPACITY));
}

}  // namespace
}  // namespace memlink::conformance
