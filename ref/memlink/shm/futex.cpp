#include "memlink/shm/futex.hpp"

#include <cerrno>
#include <climits>

#include "memlink/shm/platform.hpp"

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

// MEMLINK_FAULT_PRIVATE_FUTEX (a test-only build of the library) brings back
// the crate's defect, a futex that never wakes another process, so that the
// two-process futex test can show it catches it.
#if defined(MEMLINK_FAULT_PRIVATE_FUTEX)
constexpr bool kPrivateFutex = true;
#else
constexpr bool kPrivateFutex = false;
#endif

Futex::Futex(std::atomic<std::uint32_t>* word, std::string name) noexcept
    : word_(word), name_(std::move(name)) {
#if defined(_WIN32)
  // Auto-reset: SetEvent releases one sleeper (or the next one to sleep).
  // Kernel object names may not contain '\\' after the namespace prefix.
  std::string key = name_;
  for (char& c : key) {
    if (c == '/' || c == '\\' || c == ':') c = '_';
  }
  const std::string n = "Local\\memlink-futex-" + key;
  // No name: a futex for the threads of this process only.
  event_ = CreateEventA(nullptr, FALSE, FALSE, name_.empty() || kPrivateFutex ? nullptr : n.c_str());
#endif
}

Futex::~Futex() {
#if defined(_WIN32)
  if (event_ != nullptr) CloseHandle(static_cast<HANDLE>(event_));
#endif
}

Futex::Futex(Futex&& other) noexcept
    : word_(other.word_), name_(std::move(other.name_)), event_(other.event_) {
  other.event_ = nullptr;
}

Futex& Futex::operator=(Futex&& other) noexcept {
  if (this != &other) {
#if defined(_WIN32)
    if (event_ != nullptr) CloseHandle(static_cast<HANDLE>(event_));
#endif
    word_ = other.word_;
    name_ = std::move(other.name_);
    event_ = other.event_;
    other.event_ = nullptr;
  }
  return *this;
}

#if defined(__linux__)

const char* Futex::backend() noexcept { return "linux-futex"; }

Status Futex::wait(std::uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) const {
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
  const long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word_),
                           kPrivateFutex ? FUTEX_WAIT_PRIVATE : FUTEX_WAIT, expected, tsp, nullptr, 0);
  if (r == 0) return {};
  switch (errno) {
    case EAGAIN: return {};  // the word already differed
    case ETIMEDOUT: return make_error(ErrorCode::Timeout, "futex wait timed out");
    case EINTR: return make_error(ErrorCode::Interrupted, "futex wait interrupted by a signal");
    case EINVAL: return make_error(ErrorCode::InvalidArgument, "futex wait: " + platform::last_error_text());
    case ENOSYS: return make_error(ErrorCode::Unsupported, "futex syscall not available");
    default: return make_error(ErrorCode::IoError, "futex wait: " + platform::last_error_text());
  }
}

static Result<int> linux_wake(std::atomic<std::uint32_t>* word, int count) {
  if (word == nullptr) return make_error(ErrorCode::InvalidArgument, "futex word is null");
  const long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word),
                           kPrivateFutex ? FUTEX_WAKE_PRIVATE : FUTEX_WAKE, count, nullptr, nullptr, 0);
  if (r >= 0) return static_cast<int>(r);
  if (errno == ENOSYS) return make_error(ErrorCode::Unsupported, "futex syscall not available");
  return make_error(ErrorCode::InvalidArgument, "futex wake: " + platform::last_error_text());
}

Result<int> Futex::wake_one() const { return linux_wake(word_, 1); }
Result<int> Futex::wake_all() const { return linux_wake(word_, INT_MAX); }

#elif defined(__APPLE__)

namespace {
constexpr std::uint32_t kUlCompareAndWaitShared = 3;  // UL_COMPARE_AND_WAIT_SHARED
constexpr std::uint32_t kUlfWakeAll = 0x00000100;     // ULF_WAKE_ALL
constexpr std::uint32_t kUlfNoErrno = 0x01000000;     // ULF_NO_ERRNO
}  // namespace

const char* Futex::backend() noexcept { return "macos-ulock-shared"; }

Status Futex::wait(std::uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) const {
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
    case ETIMEDOUT: return make_error(ErrorCode::Timeout, "ulock wait timed out");
    case EINTR: return make_error(ErrorCode::Interrupted, "ulock wait interrupted");
    case EFAULT: return {};  // page not yet faulted in; caller re-checks
    default: return make_error(ErrorCode::InvalidArgument, "ulock wait error " + std::to_string(-r));
  }
}

static Result<int> mac_wake(std::atomic<std::uint32_t>* word, std::uint32_t flags) {
  if (word == nullptr) return make_error(ErrorCode::InvalidArgument, "futex word is null");
  const int r = __ulock_wake(kUlCompareAndWaitShared | kUlfNoErrno | flags, word, 0);
  if (r >= 0 || r == -ENOENT) return 0;  // ENOENT: nobody was waiting
  return make_error(ErrorCode::InvalidArgument, "ulock wake error " + std::to_string(-r));
}

Result<int> Futex::wake_one() const { return mac_wake(word_, 0); }
Result<int> Futex::wake_all() const { return mac_wake(word_, kUlfWakeAll); }

#elif defined(_WIN32)

const char* Futex::backend() noexcept { return "windows-named-event"; }

Status Futex::wait(std::uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) const {
  if (word_ == nullptr || event_ == nullptr)
    return make_error(ErrorCode::InvalidArgument, "futex word is null or its event missing");
  if (timeout && timeout->count() < 0) return make_error(ErrorCode::InvalidArgument, "negative timeout");
  const std::uint64_t start = platform::monotonic_ns();
  for (;;) {
    if (word_->load(std::memory_order_acquire) != expected) return {};
    DWORD slice = 1;
    if (timeout) {
      const std::uint64_t spent = platform::monotonic_ns() - start;
      if (spent >= static_cast<std::uint64_t>(timeout->count()))
        return make_error(ErrorCode::Timeout, "futex wait timed out");
    }
    const DWORD r = WaitForSingleObject(static_cast<HANDLE>(event_), slice);
    if (r == WAIT_OBJECT_0) return {};
    if (r != WAIT_TIMEOUT) return make_error(ErrorCode::IoError, platform::last_error_text());
  }
}

Result<int> Futex::wake_one() const {
  if (word_ == nullptr || event_ == nullptr)
    return make_error(ErrorCode::InvalidArgument, "futex word is null or its event missing");
  SetEvent(static_cast<HANDLE>(event_));
  return 0;
}

// Sleepers poll in 1 ms slices, so waking one and letting the rest see the
// changed word on their next slice wakes them all within a slice.
Result<int> Futex::wake_all() const { return wake_one(); }

#else

const char* Futex::backend() noexcept { return "unsupported"; }
Status Futex::wait(std::uint32_t, std::optional<std::chrono::nanoseconds>) const {
  return make_error(ErrorCode::Unsupported, "no cross-process futex on this platform");
}
Result<int> Futex::wake_one() const { return make_error(ErrorCode::Unsupported, "no futex"); }
Result<int> Futex::wake_all() const { return make_error(ErrorCode::Unsupported, "no futex"); }

#endif

}  // namespace memlink::shm
