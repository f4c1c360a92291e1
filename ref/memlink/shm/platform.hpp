// The few OS facts the transport needs, behind one interface per platform.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace memlink::shm::platform {

std::uint32_t current_pid() noexcept;

// CLOCK_MONOTONIC (Linux, macOS) / QueryPerformanceCounter (Windows) in ns.
std::uint64_t monotonic_ns() noexcept;

// CLOCK_MONOTONIC at the resolution of a scheduler tick (a few ms), several
// times cheaper: for slot timestamps, which only need to tell milliseconds.
std::uint64_t coarse_monotonic_ns() noexcept;

// True if a process with this pid exists (it may be another process that
// reused the pid: the recovery layer must not rely on this alone).
bool process_exists(std::uint32_t pid) noexcept;

// Renames `from` to `to`, replacing `to` if it exists, in one step (rename;
// MoveFileEx on Windows). False on failure, with the OS error left for
// last_error_text().
bool replace_file(const std::string& from, const std::string& to) noexcept;

// Removes a file. False if it was not there or could not be removed.
bool remove_file(const std::string& path) noexcept;

// The directory for files named after a bare segment name: /dev/shm on
// Linux, %TEMP% on Windows, /tmp elsewhere. No trailing separator.
std::string shm_directory();

// Sleeps (the test build's exploration scheduler makes it virtual time).
void sleep_for(std::chrono::nanoseconds d) noexcept;

// A hint to the CPU inside spin loops.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Asks for the cache line at `p` in a writable state ahead of the stores to
// it, so that its transfer from the peer's core overlaps other work. Only a
// hint: a CPU without PREFETCHW decodes it as a no-op (0F 0D is a NOP there).
inline void prefetch_for_write(const void* p) noexcept {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#elif defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 1, 3);
#else
  (void)p;
#endif
}

// strerror for the calling thread's last OS error, thread-safe.
std::string last_error_text();

}  // namespace memlink::shm::platform
