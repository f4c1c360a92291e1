#include "memlink/shm/checksum.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
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

// Long payloads on CPUs with VPCLMULQDQ: carry-less multiplication folding
// (Intel, "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ",
// bit-reflected), 4 x 64 bytes a round. The crc32 instruction tops out at
// 8 bytes a cycle; this path reads 256 bytes in a few cycles more than it
// takes to fold them (4096 bytes: about 4x the three-stream path here).
//
// A 16-byte lane holds message bytes with the first byte's low bit the
// highest-degree coefficient. Folding lane A into the lane D bits later:
// A * x^D = A_hi * x^(D+64) + A_lo * x^D, A_hi being the lane's low
// quadword (its earlier bytes). Each half is multiplied by x^(offset - 32)
// mod P, stored reflected and shifted left by one (the reflected product
// lands one bit low; the 33-bit constant sits in bits 0..32), and both
// products (under 96 bits) are xored into the later lane. The last lane is
// finished by the crc32 instruction over its 16 bytes from 0: the initial
// value was xored into the first four message bytes, as a reflected CRC's
// register is. (Constants checked against the table for every length and
// alignment up to 4200 bytes: checksum_test.cpp.)
constexpr std::uint32_t kPolyNormal = 0x1EDC6F41u;  // Castagnoli, x^32 implied

std::uint64_t fold_constant(unsigned offset) noexcept {  // reflect(x^(offset - 32) mod P) << 1
  std::uint64_t v = 1;  // x^0, normal bit order
  for (unsigned i = 0; i < offset - 32; ++i) {
    v <<= 1;
    if (v & (1ULL << 32)) v ^= (1ULL << 32) | kPolyNormal;
  }
  std::uint64_t r = 0;
  for (int j = 0; j < 32; ++j)
    if (v & (1ULL << j)) r |= 1ULL << (31 - j);
  return r << 1;
}

#define MEMLINK_FOLD_TARGET __attribute__((target("sse4.2,pclmul,avx512f,avx512vl,vpclmulqdq")))

// {low quadword's constant, high quadword's} for a fold over D bits, in
// every 16-byte lane of a 512-bit register.
MEMLINK_FOLD_TARGET __m512i fold_constants(unsigned d) noexcept {
  const auto lo = static_cast<long long>(fold_constant(d + 64)), hi = static_cast<long long>(fold_constant(d));
  return _mm512_set_epi64(hi, lo, hi, lo, hi, lo, hi, lo);
}

MEMLINK_FOLD_TARGET inline __m512i fold512(__m512i a, __m512i k, __m512i next) noexcept {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00), _mm512_clmulepi64_epi128(a, k, 0x11), next,
                                   0x96);  // a ^ b ^ c
}

MEMLINK_FOLD_TARGET inline __m128i fold128(__m128i a, __m128i k, __m128i next) noexcept {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k, 0x00), _mm_clmulepi64_si128(a, k, 0x11)), next);
}

// len >= 256.
MEMLINK_FOLD_TARGET std::uint32_t crc32c_fold(const void* data, std::size_t len) noexcept {
  static const __m512i k_256_bytes = fold_constants(2048), k_64_bytes = fold_constants(512);
  static const __m128i k_16_bytes = _mm_set_epi64x(static_cast<long long>(fold_constant(128)),
                                                   static_cast<long long>(fold_constant(128 + 64)));
  const auto* p = static_cast<const unsigned char*>(data);
  __m512i z0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128(-1)));
  __m512i z1 = _mm512_loadu_si512(p + 64), z2 = _mm512_loadu_si512(p + 128), z3 = _mm512_loadu_si512(p + 192);
  for (p += 256, len -= 256; len >= 256; p += 256, len -= 256) {
    z0 = fold512(z0, k_256_bytes, _mm512_loadu_si512(p));
    z1 = fold512(z1, k_256_bytes, _mm512_loadu_si512(p + 64));
    z2 = fold512(z2, k_256_bytes, _mm512_loadu_si512(p + 128));
    z3 = fold512(z3, k_256_bytes, _mm512_loadu_si512(p + 192));
  }
  __m512i z = fold512(fold512(fold512(z0, k_64_bytes, z1), k_64_bytes, z2), k_64_bytes, z3);
  for (; len >= 64; p += 64, len -= 64) z = fold512(z, k_64_bytes, _mm512_loadu_si512(p));
  alignas(64) __m128i lane[4];
  _mm512_store_si512(lane, z);
  __m128i x = fold128(fold128(fold128(lane[0], k_16_bytes, lane[1]), k_16_bytes, lane[2]), k_16_bytes, lane[3]);
  for (; len >= 16; p += 16, len -= 16) x = fold128(x, k_16_bytes, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  std::uint64_t crc = _mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(x)));
  crc = _mm_crc32_u64(crc, static_cast<std::uint64_t>(_mm_extract_epi64(x, 1)));
  for (; len >= 8; p += 8, len -= 8) crc = crc_u64_at(crc, p);
  auto c32 = static_cast<std::uint32_t>(crc);
  for (; len > 0; ++p, --len) c32 = _mm_crc32_u8(c32, *p);
  return c32 ^ 0xFFFFFFFFu;
}

bool cpu_has_fold() noexcept {
  static const bool has = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") &&
                          __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("vpclmulqdq");
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

std::uint32_t crc32c_via(Crc32cPath path, const void* data, std::size_t len) noexcept {
#ifdef MEMLINK_HAVE_SSE42_PATH
  if (path == Crc32cPath::Fold && len >= kFoldFrom && cpu_has_fold()) return crc32c_fold(data, len);
  if (path != Crc32cPath::Portable && cpu_has_sse42()) return crc32c_sse42(data, len);
#else
  (void)path;
#endif
  return crc32c_portable(data, len);
}

std::uint32_t crc32c(const void* data, std::size_t len) noexcept {
  return crc32c_via(Crc32cPath::Fold, data, len);
}

}  // namespace memlink::shm
