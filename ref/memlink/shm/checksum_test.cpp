#include "memlink/shm/checksum.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace memlink::shm {
namespace {

TEST(Checksum, KnownVectors) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(crc32c_portable(check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  const std::vector<unsigned char> zeros(32, 0);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
}

TEST(Checksum, HardwareAndPortableAgree) {
  std::mt19937 rng(7);
  std::vector<unsigned char> buf(4096);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (std::size_t len = 0; len <= buf.size(); len += 1 + len / 3)
    ASSERT_EQ(crc32c(buf.data(), len), crc32c_portable(buf.data(), len)) << len;
}

// Every length up to past five three-stream rounds and sixteen folding
// rounds, at every alignment, for each path the CPU has (one it lacks falls
// back, and is then compared again): the three-stream path (768 bytes and
// up) joins its streams exactly, and the folding path's constants, its
// 256-, 64- and 16-byte steps and its tail are right.
TEST(Checksum, EveryPathAgreesWithTheTableAtEveryLengthAndAlignment) {
  std::mt19937 rng(11);
  std::vector<unsigned char> buf(4200 + 64);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (Crc32cPath path : {Crc32cPath::Sse42, Crc32cPath::Fold})
    for (std::size_t offset : {0, 1, 3, 7, 8, 31, 63})
      for (std::size_t len = 0; len <= 4200; ++len)
        ASSERT_EQ(crc32c_via(path, buf.data() + offset, len), crc32c_portable(buf.data() + offset, len))
            << "path " << static_cast<int>(path) << ", " << len << " bytes at +" << offset;
}

TEST(Checksum, DetectsASingleFlippedBit) {
  std::vector<unsigned char> buf(1000, 0x5A);
  const auto good = crc32c(buf.data(), buf.size());
  buf[517] ^= 0x10;
  EXPECT_NE(crc32c(buf.data(), buf.size()), good);
}

}  // namespace
}  // namespace memlink::shm
