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
// Three streams (issue 15: CRC32C fast for large payloads). One crc32
// instruction has a latency of 3 cycles and a throughput of 1 per cycle, so a
// single dependent chain uses a third of the unit. Payloads of 768 bytes or
// more are cut into rounds of three 256-byte blocks whose CRCs run as three
// independent chains, then joined: the CRC register is linear over GF(2), so
// crc(A || B) = Z(crc(A)) ^ crc0(B), where Z feeds 256 zero bytes through the
// register and crc0(B) is B's CRC from a zero register. Z is a 32x32 bit
// matrix, applied with four table lookups (Mark Adler's crc32c method).
constexpr std::size_t kBlock = 256;  // bytes per stream per round; a power of two

std::uint32_t gf2_times(const std::uint32_t* mat, std::uint32_t vec) noexcept {
  std::uint32_t sum = 0;
  for (int i = 0; vec != 0; ++i, vec >>= 1)
    if (vec & 1) sum ^= mat[i];
  return sum;
}

void gf2_square(std::uint32_t* out, const std::uint32_t* mat) noexcept {
  for (int n = 0; n < 32; ++n) out[n] = gf2_times(mat, mat[n]);
}

// Z as four byte-indexed tables: Z(crc) = t[0][b0] ^ t[1][b1] ^ t[2][b2] ^ t[3][b3].
struct ZerosShift {
  std::uint32_t t[4][256];
};

ZerosShift make_zeros_shift(std::size_t len) noexcept {  // len: a power of two
  std::uint32_t odd[32], even[32];
  odd[0] = kPoly;  // one zero bit
  for (int n = 1; n < 32; ++n) odd[n] = 1u << (n - 1);
  gf2_square(even, odd);  // two zero bits
  gf2_square(odd, even);  // four zero bits
  const std::uint32_t* op = nullptr;
  for (;;) {
    gf2_square(even, odd);  // eight zero bits the first time: one byte
    len >>= 1;
    if (len == 0) {
      op = even;
      break;
    }
    gf2_square(odd, even);
    len >>= 1;
    if (len == 0) {
      op = odd;
      break;
    }
  }
  ZerosShift z{};
  for (std::uint32_t n = 0; n < 256; ++n)
    for (int k = 0; k < 4; ++k) z.t[k][n] = gf2_times(op, n << (8 * k));
  return z;
}

std::uint32_t shift_block(std::uint32_t crc) noexcept {
  static const ZerosShift z = make_zeros_shift(kBlock);
  return z.t[0][crc & 0xFF] ^ z.t[1][(crc >> 8) & 0xFF] ^ z.t[2][(crc >> 16) & 0xFF] ^ z.t[3][crc >> 24];
}

__attribute__((target("sse4.2"))) inline std::uint64_t crc_u64_at(std::uint64_t crc, const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return _mm_crc32_u64(crc, v);
}

__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(const void* data,
                                                             std::size_t len) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t crc = 0xFFFFFFFFu;
  while (len >= 3 * kBlock) {
    std::uint64_t crc1 = 0, crc2 = 0;
    for (const unsigned char* end = p + kBlock; p < end; p += 8) {
      crc = crc_u64_at(crc, p);
      crc1 = crc_u64_at(crc1, p + kBlock);
      crc2 = crc_u64_at(crc2, p + 2 * kBlock);
    }
    crc = shift_block(static_cast<std::uint32_t>(crc)) ^ static_cast<std::uint32_t>(crc1);
    crc = shift_block(static_cast<std::uint32_t>(crc)) ^ static_cast<std::uint32_t>(crc2);
    p += 2 * kBlock;
    len -= 3 * kBlock;
  }
  while (len >= 8) {
    crc = crc_u64_at(crc, p);
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
