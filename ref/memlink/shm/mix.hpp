// mix64: spreads the bits of a 64-bit value (the first half of MurmurHash3's
// 64-bit finalizer: xor-shift, multiply, xor-shift). Not a hash for tables
// or for security: the one function the tools and the test harness derive
// payload bytes, lengths, priorities and nonces from, so that a payload
// written by one and checked by another agrees.
#pragma once

#include <cstdint>

namespace memlink::shm {

constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

}  // namespace memlink::shm
