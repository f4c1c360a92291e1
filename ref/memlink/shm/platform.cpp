#include "memlink/shm/platform.hpp"

#include <climits>

#include <thread>

#include "memlink/shm/testing_hooks.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#if defined(_WIN32)
#include <windows.h>
#else
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#endif

namespace memlink::shm::platform {

#if defined(_WIN32)

std::uint32_t current_pid() noexcept {
  MEMLINK_INTERPOSED(pid());
  return static_cast<std::uint32_t>(GetCurrentProcessId());
}
std::uint64_t coarse_monotonic_ns() noexcept { return monotonic_ns(); }

std::uint64_t monotonic_ns() noexcept {
  MEMLINK_INTERPOSED(now_ns());
  static const LONGLONG freq = [] {
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    return f.QuadPart;
  }();
  LARGE_INTEGER c;
  QueryPerformanceCounter(&c);
  return static_cast<std::uint64_t>(c.QuadPart / freq) * 1000000000ULL +
         static_cast<std::uint64_t>(c.QuadPart % freq) * 1000000000ULL / freq;
}

bool process_exists(std::uint32_t pid) noexcept {
  if (pid == 0 || pid > static_cast<std::uint32_t>(INT32_MAX)) return false;  // as on POSIX: no process
  HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, pid);
  if (h == nullptr) return GetLastError() == ERROR_ACCESS_DENIED;
  const DWORD r = WaitForSingleObject(h, 0);
  CloseHandle(h);
  return r == WAIT_TIMEOUT;
}

std::string last_error_text() {
  const DWORD e = GetLastError();
  char buf[256] = {};
  const DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, e, 0, buf,
                                 sizeof buf, nullptr);
  std::string text(buf, n);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == '.')) text.pop_back();
  return (text.empty() ? "error" : text) + " (Windows error " + std::to_string(e) + ")";
}

bool replace_file(const std::string& from, const std::string& to) noexcept {
  return MoveFileExA(from.c_str(), to.c_str(), MOVEFILE_REPLACE_EXISTING) != 0;
}

bool remove_file(const std::string& path) noexcept { return DeleteFileA(path.c_str()) != 0; }

std::string shm_directory() {
  char buf[MAX_PATH + 1] = {};
  DWORD n = GetTempPathA(sizeof buf, buf);
  if (n == 0 || n > MAX_PATH) return ".";
  std::string dir(buf, n);
  while (!dir.empty() && (dir.back() == '\\' || dir.back() == '/')) dir.pop_back();
  return dir;
}

#else

// getpid() is a system call (about 150 ns in a VM here) and the slot state
// machine stamps the owner on every write and read, so the pid is cached,
// and forgotten in the child of every fork() (pthread_atfork).
namespace {
std::atomic<std::uint32_t> g_pid{0};
void forget_pid() { g_pid.store(0, std::memory_order_relaxed); }
}  // namespace

std::uint32_t current_pid() noexcept {
  MEMLINK_INTERPOSED(pid());
  std::uint32_t pid = g_pid.load(std::memory_order_relaxed);
  if (pid == 0) {
    static const int registered = ::pthread_atfork(nullptr, nullptr, forget_pid);
    (void)registered;
    pid = static_cast<std::uint32_t>(::getpid());
    g_pid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}

std::uint64_t coarse_monotonic_ns() noexcept {
  MEMLINK_INTERPOSED(now_ns());
#if defined(CLOCK_MONOTONIC_COARSE)
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
#else
  return monotonic_ns();
#endif
}

std::uint64_t monotonic_ns() noexcept {
  MEMLINK_INTERPOSED(now_ns());
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

bool process_exists(std::uint32_t pid) noexcept {
  // 0 and values above INT32_MAX are no process: as a pid_t they would be a
  // process group or -1 (every process we may signal), which kill(2) calls
  // alive (an owner pid of 0xFFFFFFFF in a slot was never reclaimed).
  if (pid == 0 || pid > static_cast<std::uint32_t>(INT32_MAX)) return false;
  // EPERM means it exists but belongs to someone else.
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

bool replace_file(const std::string& from, const std::string& to) noexcept {
  return ::rename(from.c_str(), to.c_str()) == 0;
}

bool remove_file(const std::string& path) noexcept { return ::unlink(path.c_str()) == 0; }

std::string shm_directory() {
#if defined(__linux__)
  return "/dev/shm";
#else
  return "/tmp";
#endif
}

std::string last_error_text() {
  const int e = errno;
  char buf[256];
  // GNU strerror_r may return a static string instead of filling buf.
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  const char* s = ::strerror_r(e, buf, sizeof buf);
  return std::string(s) + " (errno " + std::to_string(e) + ")";
#else
  ::strerror_r(e, buf, sizeof buf);
  return std::string(buf) + " (errno " + std::to_string(e) + ")";
#endif
}

#endif

void sleep_for(std::chrono::nanoseconds d) noexcept {
  if (hooks::Interposer* i = hooks::interposer()) return i->sleep(d);
  std::this_thread::sleep_for(d);
}

}  // namespace memlink::shm::platform
