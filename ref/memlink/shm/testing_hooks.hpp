// Testing hooks: where a test build of the library (MEMLINK_TESTING_HOOKS,
// target memlink_shm_testing) hands control to a test harness. Never in the
// shipped library: there every hook below compiles to nothing.
//
// The harness is an Interposer installed for one thread (set_interposer). A
// thread with an interposer
//  - passes through it before every access to shared memory (and after every
//    store and read-modify-write): every atomic of the segment is a
//    SharedAtomic and every plain slot field a SharedField (shared_atomic.hpp),
//    so the cooperative scheduler of conformance/explore/ can switch threads
//    there and explore the interleavings of the real code (SPEC clauses are
//    checked on the histories it produces);
//  - reaches it at every named point (crash_point.hpp), where it may record
//    the time or let the thread die;
//  - asks it for the time, its pid, whether a pid is alive, and to sleep or
//    wait on a futex: virtual time, virtual processes and a virtual futex,
//    so that an exploration is deterministic and a lost wake-up shows as a
//    sleeper that only its timeout woke.
// Threads without an interposer (the test's own, every thread of a normal
// run) see the plain library.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace memlink::shm::hooks {

enum class Access : std::uint8_t { Load, Store, Exchange, Cas, Rmw, PlainRead, PlainWrite };

enum class WaitResult : std::uint8_t { Woken, ValueChanged, TimedOut };

class Interposer {
 public:
  virtual ~Interposer() = default;
  // Before an access of shared memory (after == false), and after a store,
  // exchange, CAS or read-modify-write (after == true).
  virtual void on_access(Access kind, const void* address, bool after) noexcept = 0;
  // A named point of the write, read or recovery path (kCrashPoints).
  virtual void on_point(std::string_view name) noexcept = 0;
  virtual std::uint64_t now_ns() noexcept = 0;
  virtual std::uint32_t pid() noexcept = 0;
  virtual bool alive(std::uint32_t pid) noexcept = 0;
  virtual void sleep(std::chrono::nanoseconds d) noexcept = 0;
  // Futex wait/wake. `key` names the word across mappings of one segment
  // (two mappings of one file have different addresses), `word` is this
  // mapping's address of it.
  virtual WaitResult futex_wait(std::string_view key, const void* word, std::uint32_t expected,
                                std::optional<std::chrono::nanoseconds> timeout) noexcept = 0;
  virtual int futex_wake(std::string_view key, std::uint32_t count) noexcept = 0;
  // Weak memory (conformance/explore/memory_model.hpp). After an atomic
  // load ran: the bits it read, and what the thread is to see instead (an
  // older store the C++ model lets it read); `newest_only` for a failed CAS.
  // After a store or read-modify-write ran: the bits memory held before it
  // and holds now. A
  // fence. A plain field's access (SharedField), after its decision point.
  virtual std::uint64_t on_load_value(const void*, std::uint64_t bits, std::memory_order,
                                      bool /*newest_only*/) noexcept {
    return bits;
  }
  virtual void on_store_value(const void*, std::uint64_t /*before*/, std::uint64_t /*bits*/, std::memory_order,
                              bool /*rmw*/) noexcept {}
  virtual void on_fence(std::memory_order) noexcept {}
  virtual void on_plain(const void*, bool /*write*/) noexcept {}
};

#if defined(MEMLINK_TESTING_HOOKS)
// The calling thread's interposer, or null.
Interposer* interposer() noexcept;
void set_interposer(Interposer* i) noexcept;
inline void access(Access kind, const void* address, bool after = false) noexcept {
  if (Interposer* i = interposer()) i->on_access(kind, address, after);
}
template <class T>
inline T loaded(const void* address, T v, std::memory_order mo, bool newest_only = false) noexcept {
  if constexpr (sizeof(T) <= 8) {
    if (Interposer* i = interposer()) {
      std::uint64_t bits = 0;
      std::memcpy(&bits, &v, sizeof v);
      bits = i->on_load_value(address, bits, mo, newest_only);
      std::memcpy(&v, &bits, sizeof v);
    }
  }
  return v;
}
template <class T>
inline void stored(const void* address, T before, T v, std::memory_order mo, bool rmw) noexcept {
  if constexpr (sizeof(T) <= 8) {
    if (Interposer* i = interposer()) {
      std::uint64_t old_bits = 0, bits = 0;
      std::memcpy(&old_bits, &before, sizeof before);
      std::memcpy(&bits, &v, sizeof v);
      i->on_store_value(address, old_bits, bits, mo, rmw);
    }
  }
}
inline void fenced(std::memory_order mo) noexcept {
  if (Interposer* i = interposer()) i->on_fence(mo);
}
inline void plain(const void* address, bool write) noexcept {
  if (Interposer* i = interposer()) i->on_plain(address, write);
}
// In a function that asks the OS something the interposer virtualises:
// returns the interposer's answer instead, when the thread has one.
#define MEMLINK_INTERPOSED(call)                                                           \
  do {                                                                                     \
    if (::memlink::shm::hooks::Interposer* interposer_ = ::memlink::shm::hooks::interposer()) \
      return interposer_->call;                                                            \
  } while (0)
#else
constexpr Interposer* interposer() noexcept { return nullptr; }
inline void access(Access, const void*, bool = false) noexcept {}
template <class T>
constexpr T loaded(const void*, T v, std::memory_order, bool = false) noexcept {
  return v;
}
template <class T>
constexpr void stored(const void*, T, T, std::memory_order, bool) noexcept {}
constexpr void fenced(std::memory_order) noexcept {}
constexpr void plain(const void*, bool) noexcept {}
#define MEMLINK_INTERPOSED(call) ((void)0)
#endif

}  // namespace memlink::shm::hooks
