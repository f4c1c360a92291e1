#include "memlink/shm/safety.hpp"

#include <gtest/gtest.h>

#include <random>

namespace memlink::shm::safety {
namespace {

using u128 = unsigned __int128;

bool range_ref(std::uint64_t off, std::uint64_t len, std::uint64_t size) {
  return u128{off} + len <= size;
}

TEST(Safety, CheckedArithmetic) {
  EXPECT_EQ(checked_add(1, 2), 3u);
  EXPECT_FALSE(checked_add(UINT64_MAX, 1).has_value());
  EXPECT_EQ(checked_mul(1u << 20, 1u << 20), std::uint64_t{1} << 40);
  EXPECT_FALSE(checked_mul(UINT64_MAX / 2 + 1, 2).has_value());
}

TEST(Safety, RangeInBoundsEdges) {
  EXPECT_TRUE(range_in_bounds(0, 0, 0));
  EXPECT_TRUE(range_in_bounds(10, 0, 10));
  EXPECT_FALSE(range_in_bounds(11, 0, 10));
  EXPECT_TRUE(range_in_bounds(6, 4, 10));
  EXPECT_FALSE(range_in_bounds(6, 5, 10));
  EXPECT_FALSE(range_in_bounds(UINT64_MAX, 2, UINT64_MAX));  // wraps in 64 bits
  EXPECT_FALSE(offset_in_bounds(10, 10));
  EXPECT_TRUE(offset_in_bounds(9, 10));
}

TEST(Safety, RangeAgreesWith128BitArithmetic) {
  std::mt19937_64 rng(42);
  const std::uint64_t edges[] = {0, 1, 4095, 4096, UINT32_MAX, UINT64_MAX / 2, UINT64_MAX - 1, UINT64_MAX};
  auto pick = [&] { return (rng() & 1) ? edges[rng() % 8] + (rng() % 3) : rng(); };
  for (int i = 0; i < 200000; ++i) {
    const auto off = pick(), len = pick(), size = pick();
    ASSERT_EQ(range_in_bounds(off, len, size), range_ref(off, len, size)) << off << " " << len << " " << size;
  }
}

TEST(Safety, ElementInBounds) {
  EXPECT_TRUE(element_in_bounds(192, 3, 4160, 4160, 192 + 4 * 4160));
  EXPECT_FALSE(element_in_bounds(192, 4, 4160, 4160, 192 + 4 * 4160));
  EXPECT_FALSE(element_in_bounds(0, UINT64_MAX, 2, 0, UINT64_MAX));
}

TEST(Safety, PointerInSegment) {
  alignas(8) unsigned char seg[64];
  EXPECT_TRUE(pointer_in_segment(seg + 60, 4, seg, sizeof seg));
  EXPECT_FALSE(pointer_in_segment(seg + 61, 4, seg, sizeof seg));
  unsigned char other;
  EXPECT_FALSE(pointer_in_segment(&other, 1, seg, sizeof seg) &&
               (&other < seg || &other >= seg + sizeof seg));
}

}  // namespace
}  // namespace memlink::shm::safety
