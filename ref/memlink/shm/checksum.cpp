#include "memlink/shm/checksum.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define MEMLINK_HAVE_SSE42_PATH 1
#endif

namespace memlink::shm {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = make_table();

#ifdef MEMLINK_HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(const void* data,
                                                             std::size_t len) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t crc = 0xFFFFFFFFu;
  while (len >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    crc = _mm_crc32_u64(crc, v);
    p += 8;
    len -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(crc);
  while (len-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32 ^ 0xFFFFFFFFu;
}

bool cpu_has_sse42() noexcept {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

}  // namespace

std::uint32_t crc32c_portable(const void* data, std::size_t len) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = 0xFFFFFFFFu;
  while (len-- > 0) c = kTable[(c ^ *p++) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::uint32_t crc32c(const void* data, std::size_t len) noexcept {
#ifdef MEMLINK_HAVE_SSE42_PATH
  if (cpu_has_sse42()) return crc32c_sse42(data, len);
#endif
  return crc32c_portable(data, len);
}

}  // namespace memlink::shm
