#include "test_support.hpp"

#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "memlink/shm/recovery.hpp"

#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "memlink/shm/mmap.hpp"
#include "memlink/shm/platform.hpp"

namespace memlink::shm::test {

TempSegmentPath::TempSegmentPath(const std::string& tag, bool posix_name) {
  static std::atomic<int> counter{0};
  const std::string name = "memlink-test-" + tag + "-" + std::to_string(platform::current_pid()) + "-" +
                           std::to_string(counter.fetch_add(1));
#if defined(_WIN32)
  path_ = posix_name ? name : platform::shm_directory() + "\\" + name;
#else
  path_ = posix_name ? name : platform::shm_directory() + "/" + name;
#endif
  (void)MmapSegment::remove(path_);
}

TempSegmentPath::~TempSegmentPath() {
  // The identity lock names the segment's inode: it goes first, while the
  // segment is there to name it (a daemon killed with kill -9 left it).
  if (const std::string identity = RecoveryManager::identity_lock_path(path_); !identity.empty())
    (void)platform::remove_file(identity);
  (void)MmapSegment::remove(path_);
  // The daemon's lock, PID and start-lock files (SPEC K-LOCK), if any.
  const std::string base = RecoveryManager::base_path(path_);
  for (const char* suffix : {".lock", ".pid", ".takeover"}) (void)platform::remove_file(base + suffix);
}

std::uint32_t pid_of_exited_process() {
#if defined(_WIN32)
  // This test binary again, running no test.
  char self[MAX_PATH + 1] = {};
  GetModuleFileNameA(nullptr, self, MAX_PATH);
  std::string cmd = std::string("\"") + self + "\" --gtest_filter=-*";
  STARTUPINFOA si{};
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;  // no inherited handles: its output goes nowhere
  PROCESS_INFORMATION pi{};
  if (!CreateProcessA(self, cmd.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si, &pi))
    throw std::runtime_error("CreateProcess: " + platform::last_error_text());
  WaitForSingleObject(pi.hProcess, INFINITE);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return static_cast<std::uint32_t>(pi.dwProcessId);
#else
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return static_cast<std::uint32_t>(child);
#endif
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
