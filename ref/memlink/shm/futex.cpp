#include "memlink/shm/futex.hpp"

#include <cerrno>
#include <climits>
#include <cstdio>

#include "memlink/shm/platform.hpp"
#include "memlink/shm/testing_hooks.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#elif defined(__APPLE__)
#include <errno.h>
extern "C" int __ulock_wait(uint32_t operation, void* addr, uint64_t value, uint32_t timeout_us);
extern "C" int __ulock_wake(uint32_t operation, void* addr, uint64_t wake_value);
#elif defined(_WIN32)
#include <windows.h>
#endif

namespace memlink::shm {

Futex::Futex(std::atomic<std::uint32_t>* word, std::string name) noexcept
    : word_(word), name_(std::move(name)) {
#if defined(_WIN32)
  // Kernel object names may not contain '\\' after the namespace prefix.
  std::string key = name_;
  for (char& c : key) {
    if (c == '/' || c == '\\' || c == ':') c = '_';
  }
  // Object names are limited to MAX_PATH characters: a long key (a deep
  // segment path) is replaced by its 64-bit FNV-1a hash.
  if (key.size() > 200) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    key = std::string("h") + hex;
  }
  const std::string n = "Local\\memlink-futex-" + key;
  // No name: a futex for the threads of this process only.
  semaphore_ = CreateSemaphoreA(nullptr, 0, LONG_MAX, name_.empty() ? nullptr : n.c_str());
#endif
}

Futex::~Futex() {
#if defined(_WIN32)
  if (semaphore_ != nullptr) CloseHandle(static_cast<HANDLE>(semaphore_));
#endif
}

Futex::Futex(Futex&& other) noexcept
    : word_(other.word_), name_(std::move(other.name_)), semaphore_(other.semaphore_) {
  other.semaphore_ = nullptr;
}

Futex& Futex::operator=(Futex&& other) noexcept {
  if (this != &other) {
#if defined(_WIN32)
    if (semaphore_ != nullptr) CloseHandle(static_cast<HANDLE>(semaphore_));
#endif
    word_ = other.word_;
    name_ = std::move(other.name_);
    semaphore_ = other.semaphore_;
    other.semaphore_ = nullptr;
  }
  return *this;
}

#if defined(__linux__)

const char* Futex::backend() noexcept { return "linux-futex"; }

Status Futex::os_wait(std::uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) const {
  if (word_ == nullptr) return make_error(ErrorCode::InvalidArgument, "futex word is null");
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout) {
    if (timeout->count() < 0) return make_error(ErrorCode::InvalidArgument, "negative timeout");
    ts.tv_sec = static_cast<time_t>(timeout->count() / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout->count() % 1000000000);
    tsp = &ts;
  }
  // FUTEX_WAIT, not FUTEX_WAIT_PRIVATE: the key is the physical page, so a
  // waker in another process that maps the same segment finds us.
  const long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word_), FUTEX_WAIT, expected, tsp, nullptr, 0);
  if (r == 0) return {};
  switch (errno) {
    case EAGAIN: return {};  // the word already differed
    case ETIMEDOUT: return fixed_error(ErrorCode::Timeout, "futex wait timed out");
    case EINTR: return make_error(ErrorCode::Interrupted, "futex wait interrupted by a signal");
    case EINVAL: return make_error(ErrorCode::InvalidArgument, "futex wait: " + platform::last_error_text());
    case ENOSYS: return make_error(ErrorCode::Unsupported, "futex syscall not available");
    default: return make_error(ErrorCode::IoError, "futex wait: " + platform::last_error_text());
  }
}

Result<int> Futex::os_wake(std::uint32_t count) const {
  if (word_ == nullptr) return make_error(ErrorCode::InvalidArgument, "futex word is null");
  if (count == 0) return 0;
  const int n = count > static_cast<std::uint32_t>(INT_MAX) ? INT_MAX : static_cast<int>(count);
  const long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word_), FUTEX_WAKE, n, nullptr, nullptr, 0);
  if (r >= 0) return static_cast<int>(r);
  if (errno == ENOSYS) return make_error(ErrorCode::Unsupported, "futex syscall not available");
  return make_error(ErrorCode::InvalidArgument, "futex wake: " + platform::last_error_text());
}

#elif defined(__APPLE__)

namespace {
constexpr std::uint32_t kUlCompareAndWaitShared = 3;  // UL_COMPARE_AND_WAIT_SHARED
constexpr std::uint32_t kUlfWakeAll = 0x00000100;     // ULF_WAKE_ALL
constexpr std::uint32_t kUlfNoErrno = 0x01000000;     // ULF_NO_ERRNO
}  // namespace

const char* Futex::backend() noexcept { return "macos-ulock-shared"; }

