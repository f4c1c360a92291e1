#include "memlink/shm/divisor.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace memlink::shm {
namespace {

void expect_exact(const PositionDivisor& by, std::uint64_t n) {
  const std::uint32_t d = by.divisor();
  const auto [q, r] = by.divide(n);
  ASSERT_EQ(q, n / d) << n << " / " << d;
  ASSERT_EQ(r, n % d) << n << " % " << d;
}

// The numerators where an off-by-one would show: around multiples of the
// divisor, around powers of two, and the top of the range.
std::vector<std::uint64_t> edge_numerators(std::uint32_t d) {
  std::vector<std::uint64_t> ns = {0, 1, 2, d - 1ULL, d, d + 1ULL, ~std::uint64_t{0}, ~std::uint64_t{0} - 1};
  for (int bit = 1; bit < 64; ++bit) {
    const std::uint64_t p = std::uint64_t{1} << bit;
    ns.insert(ns.end(), {p - 1, p, p + 1});
  }
  const std::uint64_t top = ~std::uint64_t{0} / d;  // the largest quotient
  for (std::uint64_t k : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{1} << 24, std::uint64_t{1} << 40, top - 1, top}) {
    const std::uint64_t m = k * d;
    ns.insert(ns.end(), {m - 1, m, m + 1, m + d - 1});
  }
  return ns;
}

TEST(PositionDivisor, MatchesDivisionAndRemainderAtTheEdgesOfEveryKindOfDivisor) {
  std::vector<std::uint32_t> divisors = {1, 2, 3, 5, 7, 64, 100, 255, 256, 1000, 1023, 1024, 1025, 65535, 65536, 65537,
                                         (1u << 24) - 1, 1u << 31, (1u << 31) + 1, 0xFFFFFFFEu, 0xFFFFFFFFu};
  for (std::uint32_t d : divisors) {
    const PositionDivisor by(d);
    for (std::uint64_t n : edge_numerators(d)) expect_exact(by, n);
  }
}

TEST(PositionDivisor, MatchesDivisionOnRandomPairs) {
  std::mt19937_64 rng(20261127);
  for (int i = 0; i < 200000; ++i) {
    // Divisors of every magnitude, numerators of every magnitude.
    const std::uint32_t d = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(rng() >> (32 + rng() % 32)));
    const std::uint64_t n = rng() >> (rng() % 64);
    expect_exact(PositionDivisor(d), n);
  }
}

TEST(PositionDivisor, WalksARingPositionByPosition) {
  // What a ring does: consecutive positions through many laps.
  const PositionDivisor by(7);
  std::uint64_t lap = 0;
  std::uint32_t index = 0;
  for (std::uint64_t n = 0; n < 100000; ++n) {
    const auto [q, r] = by.divide(n);
    ASSERT_EQ(q, lap);
    ASSERT_EQ(r, index);
    if (++index == 7) {
      index = 0;
      ++lap;
    }
  }
}

}  // namespace
}  // namespace memlink::shm
