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

// Every length up to past five three-stream rounds, at every alignment: the
// three-stream path (768 bytes and up) joins its streams exactly.
TEST(Checksum, HardwareAndPortableAgreeAtEveryLengthAndAlignment) {
  std::mt19937 rng(11);
  std::vector<unsigned char> buf(4200 + 8);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (std::size_t offset = 0; offset < 8; ++offset)
    for (std::size_t len = 0; len <= 4200; ++len)
      ASSERT_EQ(crc32c(buf.data() + offset, len), crc32c_portable(buf.data() + offset, len)) << len << " at +" << offset;
}

TEST(Checksum, DetectsASingleFlippedBit) {
  std::vector<unsigned char> buf(1000, 0x5A);
  const auto good = crc32c(buf.data(), buf.size());
  buf[517] ^= 0x10;
  EXPECT_NE(crc32c(buf.data(), buf.size()), good);
}

}  // namespace
}  // namespace memlink::shm
