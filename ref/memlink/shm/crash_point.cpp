#include "memlink/shm/crash_point.hpp"

#if defined(MEMLINK_TESTING_HOOKS)
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#if !defined(_WIN32)
#include <unistd.h>
#else
#include <windows.h>
#endif

#include "memlink/shm/testing_hooks.hpp"
#endif

namespace memlink::shm {

#if defined(MEMLINK_TESTING_HOOKS)
namespace {

// One armed visit: the point, the visit number, and the visits so far.
struct Target {
  std::string point;
  long occurrence = 0;  // 0: none
  std::atomic<long> visits{0};
};

// "<point>:<n>" from the environment (n defaults to 1).
void arm_from(Target& t, const char* var) {
  const char* env = std::getenv(var);
  if (env == nullptr) return;
  const std::string s(env);
  const auto colon = s.rfind(':');
  t.point = s.substr(0, colon);
  t.occurrence = colon == std::string::npos ? 1 : std::atol(s.c_str() + colon + 1);
}

Target& crash_target() {
  static Target t;
  static const bool armed = (arm_from(t, "MEMLINK_CRASH_AT"), true);
  (void)armed;
  return t;
}

struct PauseTarget : Target {
  PauseHandler handler = nullptr;
  void* context = nullptr;
};

PauseTarget& pause_target() {
  static PauseTarget t;
  static const bool armed = (arm_from(t, "MEMLINK_PAUSE_AT"), true);
  (void)armed;
  return t;
}

std::uint64_t this_pid() {
#if !defined(_WIN32)
  return static_cast<std::uint64_t>(::getpid());
#else
  return static_cast<std::uint64_t>(GetCurrentProcessId());
#endif
}

void say(const std::string& line) {
#if !defined(_WIN32)
  (void)!::write(2, line.data(), line.size());
#else
  (void)!WriteFile(GetStdHandle(STD_ERROR_HANDLE), line.data(), static_cast<DWORD>(line.size()), nullptr, nullptr);
#endif
}

[[noreturn]] void die_at(std::string_view point, long n) {
  say("memlink crash point " + std::string(point) + "#" + std::to_string(n) + ": killing pid " +
      std::to_string(this_pid()) + "\n");
#if !defined(_WIN32)
  ::kill(::getpid(), SIGKILL);
#else
  TerminateProcess(GetCurrentProcess(), 137);
#endif
  std::abort();
}

// Holds the calling thread at `point` (see crash_point.hpp): in-process
// handler, a file handshake in MEMLINK_PAUSE_DIR, or SIGSTOP of the process.
void pause_at(std::string_view point, long n) {
  PauseTarget& t = pause_target();
  if (t.handler != nullptr) {
    t.handler(point, t.context);
    return;
  }
  const char* dir = std::getenv("MEMLINK_PAUSE_DIR");
  say("memlink pause point " + std::string(point) + "#" + std::to_string(n) + ": holding " +
      (dir != nullptr ? "a thread of pid " : "pid ") + std::to_string(this_pid()) + "\n");
  if (dir == nullptr) {
#if !defined(_WIN32)
    ::raise(SIGSTOP);
#endif
    return;
  }
  namespace fs = std::filesystem;
  const fs::path paused = fs::path(dir) / "paused", resume = fs::path(dir) / "resume";
  const fs::path tmp = fs::path(dir) / ("paused.tmp." + std::to_string(this_pid()));
  if (FILE* f = std::fopen(tmp.string().c_str(), "w")) {
    std::fprintf(f, "%s %llu\n", std::string(point).c_str(), static_cast<unsigned long long>(this_pid()));
    std::fclose(f);
    std::error_code ec;
    fs::rename(tmp, paused, ec);
  }
  std::error_code ec;
  while (!fs::exists(resume, ec)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  fs::remove(resume, ec);
  fs::remove(paused, ec);
}

}  // namespace

bool crash_points_compiled_in() noexcept { return true; }

void arm_crash_point(std::string_view point, long occurrence) noexcept {
  // Only before the threads that visit points exist (or in a fresh child).
  Target& t = crash_target();
  t.point = std::string(point);
  t.occurrence = occurrence;
  t.visits.store(0, std::memory_order_relaxed);
}

void arm_pause_point(std::string_view point, long occurrence, PauseHandler handler, void* context) noexcept {
  PauseTarget& t = pause_target();
  t.point = std::string(point);
  t.occurrence = occurrence;
  t.handler = handler;
  t.context = context;
  t.visits.store(0, std::memory_order_relaxed);
}

void crash_point(std::string_view point) noexcept {
  if (hooks::Interposer* i = hooks::interposer()) i->on_point(point);
  if (Target& t = crash_target(); t.occurrence > 0 && point == t.point) {
    const long n = t.visits.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n == t.occurrence) die_at(point, n);
  }
  if (PauseTarget& t = pause_target(); t.occurrence > 0 && point == t.point) {
    const long n = t.visits.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n == t.occurrence) pause_at(point, n);
  }
}

#else

bool crash_points_compiled_in() noexcept { return false; }
void arm_crash_point(std::string_view, long) noexcept {}
void arm_pause_point(std::string_view, long, PauseHandler, void*) noexcept {}
void crash_point(std::string_view) noexcept {}

#endif

}  // namespace memlink::shm
