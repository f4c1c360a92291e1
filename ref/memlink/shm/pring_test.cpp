#include "memlink/shm/pring.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <new>
#include <vector>

#include "test_support.hpp"

namespace memlink::shm {
namespace {

struct Rings {
  Rings() {
    auto g = compute_geometry(100000, 64);
    EXPECT_TRUE(g.ok());
    geo = *g;
    mem.reset(static_cast<std::byte*>(::operator new(geo.segment_size, std::align_val_t{64})));
    auto r = PriorityRingBuffer::format(mem.get(), geo.segment_size, geo, Direction::ClientToDaemon);
    EXPECT_TRUE(r.ok());
    rings = std::move(r.value());
  }
  struct Free {
    void operator()(std::byte* p) const { ::operator delete(p, std::align_val_t{64}); }
  };
  Geometry geo;
  std::unique_ptr<std::byte, Free> mem;
  PriorityRingBuffer rings;
};

TEST(PriorityRingBuffer, ReadsCriticalBeforeHighBeforeLowFifoWithin) {
  Rings r;
  std::uint64_t seq = 0;
  for (Priority p : {Priority::Low, Priority::High, Priority::Low, Priority::Critical, Priority::High,
                     Priority::Critical}) {
    ASSERT_TRUE(r.rings.write(p, test::pattern_payload(seq, 16)).ok());
    ++seq;
  }
  EXPECT_EQ(r.rings.pending(Priority::Low), 2u);
  EXPECT_EQ(r.rings.pending_total(), 6u);
  std::vector<std::byte> out(64);
  // Write order 0..5 (the payload's tag); each ring numbers by position (T-SEQ).
  const std::pair<std::uint64_t, std::uint64_t> want[] = {{3, 0}, {5, 1}, {1, 0}, {4, 1}, {0, 0}, {2, 1}};
  for (auto [tag, sequence] : want) {
    auto m = r.rings.read(out);
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(test::pattern_matches(std::span(out.data(), m->length), tag)) << tag;
    EXPECT_EQ(m->sequence, sequence) << tag;
  }
  EXPECT_EQ(r.rings.read(out).code(), ErrorCode::Empty);
}

TEST(PriorityRingBuffer, EachPriorityFillsIndependently) {
  Rings r;
  const std::uint32_t crit = r.rings.slot_count(Priority::Critical);
  EXPECT_EQ(crit, r.geo.distribution.critical);
  for (std::uint32_t i = 0; i < crit; ++i)
    ASSERT_TRUE(r.rings.write(Priority::Critical, test::pattern_payload(i, 8)).ok());
  EXPECT_EQ(r.rings.write(Priority::Critical, test::pattern_payload(0, 8)).code(), ErrorCode::Full);
  EXPECT_TRUE(r.rings.write(Priority::Low, test::pattern_payload(0, 8)).ok());
}

TEST(PriorityRingBuffer, CorruptionInAHigherRingIsReportedNotSkippedSilently) {
  Rings r;
  ASSERT_TRUE(r.rings.write(Priority::Critical, test::pattern_payload(1, 8)).ok());
  ASSERT_TRUE(r.rings.write(Priority::Low, test::pattern_payload(2, 8)).ok());
  r.rings.ring(Priority::Critical).slot_header(0).length = 9999;
  std::vector<std::byte> out(64);
  EXPECT_EQ(r.rings.read(out).code(), ErrorCode::CorruptSegment);
  auto m = r.rings.read(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->priority, Priority::Low);
  EXPECT_TRUE(test::pattern_matches(std::span(out.data(), m->length), 2));
}

}  // namespace
}  // namespace memlink::shm
