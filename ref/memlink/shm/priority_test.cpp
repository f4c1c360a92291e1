#include "memlink/shm/priority.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace memlink::shm {
namespace {

// The crate's formula with floating point, as the spec states it.
SlotDistribution reference(std::uint32_t n) {
  auto c = static_cast<std::int64_t>(std::ceil(0.2 * n));
  auto h = static_cast<std::int64_t>(std::ceil(0.5 * n));
  c = std::max<std::int64_t>(1, c);
  h = std::max<std::int64_t>(1, h);
  auto l = std::max<std::int64_t>(1, static_cast<std::int64_t>(n) - c - h);
  return {static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(h), static_cast<std::uint32_t>(l)};
}

TEST(Priority, DistributionMatchesTheFormulaForEveryN) {
  for (std::uint32_t n = 0; n <= 100000; ++n) {
    const auto d = calculate_slot_distribution(n);
    ASSERT_EQ(d, reference(n)) << "n=" << n;
    ASSERT_GE(d.critical, 1u);
    ASSERT_GE(d.high, 1u);
    ASSERT_GE(d.low, 1u);
    if (n >= 4) ASSERT_EQ(d.total(), n) << "n=" << n;
    else ASSERT_EQ(d.total(), n == 3 ? 4u : 3u) << "n=" << n;
  }
}

TEST(Priority, LargeNDoesNotOverflow) {
  const auto d = calculate_slot_distribution(UINT32_MAX);
  EXPECT_EQ(d.total(), UINT32_MAX);
}

TEST(Priority, ByteAndStringDecoding) {
  EXPECT_EQ(priority_from_byte(0), Priority::Critical);
  EXPECT_EQ(priority_from_byte(2), Priority::Low);
  EXPECT_FALSE(priority_from_byte(3).has_value());
  EXPECT_FALSE(priority_from_byte(255).has_value());
  EXPECT_EQ(priority_from_string("high"), Priority::High);
  EXPECT_FALSE(priority_from_string("urgent").has_value());
}

}  // namespace
}  // namespace memlink::shm
