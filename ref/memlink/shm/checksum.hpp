// CRC32C (Castagnoli) of a payload, stored in each slot header so that a torn
// or corrupted payload is detected instead of delivered (SPEC S-CHECKSUM).
#pragma once

#include <cstddef>
#include <cstdint>

namespace memlink::shm {

// CRC32C with the usual init/final xor of 0xFFFFFFFF: crc32c("123456789") ==
// 0xE3069283. Uses the SSE4.2 instruction when the CPU has it.
std::uint32_t crc32c(const void* data, std::size_t len) noexcept;

// The ways crc32c() computes it, each falling back to the next where the
// CPU lacks it or the payload is short: carry-less multiplication folding
// (VPCLMULQDQ on 512-bit registers, kFoldFrom bytes and more), the SSE4.2
// crc32 instruction (three streams from 768 bytes), the portable table.
// crc32c() takes the first that applies; the tests run each.
enum class Crc32cPath : std::uint8_t { Portable, Sse42, Fold };
inline constexpr std::size_t kFoldFrom = 256;
std::uint32_t crc32c_via(Crc32cPath path, const void* data, std::size_t len) noexcept;
// The portable table-driven version, used on other CPUs and to test the above.
std::uint32_t crc32c_portable(const void* data, std::size_t len) noexcept;

}  // namespace memlink::shm
