// The control region: writing it when a segment is created and validating it
// when one is opened (SPEC C-*). Everything a process reads from another
// process's control region goes through validate_control() first.
#pragma once

#include <cstddef>
#include <cstdint>

#include "memlink/shm/layout.hpp"
#include "memlink/shm/result.hpp"

namespace memlink::shm {

inline ControlRegion* control_of(std::byte* base) noexcept {
  return reinterpret_cast<ControlRegion*>(base);
}
inline const ControlRegion* control_of(const std::byte* base) noexcept {
  return reinterpret_cast<const ControlRegion*>(base);
}

// Writes every field but the magic (SPEC C-INIT). The segment is not valid to
// other processes until publish_control() stores the magic.
// `epoch` is 1, or an aged start (SPEC C-AGE).
void format_control(std::byte* base, const Geometry& g, std::uint16_t protocol_version, std::uint32_t daemon_pid,
                    std::uint64_t now_ns, std::uint64_t epoch = 1) noexcept;

// Stores the magic with release: every write before it is visible to a
// process that loads the magic with acquire.
void publish_control(std::byte* base) noexcept;

// Checks magic, layout version, segment size (against the mapped size),
// geometry, flags and backpressure. Returns the geometry the rings must have,
// or CorruptSegment naming the first field that failed.
Result<Geometry> validate_control(const std::byte* base, std::size_t mapped_size);

// SPEC T-COUNTERS. The c2d messages clients have published: client_head
// (clients that found the table full) plus every table entry's counter,
// which keeps counting across the clients that hold the entry in turn.
// Statistics, not a hand-off: relaxed loads of counters that only grow.
std::uint64_t c2d_published(const ControlRegion& c) noexcept;
// One c2d message published by the client of table entry `entry` (-1: the
// table was full when it connected, so it counts in client_head).
inline void count_c2d_published(ControlRegion& c, int entry) noexcept {
  auto& counter = entry >= 0 ? c.client_published[published_index(static_cast<std::size_t>(entry))] : c.client_head;
  counter.fetch_add(1, std::memory_order_relaxed);  // the client's own line: no other producer takes it
}

}  // namespace memlink::shm
