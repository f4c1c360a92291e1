// Helpers shared by the tests: unique segment paths that clean up after
// themselves, and byte-buffer conveniences.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace memlink::shm::test {

// A unique path under /dev/shm (%TEMP% on Windows), or a bare shm name,
// removed (with the daemon's lock and PID files) on scope exit.
class TempSegmentPath {
 public:
  explicit TempSegmentPath(const std::string& tag = "t", bool posix_name = false);
  ~TempSegmentPath();
  TempSegmentPath(const TempSegmentPath&) = delete;
  TempSegmentPath& operator=(const TempSegmentPath&) = delete;
  const std::string& str() const noexcept { return path_; }

 private:
  std::string path_;
};

// The pid of a process that has exited and been reaped (its handle closed).
std::uint32_t pid_of_exited_process();

// A payload whose bytes are a function of (tag, length) so the receiver can
// check the content without being told it.
std::vector<std::byte> pattern_payload(std::uint64_t tag, std::size_t length);
bool pattern_matches(std::span<const std::byte> payload, std::uint64_t tag);
// The tag of a pattern payload of at least 8 bytes.
std::uint64_t pattern_tag(std::span<const std::byte> payload);

// Writes raw bytes into a file, replacing it (for corrupt-segment tests).
void write_file(const std::string& path, const std::vector<std::byte>& bytes);
std::vector<std::byte> read_file(const std::string& path);

}  // namespace memlink::shm::test
