#include "memlink/shm/lock_file.hpp"

#include <atomic>
#include <chrono>
#include <thread>
#include <utility>

#include "memlink/shm/platform.hpp"

#if defined(_WIN32)
#include <windows.h>
#else
#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace memlink::shm {

// How often try_acquire retries when the file keeps being removed or
// replaced under it before giving up (IoError).
constexpr int kAttempts = 100;

LockFile::LockFile(LockFile&& o) noexcept : path_(std::move(o.path_)), handle_(o.handle_) { o.handle_ = kNone; }

LockFile& LockFile::operator=(LockFile&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    handle_ = o.handle_;
    o.handle_ = kNone;
  }
  return *this;
}

#if !defined(_WIN32)

Result<LockFile> LockFile::try_acquire(const std::string& path) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    // O_NOFOLLOW: a symlink planted at the name must not make us create or
    // lock a file elsewhere; O_NONBLOCK: a planted FIFO must not hang us.
    // Mode 0600: a lock file others can open, others can hold (and so make
    // every daemon and cleanup think one lives).
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0) return make_error(ErrorCode::IoError, "open '" + path + "': " + platform::last_error_text());
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
      ::close(fd);
      return make_error(ErrorCode::PermissionDenied,
                        "'" + path + "' is not a regular file of ours; refusing to use it as a lock file");
    }
    if ((st.st_mode & 0777) != 0600) (void)::fchmod(fd, 0600);  // one an older version made 0644
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      ::close(fd);
      if (e == EWOULDBLOCK) return LockFile(path, kNone);
      errno = e;
      return make_error(ErrorCode::IoError, "flock '" + path + "': " + platform::last_error_text());
    }
    // The file may have been removed (a clean shutdown, or a takeover that
    // replaced it) between our open and our lock: then we locked a ghost.
    struct stat by_fd{}, by_path{};
    if (::fstat(fd, &by_fd) == 0 && ::stat(path.c_str(), &by_path) == 0 && by_fd.st_ino == by_path.st_ino &&
        by_fd.st_dev == by_path.st_dev)
      return LockFile(path, fd);
    ::close(fd);
  }
  return make_error(ErrorCode::IoError, "'" + path + "' keeps being replaced; giving up");
}

bool LockFile::is_held(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // drops our probe lock, if we got it
  return held;
}

bool LockFile::remove(const std::string& path) { return ::unlink(path.c_str()) == 0; }

bool LockFile::remove_if_mine() const {
  struct stat mine {
  }, now{};
  if (handle_ == kNone || ::fstat(static_cast<int>(handle_), &mine) != 0 || ::lstat(path_.c_str(), &now) != 0)
    return false;
  return now.st_dev == mine.st_dev && now.st_ino == mine.st_ino && ::unlink(path_.c_str()) == 0;
}

void LockFile::release() noexcept {
  if (handle_ != kNone) ::close(static_cast<int>(handle_));  // the kernel drops the lock
  handle_ = kNone;
}

#else  // _WIN32

namespace {

// Every holder opens with FILE_SHARE_DELETE, so remove() can rename the file
// away while it is open and locked.
HANDLE open_shared(const std::string& path, DWORD disposition) {
  return CreateFileA(path.c_str(), GENERIC_READ | GENERIC_WRITE,
                     FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, disposition,
                     FILE_ATTRIBUTE_NORMAL, nullptr);
}

bool lock_now(HANDLE h) {
  OVERLAPPED at{};  // byte 0
  return LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &at) != 0;
}

// The Windows counterpart of comparing st_dev and st_ino.
bool same_file(HANDLE a, const std::string& path) {
  HANDLE b = CreateFileA(path.c_str(), 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                         OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (b == INVALID_HANDLE_VALUE) return false;
  BY_HANDLE_FILE_INFORMATION ia{}, ib{};
  const bool same = GetFileInformationByHandle(a, &ia) && GetFileInformationByHandle(b, &ib) &&
                    ia.dwVolumeSerialNumber == ib.dwVolumeSerialNumber &&
                    ia.nFileIndexHigh == ib.nFileIndexHigh && ia.nFileIndexLow == ib.nFileIndexLow;
  CloseHandle(b);
  return same;
}

}  // namespace

Result<LockFile> LockFile::try_acquire(const std::string& path) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    HANDLE h = open_shared(path, OPEN_ALWAYS);
    if (h == INVALID_HANDLE_VALUE) {
      // ACCESS_DENIED also means "delete pending": a removed file that some
      // process still holds open. It goes away when that handle closes.
      if (GetLastError() == ERROR_ACCESS_DENIED && attempt + 1 < kAttempts) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      return make_error(ErrorCode::IoError, "open '" + path + "': " + platform::last_error_text());
    }
    if (!lock_now(h)) {
      const DWORD e = GetLastError();
      CloseHandle(h);
      if (e == ERROR_LOCK_VIOLATION || e == ERROR_IO_PENDING) return LockFile(path, kNone);
      SetLastError(e);
      return make_error(ErrorCode::IoError, "LockFileEx '" + path + "': " + platform::last_error_text());
    }
    if (same_file(h, path)) return LockFile(path, reinterpret_cast<std::intptr_t>(h));
    CloseHandle(h);
  }
  return make_error(ErrorCode::IoError, "'" + path + "' keeps being replaced; giving up");
}

bool LockFile::is_held(const std::string& path) {
  HANDLE h = open_shared(path, OPEN_EXISTING);
  if (h == INVALID_HANDLE_VALUE) return false;
  const bool got = lock_now(h);
  CloseHandle(h);  // drops our probe lock, if we got it
  return !got;
}

bool LockFile::remove(const std::string& path) {
  // DeleteFile alone leaves the name taken ("delete pending") until every
  // handle is closed, and a dead daemon's successor needs the name now. So
  // rename the file aside first, then delete it under its new name.
  static std::atomic<unsigned> counter{0};
  const std::string aside = path + ".removed." + std::to_string(platform::current_pid()) + "." +
                            std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  if (!MoveFileExA(path.c_str(), aside.c_str(), MOVEFILE_REPLACE_EXISTING)) return DeleteFileA(path.c_str()) != 0;
  (void)DeleteFileA(aside.c_str());
  return true;
}

bool LockFile::remove_if_mine() const { return held() && remove(path_); }  // (Windows: no inode to compare)

void LockFile::release() noexcept {
  if (handle_ != kNone) CloseHandle(reinterpret_cast<HANDLE>(handle_));  // Windows drops the lock
  handle_ = kNone;
}

#endif

}  // namespace memlink::shm
