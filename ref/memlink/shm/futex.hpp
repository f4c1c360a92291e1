// Cross-process wait/wake on a 32-bit word in shared memory (SPEC F-*).
//
// Every backend must wake a waiter in another process:
//   Linux:   FUTEX_WAIT / FUTEX_WAKE *without* FUTEX_PRIVATE_FLAG (the private
//            variant keys on the process's own mm and never crosses).
//   macOS:   __ulock_wait / __ulock_wake with UL_COMPARE_AND_WAIT_SHARED
//            (the plain UL_COMPARE_AND_WAIT is process-private).
//   Windows: WaitOnAddress is process-private, so each word gets a named
//            semaphore: wake(n) releases n permits, a sleeper takes one. A
//            permit released before its sleeper got to sleep waits for it
//            (no lost wake); one nobody takes makes a later wait return at
//            once (a spurious wake, which callers tolerate anyway).
//
// Contract: the word is only ever changed with atomic operations; wait()
// returns when the word differs from `expected`, when woken (spuriously too),
// on timeout, or on a signal. Callers re-check their condition in a loop, and
// a waker passes the number of sleepers it wants to wake (the transport
// counts them in the word's `waiters`, SPEC F-WAKE).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "memlink/shm/result.hpp"

namespace memlink::shm {

class Futex {
 public:
  // `name` identifies the word across processes where the OS needs a name
  // for it (Windows); it is ignored elsewhere.
  explicit Futex(std::atomic<std::uint32_t>* word, std::string name = {}) noexcept;
  ~Futex();
  Futex(const Futex&) = delete;
  Futex& operator=(const Futex&) = delete;
  Futex(Futex&& other) noexcept;
  Futex& operator=(Futex&& other) noexcept;

  // Sleeps while *word == expected. Ok on wake-up or when the value already
  // differs; Timeout, Interrupted, InvalidArgument or Unsupported otherwise.
  Status wait(std::uint32_t expected,
              std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const;

  // Wakes at most `count` waiters (wake_one: 1); returns how many were woken
  // where the OS reports it (Linux), 0 elsewhere.
  Result<int> wake(std::uint32_t count) const;
  Result<int> wake_one() const { return wake(1); }

  std::atomic<std::uint32_t>* word() const noexcept { return word_; }

  // The name of the backend compiled in: "linux-futex", "macos-ulock-shared",
  // "windows-named-semaphore".
  static const char* backend() noexcept;

 private:
  Status os_wait(std::uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) const;
  Result<int> os_wake(std::uint32_t count) const;
  std::string key() const;  // the word's name, or its address
  std::atomic<std::uint32_t>* word_;
  std::string name_;
  void* semaphore_ = nullptr;  // Windows: the named semaphore handle
};

}  // namespace memlink::shm
