#include "test_support.hpp"

#include "memlink/shm/recovery.hpp"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "memlink/shm/mmap.hpp"

namespace memlink::shm::test {

TempSegmentPath::TempSegmentPath(const std::string& tag, bool posix_name) {
  static std::atomic<int> counter{0};
  const std::string name = "memlink-test-" + tag + "-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1));
  path_ = posix_name ? name : "/dev/shm/" + name;
  (void)MmapSegment::remove(path_);
}

TempSegmentPath::~TempSegmentPath() {
  (void)MmapSegment::remove(path_);
  // The daemon's lock, PID and start-lock files (SPEC K-LOCK), if any.
  const std::string base = RecoveryManager::base_path(path_);
  for (const char* suffix : {".lock", ".pid", ".takeover"}) ::unlink((base + suffix).c_str());
}

std::vector<std::byte> pattern_payload(std::uint64_t tag, std::size_t length) {
  std::vector<std::byte> out(length);
  std::uint64_t x = tag * 0x9E3779B97F4A7C15ULL + length;
  for (std::size_t i = 0; i < length; ++i) {
    if (i < 8) {
      out[i] = static_cast<std::byte>((tag >> (8 * i)) & 0xFF);
    } else {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      out[i] = static_cast<std::byte>(x & 0xFF);
    }
  }
  return out;
}

std::uint64_t pattern_tag(std::span<const std::byte> payload) {
  std::uint64_t tag = 0;
  for (std::size_t i = 0; i < 8 && i < payload.size(); ++i)
    tag |= std::uint64_t(std::to_integer<std::uint8_t>(payload[i])) << (8 * i);
  return tag;
}

bool pattern_matches(std::span<const std::byte> payload, std::uint64_t tag) {
  const auto expect = pattern_payload(tag, payload.size());
  return payload.size() == expect.size() &&
         (payload.empty() || std::memcmp(payload.data(), expect.data(), payload.size()) == 0);
}

void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(raw.size());
  if (!raw.empty()) std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

}  // namespace memlink::shm::test
