// How old a freshly formatted segment looks (SPEC C-AGE).
//
// A segment formatted fresh starts every counter at 0 (epoch at 1), so a
// test that formats one never reaches a counter's wrap: the slot word's
// 24-bit generation wraps after 2^24 laps of a ring, a 64-bit position or
// epoch after 2^64 steps. An aged format starts them where a long life
// would have left them (every slot released, nothing pending), so that
// the same tests run through each wrap within a few messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "memlink/shm/slot.hpp"

namespace memlink::shm {

enum class SegmentAge : std::uint8_t {
  Fresh,        // positions 0, epoch 1
  LapWrap,      // each ring 2 positions before its generation wraps, epoch 2^64 - 1
  PositionEnd,  // positions 2c + 2 before 2^64 (ring capacity c), epoch 2^64 - 2
};
inline constexpr SegmentAge kAllSegmentAges[] = {SegmentAge::Fresh, SegmentAge::LapWrap, SegmentAge::PositionEnd};

// SPEC R-POSITIONS: positions never wrap. A ring whose head reaches this
// (2^64 - 1 messages: 584 years at 10^9 a second) is Full from then on.
inline constexpr std::uint64_t kLastPosition = ~std::uint64_t{0};

// SPEC C-AGE: where the rings of capacity `capacity` start (head = tail).
constexpr std::uint64_t first_position(SegmentAge age, std::uint32_t capacity) noexcept {
  switch (age) {
    case SegmentAge::Fresh: return 0;
    case SegmentAge::LapWrap: return (std::uint64_t{kGenerationMask} + 1) * capacity - 2;
    case SegmentAge::PositionEnd: return kLastPosition - 2 * std::uint64_t{capacity} - 1;
  }
  return 0;
}

// SPEC C-AGE: the epoch the creator stores.
constexpr std::uint64_t first_epoch(SegmentAge age) noexcept {
  switch (age) {
    case SegmentAge::Fresh: return 1;
    case SegmentAge::LapWrap: return ~std::uint64_t{0};
    case SegmentAge::PositionEnd: return ~std::uint64_t{0} - 1;
  }
  return 1;
}

// SPEC C-AGE: slot `index` of a ring whose head and tail are `first` is
// Empty of the generation of the first position >= `first` it serves (the
// lap its last message's release moved it to).
constexpr std::uint32_t first_generation(std::uint64_t first, std::uint32_t capacity, std::uint32_t index) noexcept {
  const std::uint64_t lap = first / capacity + (index < first % capacity ? 1 : 0);
  return static_cast<std::uint32_t>(lap & kGenerationMask);
}

// SPEC K-TAKEOVER: the epoch after `e`; it skips 0, which is what a lost
// (zeroed) segment reads, so that no daemon ever serves epoch 0.
constexpr std::uint64_t next_epoch(std::uint64_t e) noexcept { return e == ~std::uint64_t{0} ? 1 : e + 1; }

constexpr const char* to_string(SegmentAge age) noexcept {
  switch (age) {
    case SegmentAge::Fresh: return "fresh";
    case SegmentAge::LapWrap: return "lap-wrap";
    case SegmentAge::PositionEnd: return "position-end";
  }
  return "?";
}

constexpr std::optional<SegmentAge> parse_segment_age(std::string_view s) noexcept {
  for (SegmentAge a : kAllSegmentAges)
    if (s == to_string(a)) return a;
  return std::nullopt;
}

}  // namespace memlink::shm
