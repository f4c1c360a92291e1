// Property checks of the layout and the arithmetic the spec pins down.
#include <cstring>

#include "adapter.hpp"
#include "driver_adapter.hpp"
#include "compare.hpp"
#include "memlink/shm/checksum.hpp"
#include "memlink/shm/safety.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {
namespace {

// S-CHECKSUM as the spec defines it: bitwise, reflected 0x82F63B78.
std::uint32_t crc32c_by_definition(const std::vector<std::uint8_t>& data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::uint8_t byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace

// G-FIT / G-DIST / G-STRIDE through the adapter: any segment and slot size.
CheckResult run_geometry(const Params& params) {
  return rc_check("geometry", params, depth_budget(params, 50, 300, 3000), 100, [&] {
    model::Config c;
    // Sizes the transport accepts (D-LIMITS); within them, G-FIT decides.
    c.slot_size = params.limits.slot(*rc::gen::inRange<std::uint32_t>(1, shm::MAX_SLOT_SIZE + 1));
    c.segment_size = params.limits.segment(*rc::gen::weightedOneOf<std::size_t>({
        {3, rc::gen::inRange<std::size_t>(shm::MIN_SEGMENT_SIZE, 64 * 1024)},
        {3, rc::gen::inRange<std::size_t>(64 * 1024, 4 << 20)},
        {1, rc::gen::just(shm::MIN_SEGMENT_SIZE)},
    }));
    const auto n = model::slots_per_direction(c.segment_size, c.slot_size);
    auto adapter = adapter_for(params);
    const auto created = adapter->create(c);
    params.record(ClauseId::G_FIT);
    params.record(ClauseId::G_STRIDE);
    params.record(ClauseId::G_PLACE);
    if (!n) {
      if (created.ok())
        fail_case(ClauseId::G_FIT, "a " + std::to_string(c.segment_size) + "-byte segment cannot hold one slot of " +
                                       std::to_string(c.slot_size) +
                                       " bytes per priority and direction, yet creation succeeded");
      if (created.code() != shm::ErrorCode::InvalidArgument)
        fail_case(ClauseId::G_FIT,
                  "too-small segment refused with " + created.error().message() + ", not InvalidArgument");
      return;
    }
    if (!created)
      fail_case(ClauseId::G_FIT, "creating a valid segment (" + std::to_string(c.segment_size) + " bytes, slot " +
                                     std::to_string(c.slot_size) + ") failed: " + created.error().message());
    compare_geometry(params, model::Model::create(c)->view(), adapter->observe());
  });
}

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

// S-CHECKSUM: the reference's CRC32C against the definition.
CheckResult run_checksum(const Params& params) {
  return rc_check("checksum", params, depth_budget(params, 100, 1000, 10000), 4096, [&] {
    const auto data = *rc::gen::container<std::vector<std::uint8_t>>(rc::gen::arbitrary<std::uint8_t>());
    params.record(ClauseId::S_CHECKSUM);
    if (shm::crc32c(data.data(), data.size()) != crc32c_by_definition(data))
      fail_case(ClauseId::S_CHECKSUM,
                "crc32c of " + std::to_string(data.size()) + " bytes differs from the definition");
  });
}

}  // namespace memlink::conformance
