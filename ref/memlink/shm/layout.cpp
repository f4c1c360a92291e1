#include "memlink/shm/layout.hpp"

#include <string>

namespace memlink::shm {

Geometry layout_for(std::size_t segment_size, std::uint32_t slot_size, std::uint32_t n) noexcept {
  Geometry g;
  g.segment_size = segment_size;
  g.slot_size = slot_size;
  g.slot_stride = static_cast<std::uint32_t>(slot_stride_for(slot_size));
  g.slots_per_direction = n;
  g.distribution = calculate_slot_distribution(n);
  std::size_t off = RING_BUFFER_OFFSET;
  for (std::size_t d = 0; d < kDirectionCount; ++d) {
    for (Priority p : kAllPriorities) {
      g.ring_offset[d][static_cast<std::size_t>(p)] = off;
      off += ring_bytes(g.distribution.of(p), g.slot_stride);
    }
  }
  g.used_bytes = off;
  return g;
}

std::size_t min_transport_segment_size(std::uint32_t slot_size) noexcept {
  return layout_for(0, slot_size, 1).used_bytes;
}

Result<Geometry> compute_geometry(std::size_t segment_size, std::uint32_t slot_size) {
  if (segment_size < MIN_SEGMENT_SIZE || segment_size > MAX_SEGMENT_SIZE) {
    return make_error(ErrorCode::InvalidArgument,
                      "segment size " + std::to_string(segment_size) + " is outside [" +
                          std::to_string(MIN_SEGMENT_SIZE) + ", " +
                          std::to_string(MAX_SEGMENT_SIZE) + "]");
  }
  if (slot_size < 1 || slot_size > MAX_SLOT_SIZE) {
    return make_error(ErrorCode::InvalidArgument,
                      "slot size " + std::to_string(slot_size) + " is outside [1, " +
                          std::to_string(MAX_SLOT_SIZE) + "]");
  }
  const std::size_t need = min_transport_segment_size(slot_size);
  if (segment_size < need) {
    return make_error(ErrorCode::InvalidArgument,
                      "segment size " + std::to_string(segment_size) +
                          " is too small for one slot per priority and direction with slot size " +
                          std::to_string(slot_size) + ": need at least " + std::to_string(need));
  }
  // used_bytes grows with n, so binary-search the largest n that fits.
  std::uint32_t lo = 1;
  std::uint32_t hi = static_cast<std::uint32_t>(segment_size / slot_stride_for(slot_size)) + 1;
  while (lo < hi) {
    const std::uint32_t mid = lo + (hi - lo + 1) / 2;
    if (layout_for(segment_size, slot_size, mid).used_bytes <= segment_size) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return layout_for(segment_size, slot_size, lo);
}

}  // namespace memlink::shm
