#include "memlink/shm/percentile.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

using memlink::shm::nearest_rank;
using memlink::shm::nearest_rank_index;
using memlink::shm::nearest_rank_unsorted;

// Known samples: the textbook nearest-rank example (15, 20, 35, 40, 50):
// p5 = 15, p30 = 20, p40 = 20, p50 = 35, p100 = 50.
TEST(Percentile, TheTextbookNearestRankExample) {
  const std::vector<int> s{15, 20, 35, 40, 50};
  EXPECT_EQ(nearest_rank(s, 0.05), 15);
  EXPECT_EQ(nearest_rank(s, 0.30), 20);
  EXPECT_EQ(nearest_rank(s, 0.40), 20);
  EXPECT_EQ(nearest_rank(s, 0.50), 35);
  EXPECT_EQ(nearest_rank(s, 1.00), 50);
}

// The cases the four formulas this helper replaced disagreed on: p50 of an
// even count is the lower middle sample (floor(q*n) took the upper one), p99
// of 100 samples is the 99th (floor(q*n) took the 100th, floor(q*(n-1)) the
// 99th only by luck), and p99 of 1000 is the 990th.
TEST(Percentile, EvenCountsTailsAndEdges) {
  EXPECT_EQ(nearest_rank(std::vector<int>{1, 2}, 0.5), 1);
  std::vector<int> hundred(100);
  for (int i = 0; i < 100; ++i) hundred[i] = i + 1;
  EXPECT_EQ(nearest_rank(hundred, 0.99), 99);
  EXPECT_EQ(nearest_rank(hundred, 0.5), 50);
  EXPECT_EQ(nearest_rank(hundred, 0.999), 100);
  std::vector<int> thousand(1000);
  for (int i = 0; i < 1000; ++i) thousand[i] = i + 1;
  EXPECT_EQ(nearest_rank(thousand, 0.99), 990);
  EXPECT_EQ(nearest_rank(std::vector<int>{7}, 0.0), 7);
  EXPECT_EQ(nearest_rank(std::vector<int>{7}, 0.99), 7);
  EXPECT_EQ(nearest_rank(std::vector<int>{}, 0.5), 0);
  EXPECT_EQ(nearest_rank_index(10, -1.0), 0u);
  EXPECT_EQ(nearest_rank_index(10, std::numeric_limits<double>::quiet_NaN()), 0u);
  EXPECT_EQ(nearest_rank_index(10, 2.0), 9u);
}

// The definition itself, on random samples: the result is a sample, at least
// ceil(q*n) samples are at or below it, and fewer than that are strictly below.
TEST(Percentile, TheResultIsTheSmallestSampleWithEnoughAtOrBelowIt) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 2000; ++round) {
    const std::size_t n = 1 + rng() % 300;
    std::vector<std::uint64_t> v(n);
    for (auto& x : v) x = rng() % 50;  // many ties
    const double q = static_cast<double>(rng() % 1001) / 1000.0;
    const std::uint64_t p = nearest_rank_unsorted(v, q);
    std::size_t at_or_below = 0, below = 0;
    for (auto x : v) {
      at_or_below += x <= p;
      below += x < p;
    }
    const double need = std::max(1.0, std::ceil(q * static_cast<double>(n)));
    EXPECT_GE(static_cast<double>(at_or_below), need) << "n=" << n << " q=" << q;
    EXPECT_LT(static_cast<double>(below), need) << "n=" << n << " q=" << q;
  }
}
