// Division of ring positions by a ring's capacity without a DIV instruction.
//
// Every message locates its slot (position / capacity, position % capacity)
// on both sides; a 64-bit DIV costs tens of cycles, more than the rest of
// locating put together, and the capacity never changes for a ring. So the
// reciprocal is computed once and each division is a multiply, a subtract
// and one correction (the invariant-divisor method of Granlund and
// Montgomery, in the simple form Lemire calls "fastmod").
//
// Why one correction is enough: with m = floor((2^64 - 1) / d) we have
// m = 2^64/d - e for some 0 < e <= 1, so for every n < 2^64
//     n*m / 2^64 = n/d - n*e/2^64,   and 0 <= n*e/2^64 < 1.
// The estimate q' = floor(n*m / 2^64) is therefore floor(n/d) or one less,
// and r' = n - q'*d lies in [0, 2d): if r' >= d, add one to q' and take d
// from r'. PositionDivisor's test compares it with `/` and `%`.
#pragma once

#include <cstdint>

namespace memlink::shm {

class PositionDivisor {
 public:
  struct QuotientRemainder {
    std::uint64_t quotient;
    std::uint32_t remainder;
  };

  constexpr PositionDivisor() noexcept = default;
  // `divisor` >= 1 (a ring has at least one slot).
  explicit constexpr PositionDivisor(std::uint32_t divisor) noexcept
      : divisor_(divisor), reciprocal_(divisor == 0 ? 0 : ~std::uint64_t{0} / divisor) {}

  constexpr QuotientRemainder divide(std::uint64_t n) const noexcept {
#if defined(__SIZEOF_INT128__)
    __extension__ using u128 = unsigned __int128;
    std::uint64_t q = static_cast<std::uint64_t>((static_cast<u128>(n) * reciprocal_) >> 64);
    std::uint64_t r = n - q * divisor_;
    if (r >= divisor_) {
      ++q;
      r -= divisor_;
    }
    return {q, static_cast<std::uint32_t>(r)};
#else
    return {n / divisor_, static_cast<std::uint32_t>(n % divisor_)};
#endif
  }
  constexpr std::uint32_t divisor() const noexcept { return divisor_; }

 private:
  std::uint32_t divisor_ = 1;
  std::uint64_t reciprocal_ = ~std::uint64_t{0};
};

}  // namespace memlink::shm
