#include "memlink/shm/crash_point.hpp"

#if defined(MEMLINK_TESTING_HOOKS)
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <string>
#if !defined(_WIN32)
#include <unistd.h>
#else
#include <windows.h>
#endif
#endif

namespace memlink::shm {

#if defined(MEMLINK_TESTING_HOOKS)
namespace {

struct Target {
  std::string point;
  long occurrence = 0;  // 0: none
};

Target& target() {
  static Target t = [] {
    Target r;
    const char* env = std::getenv("MEMLINK_CRASH_AT");
    if (env == nullptr) return r;
    std::string s(env);
    const auto colon = s.rfind(':');
    r.point = s.substr(0, colon);
    r.occurrence = colon == std::string::npos ? 1 : std::atol(s.c_str() + colon + 1);
    return r;
  }();
  return t;
}

std::atomic<long> g_visits{0};

[[noreturn]] void die_at(std::string_view point, long n) {
  std::string line = "memlink crash point " + std::string(point) + "#" + std::to_string(n) +
                     ": killing pid ";
#if !defined(_WIN32)
  line += std::to_string(::getpid()) + "\n";
  (void)!::write(2, line.data(), line.size());
  ::kill(::getpid(), SIGKILL);
#else
  line += std::to_string(GetCurrentProcessId()) + "\n";
  (void)!WriteFile(GetStdHandle(STD_ERROR_HANDLE), line.data(), static_cast<DWORD>(line.size()), nullptr, nullptr);
  TerminateProcess(GetCurrentProcess(), 137);
#endif
  std::abort();
}

}  // namespace

bool crash_points_compiled_in() noexcept { return true; }

void arm_crash_point(std::string_view point, long occurrence) noexcept {
  // Only before the threads that visit points exist (or in a fresh child).
  Target& t = target();
  t.point = std::string(point);
  t.occurrence = occurrence;
  g_visits.store(0, std::memory_order_relaxed);
}

void crash_point(std::string_view point) noexcept {
  const Target& t = target();
  if (t.occurrence <= 0 || point != t.point) return;
  const long n = g_visits.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n == t.occurrence) die_at(point, n);
}

#else

bool crash_points_compiled_in() noexcept { return false; }
void arm_crash_point(std::string_view, long) noexcept {}
void crash_point(std::string_view) noexcept {}

#endif

}  // namespace memlink::shm
