// Wait/wake primitives: round trip thread-to-thread and process-to-process,
// wake with no waiter, and wait on a value that already changed (returns at
// once), for every backend this platform has:
//   linux_futex   FUTEX_WAIT / FUTEX_WAKE without the private flag (what memlink uses)
//   futex2        futex_wait / futex_wake syscalls (Linux 6.7+), shared
//   futex_waitv   futex_waitv on one word (Linux 5.16+), woken by futex_wake
//   atomic_wait   std::atomic::wait / notify_one (libstdc++ uses private futexes:
//                 thread-to-thread only, it cannot cross processes)
//   pthread_cond  a process-shared pthread mutex + condition variable, the classic baseline
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <ctime>
#include <thread>

#include "harness.hpp"

namespace memlink::bench {
namespace {

// One word and what a condition-variable backend needs beside it, in memory
// shared by both sides.
struct alignas(64) Slot {
  std::atomic<std::uint32_t> word{0};
  pthread_mutex_t mutex;
  pthread_cond_t cond;
};

enum class Backend { LinuxFutex, Futex2, FutexWaitv, AtomicWait, PthreadCond };

#ifndef SYS_futex_wake
#define SYS_futex_wake 454
#endif
#ifndef SYS_futex_wait
#define SYS_futex_wait 455
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
constexpr unsigned kFutex2U32 = 0x02;  // FUTEX2_SIZE_U32; no FUTEX2_PRIVATE: shared
constexpr unsigned long kMatchAny = 0xFFFFFFFFUL;  // the mask must fit the 32-bit word

struct WaitV {
  std::uint64_t val;
  std::uint64_t uaddr;
  std::uint32_t flags;
  std::uint32_t reserved;
};

void wait_on(Backend b, Slot* s, std::uint32_t expected) {
  auto* w = reinterpret_cast<std::uint32_t*>(&s->word);
  switch (b) {
    case Backend::LinuxFutex: ::syscall(SYS_futex, w, FUTEX_WAIT, expected, nullptr, nullptr, 0); break;
    case Backend::Futex2: ::syscall(SYS_futex_wait, w, expected, kMatchAny, kFutex2U32, nullptr, CLOCK_MONOTONIC); break;
    case Backend::FutexWaitv: {
      WaitV v{expected, reinterpret_cast<std::uint64_t>(w), kFutex2U32, 0};
      ::syscall(SYS_futex_waitv, &v, 1, 0, nullptr, CLOCK_MONOTONIC);
      break;
    }
    case Backend::AtomicWait: s->word.wait(expected, std::memory_order_acquire); break;
    case Backend::PthreadCond:
      pthread_mutex_lock(&s->mutex);
      while (s->word.load(std::memory_order_acquire) == expected) pthread_cond_wait(&s->cond, &s->mutex);
      pthread_mutex_unlock(&s->mutex);
      break;
  }
}

void wake(Backend b, Slot* s) {
  auto* w = reinterpret_cast<std::uint32_t*>(&s->word);
  switch (b) {
    case Backend::LinuxFutex: ::syscall(SYS_futex, w, FUTEX_WAKE, 1, nullptr, nullptr, 0); break;
    case Backend::Futex2:
    case Backend::FutexWaitv: ::syscall(SYS_futex_wake, w, kMatchAny, 1, kFutex2U32); break;
    case Backend::AtomicWait: s->word.notify_one(); break;
    case Backend::PthreadCond:
      pthread_mutex_lock(&s->mutex);
      pthread_cond_signal(&s->cond);
      pthread_mutex_unlock(&s->mutex);
      break;
  }
}

bool available(Backend b, std::string& why) {
  if (b != Backend::Futex2 && b != Backend::FutexWaitv) return true;
  // A wait on a value that is not there must fail with EAGAIN; ENOSYS means
  // no such syscall, anything else a call this program gets wrong.
  std::uint32_t word = 1;
  long r;
  if (b == Backend::Futex2) {
    r = ::syscall(SYS_futex_wait, &word, 0UL, kMatchAny, kFutex2U32, nullptr, CLOCK_MONOTONIC);
  } else {
    WaitV v{0, reinterpret_cast<std::uint64_t>(&word), kFutex2U32, 0};
    r = ::syscall(SYS_futex_waitv, &v, 1, 0, nullptr, CLOCK_MONOTONIC);
  }
  if (r == -1 && errno == EAGAIN) return true;
  why = errno == ENOSYS ? "this kernel has no futex2 syscalls" : "futex2 probe failed: " + std::string(std::strerror(errno));
  return false;
}

Slot* make_slots(bool shared) {
  void* mem = shared ? shared_anonymous(2 * sizeof(Slot)) : ::operator new(2 * sizeof(Slot), std::align_val_t{64});
  auto* s = static_cast<Slot*>(mem);
  for (int i = 0; i < 2; ++i) {
    new (&s[i]) Slot{};
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&s[i].mutex, &ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&s[i].cond, &ca);
  }
  return s;
}

// The echo side: waits for slot 0 to change, copies it to slot 1, wakes.
void echo(Backend b, Slot* s) {
  std::uint32_t last = 0;
  for (;;) {
    std::uint32_t v;
    while ((v = s[0].word.load(std::memory_order_acquire)) == last) wait_on(b, &s[0], last);
    if (v == 0xFFFFFFFFu) return;
    last = v;
    s[1].word.store(v, std::memory_order_release);
    wake(b, &s[1]);
  }
}

void round_trip(benchmark::State& state, Backend b, bool across_processes) {
  add_context();
  pin_parent();
  std::string why;
  if (!available(b, why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  Slot* s = make_slots(across_processes);
  pid_t child = -1;
  std::thread helper;
  if (across_processes) {
    child = fork_child([&] { echo(b, s); });
  } else {
    helper = std::thread([&] { echo(b, s); });
  }
  Samples samples;
  std::uint32_t seq = 0;
  auto once = [&] {
    const std::uint32_t v = ++seq;
    s[0].word.store(v, std::memory_order_release);
    wake(b, &s[0]);
    std::uint32_t got;
    while ((got = s[1].word.load(std::memory_order_acquire)) != v) wait_on(b, &s[1], got);
  };
  for (int i = 0; i < 100; ++i) once();
  for (auto _ : state) {
    const std::uint64_t t0 = now_ns();
    once();
    samples.add(now_ns() - t0);
  }
  s[0].word.store(0xFFFFFFFFu, std::memory_order_release);
  wake(b, &s[0]);
  if (across_processes) {
    reap_child(child);
  } else {
    helper.join();
  }
  samples.report(state);
  state.SetItemsProcessed(state.iterations());
}

void wake_no_waiter(benchmark::State& state, Backend b) {
  add_context();
  std::string why;
  if (!available(b, why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  Slot* s = make_slots(true);
  for (auto _ : state) wake(b, &s[0]);
}

void wait_changed_value(benchmark::State& state, Backend b) {
  add_context();
  std::string why;
  if (!available(b, why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  Slot* s = make_slots(true);
  s[0].word.store(1);
  for (auto _ : state) wait_on(b, &s[0], 0);  // the word is 1: returns at once
}

}  // namespace

#define MEMLINK_FUTEX_BACKEND(name, backend)                                      \
  BENCHMARK_CAPTURE(round_trip, name##_threads, backend, false)->UseRealTime();             \
  BENCHMARK_CAPTURE(wake_no_waiter, name, backend);                                          \
  BENCHMARK_CAPTURE(wait_changed_value, name, backend);                                      \
  static_assert(true)
MEMLINK_FUTEX_BACKEND(linux_futex, Backend::LinuxFutex);
BENCHMARK_CAPTURE(round_trip, linux_futex_processes, Backend::LinuxFutex, true)->UseRealTime();
MEMLINK_FUTEX_BACKEND(futex2, Backend::Futex2);
BENCHMARK_CAPTURE(round_trip, futex2_processes, Backend::Futex2, true)->UseRealTime();
MEMLINK_FUTEX_BACKEND(futex_waitv, Backend::FutexWaitv);
BENCHMARK_CAPTURE(round_trip, futex_waitv_processes, Backend::FutexWaitv, true)->UseRealTime();
MEMLINK_FUTEX_BACKEND(atomic_wait, Backend::AtomicWait);
MEMLINK_FUTEX_BACKEND(pthread_cond, Backend::PthreadCond);
BENCHMARK_CAPTURE(round_trip, pthread_cond_processes, Backend::PthreadCond, true)->UseRealTime();

}  // namespace memlink::bench

int main(int argc, char** argv) { return memlink::bench::bench_main(argc, argv); }