Status Futex::os_wait(std::uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) const {
  if (word_ == nullptr) return make_error(ErrorCode::InvalidArgument, "futex word is null");
  std::uint32_t us = 0;  // 0 = forever for ulock
  if (timeout) {
    if (timeout->count() < 0) return make_error(ErrorCode::InvalidArgument, "negative timeout");
    const auto t = (timeout->count() + 999) / 1000;
    us = t <= 0 ? 1 : (t > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(t));
  }
  const int r = __ulock_wait(kUlCompareAndWaitShared | kUlfNoErrno, word_, expected, us);
  if (r >= 0) return {};
  switch (-r) {
    case ETIMEDOUT: return fixed_error(ErrorCode::Timeout, "ulock wait timed out");
    case EINTR: return make_error(ErrorCode::Interrupted, "ulock wait interrupted");
    case EFAULT: return {};  // page not yet faulted in; caller re-checks
    default: return make_error(ErrorCode::InvalidArgument, "ulock wait error " + std::to_string(-r));
  }
}

Result<int> Futex::os_wake(std::uint32_t count) const {
  if (word_ == nullptr) return make_error(ErrorCode::InvalidArgument, "futex word is null");
  if (count == 0) return 0;
  // ulock wakes one or all; more than one asked for means all.
  const int r = __ulock_wake(kUlCompareAndWaitShared | kUlfNoErrno | (count > 1 ? kUlfWakeAll : 0), word_, 0);
  if (r >= 0 || r == -ENOENT) return 0;  // ENOENT: nobody was waiting
  return make_error(ErrorCode::InvalidArgument, "ulock wake error " + std::to_string(-r));
}

#elif defined(_WIN32)

const char* Futex::backend() noexcept { return "windows-named-semaphore"; }

Status Futex::os_wait(std::uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) const {
  if (word_ == nullptr || semaphore_ == nullptr)
    return make_error(ErrorCode::InvalidArgument, "futex word is null or its semaphore missing");
  if (timeout && timeout->count() < 0) return make_error(ErrorCode::InvalidArgument, "negative timeout");
  if (word_->load(std::memory_order_acquire) != expected) return {};
  DWORD ms = INFINITE;
  if (timeout) {  // rounded up: never wake before the caller's deadline
    const auto up = (timeout->count() + 999999) / 1000000;
    ms = up >= static_cast<long long>(INFINITE) ? INFINITE - 1 : static_cast<DWORD>(up);
  }
  const DWORD r = WaitForSingleObject(static_cast<HANDLE>(semaphore_), ms);
  if (r == WAIT_OBJECT_0) return {};
  if (r == WAIT_TIMEOUT) return fixed_error(ErrorCode::Timeout, "futex wait timed out");
  return make_error(ErrorCode::IoError, "futex wait: " + platform::last_error_text());
}

Result<int> Futex::os_wake(std::uint32_t count) const {
  if (word_ == nullptr || semaphore_ == nullptr)
    return make_error(ErrorCode::InvalidArgument, "futex word is null or its semaphore missing");
  if (count == 0) return 0;
  const LONG n = count > 0x7FFFFFFFu ? 0x7FFFFFFF : static_cast<LONG>(count);
  // Fails only at the maximum count (permits nobody took, ~2^31): then the
  // sleepers have plenty already.
  (void)ReleaseSemaphore(static_cast<HANDLE>(semaphore_), n, nullptr);
  return 0;
}

#else

const char* Futex::backend() noexcept { return "unsupported"; }
Status Futex::os_wait(std::uint32_t, std::optional<std::chrono::nanoseconds>) const {
  return make_error(ErrorCode::Unsupported, "no cross-process futex on this platform");
}
Result<int> Futex::os_wake(std::uint32_t) const { return make_error(ErrorCode::Unsupported, "no futex"); }

#endif

// The test build's exploration scheduler replaces the system call with a
// virtual futex of the same semantics (testing_hooks.hpp); the key names
// the word across mappings.
Status Futex::wait(std::uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) const {
  if (hooks::Interposer* i = hooks::interposer()) {
    if (word_ == nullptr) return make_error(ErrorCode::InvalidArgument, "futex word is null");
    if (timeout && timeout->count() < 0) return make_error(ErrorCode::InvalidArgument, "negative timeout");
    if (i->futex_wait(key(), word_, expected, timeout) == hooks::WaitResult::TimedOut)
      return fixed_error(ErrorCode::Timeout, "futex wait timed out");
    return {};
  }
  return os_wait(expected, timeout);
}

Result<int> Futex::wake(std::uint32_t count) const {
  if (hooks::Interposer* i = hooks::interposer()) {
    if (word_ == nullptr) return make_error(ErrorCode::InvalidArgument, "futex word is null");
    return count == 0 ? 0 : i->futex_wake(key(), count);
  }
  return os_wake(count);
}

std::string Futex::key() const {
  return name_.empty() ? std::to_string(reinterpret_cast<std::uintptr_t>(word_)) : name_;
}

}  // namespace memlink::shm
