// Bounds checking for every offset and length that comes from shared memory
// (SPEC V-BOUNDS). A peer's bytes are untrusted input: arithmetic on them is
// checked for overflow before it becomes an address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace memlink::shm::safety {

// a + b, or nullopt on overflow.
constexpr std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// a * b, or nullopt on overflow.
constexpr std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// True if offset is a valid byte index in a region of `size` bytes.
constexpr bool offset_in_bounds(std::uint64_t offset, std::uint64_t size) noexcept {
  return offset < size;
}

// True if [offset, offset + length) lies inside [0, size); an empty range at
// offset == size is valid. No overflow for any input.
constexpr bool range_in_bounds(std::uint64_t offset, std::uint64_t length,
                               std::uint64_t size) noexcept {
  return offset <= size && length <= size - offset;
}

// [base + index * stride, ... + length) inside size: the slot address check.
constexpr bool element_in_bounds(std::uint64_t base, std::uint64_t index, std::uint64_t stride,
                                 std::uint64_t length, std::uint64_t size) noexcept {
  const auto scaled = checked_mul(index, stride);
  if (!scaled) return false;
  const auto off = checked_add(base, *scaled);
  if (!off) return false;
  return range_in_bounds(*off, length, size);
}

// True if [p, p + length) lies inside [base, base + size). Compares integers,
// never forms an out-of-range pointer.
inline bool pointer_in_segment(const void* p, std::size_t length, const void* base,
                               std::size_t size) noexcept {
  const auto pi = reinterpret_cast<std::uintptr_t>(p);
  const auto bi = reinterpret_cast<std::uintptr_t>(base);
  if (pi < bi) return false;
  return range_in_bounds(pi - bi, length, size);
}

}  // namespace memlink::shm::safety
