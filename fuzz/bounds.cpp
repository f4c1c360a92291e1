// Fuzz target: the bounds checks of ref/memlink/shm/safety.hpp against the
// same answers computed with 128-bit arithmetic.
#include <cstdio>
#include <cstdlib>

#include "fuzz_input.hpp"
#include "memlink/shm/safety.hpp"

using namespace memlink::shm::safety;
using u128 = unsigned __int128;

#define FUZZ_CHECK(cond)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::fprintf(stderr, "bounds: check failed: %s\n", #cond);          \
      std::abort();                                                       \
    }                                                                     \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  memlink::fuzz::FuzzInput in(data, size);
  const auto a = in.take<std::uint64_t>(), b = in.take<std::uint64_t>(), c = in.take<std::uint64_t>();
  const auto d = in.take<std::uint64_t>(), e = in.take<std::uint64_t>();

  FUZZ_CHECK(checked_add(a, b).has_value() == (u128{a} + b <= UINT64_MAX));
  if (auto s = checked_add(a, b)) FUZZ_CHECK(*s == a + b);
  FUZZ_CHECK(checked_mul(a, b).has_value() == (u128{a} * b <= UINT64_MAX));
  if (auto p = checked_mul(a, b)) FUZZ_CHECK(*p == a * b);
  FUZZ_CHECK(offset_in_bounds(a, c) == (a < c));
  FUZZ_CHECK(range_in_bounds(a, b, c) == (u128{a} + b <= c));
  // element_in_bounds(base, index, stride, length, size)
  const u128 start = u128{a} + u128{b} * c;
  const bool elem = u128{b} * c <= UINT64_MAX && start <= UINT64_MAX && start + d <= e;
  FUZZ_CHECK(element_in_bounds(a, b, c, d, e) == elem);
  // pointer_in_segment over a real buffer, with offsets that may fall outside.
  static unsigned char segment[256];
  const std::size_t off = a % 512, len = b % 512;
  const auto base = reinterpret_cast<std::uintptr_t>(segment);
  const bool inside = off + len <= sizeof segment;
  FUZZ_CHECK(pointer_in_segment(reinterpret_cast<const void*>(base + off), len, segment, sizeof segment) == inside);
  return 0;
}
