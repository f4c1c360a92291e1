// Message priorities and how a direction's slots are shared among them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace memlink::shm {

// Read order is the enum order: Critical before High before Low (SPEC R-ORDER).
enum class Priority : std::uint8_t { Critical = 0, High = 1, Low = 2 };

inline constexpr std::size_t kPriorityCount = 3;
inline constexpr std::array<Priority, kPriorityCount> kAllPriorities = {
    Priority::Critical, Priority::High, Priority::Low};

constexpr std::string_view to_string(Priority p) noexcept {
  switch (p) {
    case Priority::Critical: return "critical";
    case Priority::High: return "high";
    case Priority::Low: return "low";
  }
  return "invalid";
}

// Decodes a priority byte read from shared memory; nullopt if out of range.
constexpr std::optional<Priority> priority_from_byte(std::uint8_t b) noexcept {
  if (b < kPriorityCount) return static_cast<Priority>(b);
  return std::nullopt;
}

std::optional<Priority> priority_from_string(std::string_view s) noexcept;

struct SlotDistribution {
  std::uint32_t critical;
  std::uint32_t high;
  std::uint32_t low;

  constexpr std::uint32_t of(Priority p) const noexcept {
    return p == Priority::Critical ? critical : p == Priority::High ? high : low;
  }
  constexpr std::uint64_t total() const noexcept {
    return std::uint64_t{critical} + high + low;
  }
  friend constexpr bool operator==(const SlotDistribution&, const SlotDistribution&) = default;
};

// SPEC G-DIST: the crate's split of n slots of one direction:
//   critical = max(1, ceil(0.2 n)), high = max(1, ceil(0.5 n)),
//   low = max(1, n - critical - high).
// For n >= 4 the three sum to n; for n < 4 each priority still gets one slot,
// so the sum is 3 (n = 1, 2) or 4 (n = 3). Integer arithmetic, no floats:
// ceil(0.2 n) = (n + 4) / 5 and ceil(0.5 n) = (n + 1) / 2.
constexpr SlotDistribution calculate_slot_distribution(std::uint32_t n) noexcept {
  const std::uint64_t c = (std::uint64_t{n} + 4) / 5;
  const std::uint64_t h = (std::uint64_t{n} + 1) / 2;
  const std::uint32_t critical = c < 1 ? 1 : static_cast<std::uint32_t>(c);
  const std::uint32_t high = h < 1 ? 1 : static_cast<std::uint32_t>(h);
  const std::int64_t rest = std::int64_t{n} - critical - high;
  const std::uint32_t low = rest < 1 ? 1 : static_cast<std::uint32_t>(rest);
  return {critical, high, low};
}

static_assert(calculate_slot_distribution(10) == SlotDistribution{2, 5, 3});
static_assert(calculate_slot_distribution(1) == SlotDistribution{1, 1, 1});
static_assert(calculate_slot_distribution(3) == SlotDistribution{1, 2, 1});

}  // namespace memlink::shm
