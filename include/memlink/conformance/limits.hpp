// D-LIMITS (conformance/DRIVER.md): the sizes a transport accepts, which
// every check sizes its segments, slots, payloads and ring fills to. A
// driver says them in its hello; an in-process adapter gets the SPEC's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace memlink::conformance::driver {

struct Limits {
  std::size_t min_segment = 0, max_segment = 0;  // create's segment_size range
  std::uint32_t min_slot = 1, max_slot = 0;      // create's slot_size range (min == max: fixed)
  // Fixed ring capacities per priority (the transport's own, whatever the
  // segment size), if it has them.
  std::optional<std::array<std::uint32_t, 3>> capacity;
  // The segment size nearest `want` that the transport accepts.
  std::size_t segment(std::size_t want) const;
  // The slot size nearest `want` that the transport accepts.
  std::uint32_t slot(std::uint32_t want) const;
};
// The SPEC's own limits (what a protocol-1 driver is taken to accept).
Limits spec_limits();

}  // namespace memlink::conformance::driver
