// The types of every field that lives in shared memory.
//
// SharedAtomic<T> is std::atomic<T> with the same size, alignment and
// operations; SharedField<T> is a plain T read and written by value. In the
// shipped library they are exactly that. In the test build
// (MEMLINK_TESTING_HOOKS) every access first passes through the calling
// thread's interposer (testing_hooks.hpp), so that a cooperative scheduler
// can switch threads before any load, store or CAS of the segment and
// explore the interleavings of the real code. Stores and read-modify-writes
// pass a second time afterwards, so the scheduler can also switch between a
// store and the plain writes that follow it.
//
// In the test build loads, stores, read-modify-writes and fences also tell
// the interposer their values and memory orders, so that the exploration's
// memory model (conformance/explore/memory_model.hpp) may let a load read an
// older store, as a weakly ordered CPU would; shared_fence() is the fence it
// sees.
//
// raw() is the underlying std::atomic, for the futex system call (which
// needs the word's address) and for the creator's initialisation.
#pragma once

#include <atomic>
#include <type_traits>

#include "memlink/shm/testing_hooks.hpp"

namespace memlink::shm {

template <class T>
class SharedAtomic {
 public:
  using Access = hooks::Access;

  SharedAtomic() noexcept = default;
  SharedAtomic(const SharedAtomic&) = delete;
  SharedAtomic& operator=(const SharedAtomic&) = delete;

  T load(std::memory_order mo = std::memory_order_seq_cst) const noexcept {
    hooks::access(Access::Load, this);
    return hooks::loaded(this, a_.load(mo), mo);
  }
  void store(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    hooks::access(Access::Store, this);
    if (hooks::interposer() == nullptr) {
      a_.store(v, mo);
    } else {
      const T before = a_.load(std::memory_order_relaxed);
      a_.store(v, mo);
      hooks::stored(this, before, v, mo, false);
    }
    hooks::access(Access::Store, this, true);
  }
  T exchange(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return rmw(Access::Exchange, mo, [&] { return a_.exchange(v, mo); });
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure) noexcept {
    return cas(expected, success, failure,
               [&] { return a_.compare_exchange_strong(expected, desired, success, failure); });
  }
  bool compare_exchange_strong(T& expected, T desired,
                               std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return compare_exchange_strong(expected, desired, mo, failure_order(mo));
  }
  // Weak CAS may fail spuriously; callers loop. (Under the scheduler it
  // behaves like the strong one.)
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure) noexcept {
    return cas(expected, success, failure,
               [&] { return a_.compare_exchange_weak(expected, desired, success, failure); });
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return compare_exchange_weak(expected, desired, mo, failure_order(mo));
  }
  T fetch_add(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return rmw(Access::Rmw, mo, [&] { return a_.fetch_add(v, mo); });
  }
  T fetch_sub(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return rmw(Access::Rmw, mo, [&] { return a_.fetch_sub(v, mo); });
  }
  T fetch_or(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return rmw(Access::Rmw, mo, [&] { return a_.fetch_or(v, mo); });
  }
  T fetch_and(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return rmw(Access::Rmw, mo, [&] { return a_.fetch_and(v, mo); });
  }

  std::atomic<T>& raw() noexcept { return a_; }
  const std::atomic<T>& raw() const noexcept { return a_; }
  static constexpr bool is_always_lock_free = std::atomic<T>::is_always_lock_free;

 private:
  // The failure order compare_exchange(expected, desired, mo) uses.
  static constexpr std::memory_order failure_order(std::memory_order mo) noexcept {
    return mo == std::memory_order_acq_rel   ? std::memory_order_acquire
           : mo == std::memory_order_release ? std::memory_order_relaxed
                                             : mo;
  }
  // A read-modify-write reads the newest value and stores what memory then
  // holds (one thread runs at a time under the scheduler).
  template <class Op>
  T rmw(Access kind, std::memory_order mo, Op op) noexcept {
    hooks::access(kind, this);
    const T old = op();
    if (hooks::interposer() != nullptr) hooks::stored(this, old, a_.load(std::memory_order_relaxed), mo, true);
    hooks::access(kind, this, true);
    return old;
  }
  template <class Op>
  bool cas(T& expected, std::memory_order success, std::memory_order failure, Op op) noexcept {
    hooks::access(Access::Cas, this);
    const bool ok = op();
    if (hooks::interposer() == nullptr) {
    } else if (ok) {
      hooks::stored(this, expected, a_.load(std::memory_order_relaxed), success, true);
    } else {
      expected = hooks::loaded(this, expected, failure, true);
    }
    hooks::access(Access::Cas, this, true);
    return ok;
  }
  std::atomic<T> a_;
};

// A plain (non-atomic) field of shared memory: the slot header's fields that
// the slot state's release/acquire publishes. Reads and writes are by value.
template <class T>
class SharedField {
 public:
  SharedField() noexcept = default;
  SharedField(const SharedField&) = delete;
  SharedField& operator=(const SharedField&) = delete;

  operator T() const noexcept {  // NOLINT: reads like the plain field it is
    hooks::access(hooks::Access::PlainRead, this);
    hooks::plain(this, false);
    return v_;
  }
  SharedField& operator=(T v) noexcept {
    hooks::access(hooks::Access::PlainWrite, this);
    hooks::plain(this, true);
    v_ = v;
    return *this;
  }

 private:
  T v_;
};

// A fence between accesses of shared memory; the exploration's memory
// model sees it (std::atomic_thread_fence is invisible to it).
inline void shared_fence(std::memory_order mo) noexcept {
  hooks::fenced(mo);
  std::atomic_thread_fence(mo);
}

static_assert(sizeof(SharedAtomic<std::uint64_t>) == 8 && alignof(SharedAtomic<std::uint64_t>) == 8);
static_assert(sizeof(SharedAtomic<std::uint8_t>) == 1);
static_assert(sizeof(SharedField<std::uint32_t>) == 4 && alignof(SharedField<std::uint32_t>) == 4);
static_assert(std::is_standard_layout_v<SharedAtomic<std::uint32_t>>);
static_assert(std::is_standard_layout_v<SharedField<std::uint64_t>>);

}  // namespace memlink::shm
