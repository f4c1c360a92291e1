// The one percentile every report of this repository uses (docs/benchmarks.md,
// "Percentiles"): nearest rank. The q-th percentile of n sorted samples is
// the smallest sample with at least q*n samples at or below it, i.e. the
// sample of rank ceil(q*n) (1-based), clamped to the first one. It is always
// a sample that was measured (never an interpolation), so p50 of {1, 2} is 1
// and p100 is the maximum; two tools that report p99 of the same samples
// print the same number on every operating system.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace memlink::shm {

// The 0-based index of the nearest-rank q-quantile (q in [0, 1]) among n
// sorted samples; n must be at least 1.
inline std::size_t nearest_rank_index(std::size_t n, double q) {
  if (!(q > 0)) return 0;  // q <= 0 or NaN: the minimum
  if (q >= 1) return n - 1;
  // q*n in double is exact enough here: n < 2^53 and the ceil is what
  // makes p50 of an even count the lower middle sample.
  const double rank = std::ceil(q * static_cast<double>(n));
  const auto r = static_cast<std::size_t>(rank);
  return std::min(n, std::max<std::size_t>(r, 1)) - 1;
}

// The nearest-rank q-quantile of samples sorted ascending; T{} when empty.
template <class T>
T nearest_rank(const std::vector<T>& sorted, double q) {
  if (sorted.empty()) return T{};
  return sorted[nearest_rank_index(sorted.size(), q)];
}

// The same of unsorted samples (copied and partially sorted).
template <class T>
T nearest_rank_unsorted(std::vector<T> samples, double q) {
  if (samples.empty()) return T{};
  const std::size_t k = nearest_rank_index(samples.size(), q);
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(k), samples.end());
  return samples[k];
}

}  // namespace memlink::shm
