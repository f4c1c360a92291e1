// S-CHECKSUM as the spec defines it: CRC32C computed bit by bit, reflected
// polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF. Slow and
// obviously right: the oracle the checksum and layout checks compare with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace memlink::conformance {

inline std::uint32_t crc32c_by_definition(std::span<const std::byte> bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::byte b : bytes) {
    crc ^= std::to_integer<std::uint8_t>(b);
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace memlink::conformance
