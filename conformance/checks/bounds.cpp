// The bounds check (V-BOUNDS): the reference's bounds arithmetic against
// 128-bit arithmetic.
#include "memlink/shm/safety.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {

// V-BOUNDS: the reference's bounds checks against 128-bit arithmetic.
CheckResult run_bounds(const Params& params) {
  return rc_check("bounds", params, depth_budget(params, 200, 2000, 20000), 100, [&] {
    auto edge = rc::gen::weightedOneOf<std::uint64_t>({
        {3, rc::gen::arbitrary<std::uint64_t>()},
        {1, rc::gen::element<std::uint64_t>(0, 1, 4095, 4096, UINT32_MAX, UINT64_MAX / 2, UINT64_MAX - 1, UINT64_MAX)},
        {2, rc::gen::inRange<std::uint64_t>(0, 1 << 20)},
    });
    const std::uint64_t off = *edge, len = *edge, size = *edge;
    using u128 = unsigned __int128;
    params.record(ClauseId::V_BOUNDS);
    const bool want = u128{off} + len <= size;
    if (shm::safety::range_in_bounds(off, len, size) != want)
      fail_case(ClauseId::V_BOUNDS, "range_in_bounds(" + std::to_string(off) + ", " + std::to_string(len) + ", " +
                                        std::to_string(size) + ") is wrong");
    const bool add_ok = u128{off} + len <= UINT64_MAX;
    if (shm::safety::checked_add(off, len).has_value() != add_ok) fail_case(ClauseId::V_BOUNDS, "checked_add overflow");
    const bool mul_ok = u128{off} * len <= UINT64_MAX;
    if (shm::safety::checked_mul(off, len).has_value() != mul_ok) fail_case(ClauseId::V_BOUNDS, "checked_mul overflow");
  });
}

}  // namespace memlink::conformance
