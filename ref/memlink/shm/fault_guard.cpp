#include "memlink/shm/fault_guard.hpp"

#include <atomic>

#if !defined(_WIN32)
#include <csignal>
#include <mutex>
#include <sys/mman.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace memlink::shm::fault_guard {
namespace {

// One entry per guarded mapping. The handler reads entries without locks
// (it may run on any thread at any instant), so each field is an atomic and
// an entry is published by storing `size` last with release and retired by
// storing size 0 first.
struct Entry {
  std::atomic<std::uintptr_t> base{0};
  std::atomic<std::size_t> size{0};
  std::atomic<int> prot{0};
  std::atomic<bool> lost{false};
  std::atomic<bool> used{false};  // claimed by register_mapping (not read by the handler)
};

Entry g_entries[kMaxMappings];
std::atomic<std::uint64_t> g_absorbed{0};

#if !defined(_WIN32)
struct sigaction g_previous {};
std::once_flag g_installed;

// Maps private zero pages over [base, base + size). A raw syscall on Linux:
// sanitizer runtimes intercept mmap and must not be entered from a handler.
bool replace_with_zero_pages(std::uintptr_t base, std::size_t size, int prot) noexcept {
  void* want = reinterpret_cast<void*>(base);
#if defined(__linux__)
  const long r = ::syscall(SYS_mmap, want, size, prot, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
  return reinterpret_cast<void*>(r) == want;
#else
  return ::mmap(want, size, prot, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == want;
#endif
}

void forward(int sig, siginfo_t* info, void* context) {
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // Default action: restore it and return; the access faults again and the
  // process dies of SIGBUS, as it would have without us.
  ::signal(sig, SIG_DFL);
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  for (Entry& e : g_entries) {
    const std::size_t size = e.size.load(std::memory_order_acquire);
    if (size == 0) continue;
    const std::uintptr_t base = e.base.load(std::memory_order_relaxed);
    if (addr < base || addr - base >= size) continue;
    if (!replace_with_zero_pages(base, size, e.prot.load(std::memory_order_relaxed))) break;
    e.lost.store(true, std::memory_order_release);
    g_absorbed.fetch_add(1, std::memory_order_relaxed);
    return;  // the faulting access runs again, on the zero pages
  }
  forward(sig, info, context);
}

void install_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;  // SA_NODEFER: a fault inside the handler still kills
  ::sigaction(SIGBUS, &sa, &g_previous);
}
#endif

}  // namespace

int register_mapping(void* base, std::size_t size, bool writable) noexcept {
#if defined(_WIN32)
  (void)base, (void)size, (void)writable;
  return kNoGuard;
#else
  if (base == nullptr || size == 0) return kNoGuard;
  std::call_once(g_installed, install_handler);
  for (int i = 0; i < kMaxMappings; ++i) {
    Entry& e = g_entries[i];
    bool expected = false;
    if (!e.used.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) continue;
    e.base.store(reinterpret_cast<std::uintptr_t>(base), std::memory_order_relaxed);
    e.prot.store(PROT_READ | (writable ? PROT_WRITE : 0), std::memory_order_relaxed);
    e.lost.store(false, std::memory_order_relaxed);
    e.size.store(size, std::memory_order_release);  // published: the handler may match it now
    return i;
  }
  return kNoGuard;
#endif
}

void unregister_mapping(int guard) noexcept {
  if (guard < 0 || guard >= kMaxMappings) return;
  Entry& e = g_entries[guard];
  e.size.store(0, std::memory_order_release);  // retired before the range can be reused
  e.used.store(false, std::memory_order_release);
}

bool lost(int guard) noexcept {
  if (guard < 0 || guard >= kMaxMappings) return false;
  return g_entries[guard].lost.load(std::memory_order_acquire);
}

bool abandon(int guard) noexcept {
#if defined(_WIN32)
  (void)guard;
  return false;
#else
  if (guard < 0 || guard >= kMaxMappings) return false;
  Entry& e = g_entries[guard];
  const std::size_t size = e.size.load(std::memory_order_acquire);
  if (size == 0) return false;
  if (!e.lost.load(std::memory_order_acquire) &&
      !replace_with_zero_pages(e.base.load(std::memory_order_relaxed), size, e.prot.load(std::memory_order_relaxed)))
    return false;
  e.lost.store(true, std::memory_order_release);
  return true;
#endif
}

std::uint64_t absorbed_faults() noexcept { return g_absorbed.load(std::memory_order_relaxed); }

}  // namespace memlink::shm::fault_guard
