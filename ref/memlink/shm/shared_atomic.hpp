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
    return a_.load(mo);
  }
  void store(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    hooks::access(Access::Store, this);
    a_.store(v, mo);
    hooks::access(Access::Store, this, true);
  }
  T exchange(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    hooks::access(Access::Exchange, this);
    const T old = a_.exchange(v, mo);
    hooks::access(Access::Exchange, this, true);
    return old;
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure) noexcept {
    hooks::access(Access::Cas, this);
    const bool ok = a_.compare_exchange_strong(expected, desired, success, failure);
    hooks::access(Access::Cas, this, true);
    return ok;
  }
  bool compare_exchange_strong(T& expected, T desired,
                               std::memory_order mo = std::memory_order_seq_cst) noexcept {
    hooks::access(Access::Cas, this);
    const bool ok = a_.compare_exchange_strong(expected, desired, mo);
    hooks::access(Access::Cas, this, true);
    return ok;
  }
  // Weak CAS may fail spuriously; callers loop. (Under the scheduler it
  // behaves like the strong one.)
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure) noexcept {
    hooks::access(Access::Cas, this);
    const bool ok = a_.compare_exchange_weak(expected, desired, success, failure);
    hooks::access(Access::Cas, this, true);
    return ok;
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    hooks::access(Access::Cas, this);
    const bool ok = a_.compare_exchange_weak(expected, desired, mo);
    hooks::access(Access::Cas, this, true);
    return ok;
  }
  T fetch_add(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept { return rmw(mo, [&] { return a_.fetch_add(v, mo); }); }
  T fetch_sub(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept { return rmw(mo, [&] { return a_.fetch_sub(v, mo); }); }
  T fetch_or(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept { return rmw(mo, [&] { return a_.fetch_or(v, mo); }); }
  T fetch_and(T v, std::memory_order mo = std::memory_order_seq_cst) noexcept { return rmw(mo, [&] { return a_.fetch_and(v, mo); }); }

  std::atomic<T>& raw() noexcept { return a_; }
  const std::atomic<T>& raw() const noexcept { return a_; }
  static constexpr bool is_always_lock_free = std::atomic<T>::is_always_lock_free;

 private:
  template <class Op>
  T rmw(std::memory_order, Op op) noexcept {
    hooks::access(Access::Rmw, this);
    const T old = op();
    hooks::access(Access::Rmw, this, true);
    return old;
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
    return v_;
  }
  SharedField& operator=(T v) noexcept {
    hooks::access(hooks::Access::PlainWrite, this);
    v_ = v;
    return *this;
  }

 private:
  T v_;
};

static_assert(sizeof(SharedAtomic<std::uint64_t>) == 8 && alignof(SharedAtomic<std::uint64_t>) == 8);
static_assert(sizeof(SharedAtomic<std::uint8_t>) == 1);
static_assert(sizeof(SharedField<std::uint32_t>) == 4 && alignof(SharedField<std::uint32_t>) == 4);
static_assert(std::is_standard_layout_v<SharedAtomic<std::uint32_t>>);
static_assert(std::is_standard_layout_v<SharedField<std::uint64_t>>);

}  // namespace memlink::shm
