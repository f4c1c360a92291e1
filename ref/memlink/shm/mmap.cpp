#include "memlink/shm/mmap.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "memlink/shm/fault_guard.hpp"
#include "memlink/shm/layout.hpp"
#include "memlink/shm/platform.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif

#if defined(_WIN32)
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace memlink::shm {
namespace {

#if !defined(_WIN32)
// A fresh mapping holds no object, so AddressSanitizer must see none of it
// as poisoned. It may, in the child of a threaded fork: glibc moves the
// parent's other thread stacks into its cache there and later unmaps them
// with their stack red zones still marked in the shadow, and the next
// mapping at that address inherits the marks (ASan in GCC 12 does not clear
// shadow on munmap). Without this, the first store into a segment mapped
// there is reported as a stack overflow that never happened.
void forget_stale_poison(void* p, std::size_t size) {
#if defined(ASAN_UNPOISON_MEMORY_REGION)
  ASAN_UNPOISON_MEMORY_REGION(p, size);
#else
  (void)p;
  (void)size;
#endif
}

Error os_error(const std::string& what, const std::string& path) {
  const int e = errno;
  std::string text = what + " '" + path + "': " + platform::last_error_text();
  switch (e) {
    case ENOENT: return make_error(ErrorCode::NotFound, text);
    case EACCES:
    case EPERM: return make_error(ErrorCode::PermissionDenied, text);
    case EEXIST: return make_error(ErrorCode::AlreadyExists, text);
    default: return make_error(ErrorCode::IoError, text);
  }
}
#endif

Status check_size(std::size_t size, ErrorCode code, const std::string& path) {
  if (size < MIN_SEGMENT_SIZE || size > MAX_SEGMENT_SIZE) {
    return make_error(code, "segment.size: '" + path + "' is " + std::to_string(size) +
                                " bytes, outside [" + std::to_string(MIN_SEGMENT_SIZE) + ", " +
                                std::to_string(MAX_SEGMENT_SIZE) + "]");
  }
  return {};
}

}  // namespace

MmapSegment MmapSegment::adopt(std::byte* data, std::size_t size, std::string path, Access access,
                               intptr_t fd, intptr_t mapping) noexcept {
  MmapSegment seg;
  seg.data_ = data;
  seg.size_ = size;
  seg.path_ = std::move(path);
  seg.access_ = access;
  seg.fd_ = fd;
  seg.mapping_ = mapping;
  return seg;
}

bool MmapSegment::is_posix_shm_name(const std::string& path) noexcept {
#if defined(_WIN32)
  return !path.empty() && path.find_first_of("/\\:") == std::string::npos;
#else
  return !path.empty() && path.find('/') == std::string::npos;
#endif
}

MmapSegment::~MmapSegment() { unmap(); }

MmapSegment::MmapSegment(MmapSegment&& o) noexcept
    : data_(o.data_), size_(o.size_), path_(std::move(o.path_)), access_(o.access_),
      fd_(o.fd_), mapping_(o.mapping_), guard_(o.guard_) {
  o.data_ = nullptr;
  o.size_ = 0;
  o.fd_ = -1;
  o.mapping_ = 0;
  o.guard_ = fault_guard::kNoGuard;
}

MmapSegment& MmapSegment::operator=(MmapSegment&& o) noexcept {
  if (this != &o) {
    unmap();
    data_ = o.data_;
    size_ = o.size_;
    path_ = std::move(o.path_);
    access_ = o.access_;
    fd_ = o.fd_;
    mapping_ = o.mapping_;
    guard_ = o.guard_;
    o.data_ = nullptr;
    o.size_ = 0;
    o.fd_ = -1;
    o.mapping_ = 0;
    o.guard_ = fault_guard::kNoGuard;
  }
  return *this;
}

#if !defined(_WIN32)

namespace {

// macOS: a bare name is the file /tmp/memlink-<name>, not shm_open: macOS
// limits shm names to 31 characters and reports an shm object's size
// rounded up to a page, which the size check (SPEC M-SIZE) would refuse.
#if defined(__APPLE__)
constexpr bool kBareNamesAreFiles = true;
#else
constexpr bool kBareNamesAreFiles = false;
#endif

std::string file_of(const std::string& path) {
  return MmapSegment::is_posix_shm_name(path) ? platform::shm_directory() + "/memlink-" + path : path;
}

int open_backing(const std::string& path, int flags, mode_t mode) {
  if (MmapSegment::is_posix_shm_name(path) && !kBareNamesAreFiles)
    return ::shm_open(("/" + path).c_str(), flags, mode);
  return ::open(file_of(path).c_str(), flags | O_CLOEXEC, mode);
}

}  // namespace

Result<MmapSegment> MmapSegment::create(const std::string& path, std::size_t size) {
  if (path.empty()) return make_error(ErrorCode::InvalidArgument, "segment path is empty");
  if (auto s = check_size(size, ErrorCode::InvalidArgument, path); !s) return s.error();
  const int fd = open_backing(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return os_error("cannot create segment", path);
  MmapSegment seg = adopt(nullptr, 0, path, Access::ReadWrite, fd, 0);
  // umask may have narrowed the mode; it must not have widened it. Make it exact.
  if (::fchmod(fd, 0600) != 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    Error e = os_error("cannot size segment", path);
    seg.unmap();
    (void)remove(path);
    return e;
  }
#if defined(__linux__)
  // Reserve the pages now: on a full tmpfs a sparse file maps fine and then
  // raises SIGBUS at the first touch of a page it cannot supply.
  if (const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size)); err != 0 && err != EOPNOTSUPP && err != EINVAL) {
    errno = err;
    Error e = os_error("cannot reserve " + std::to_string(size) + " bytes for segment", path);
    seg.unmap();
    (void)remove(path);
    return e;
  }
#endif
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    Error e = os_error("cannot map segment", path);
    seg.unmap();
    (void)remove(path);
    return e;
  }
  forget_stale_poison(p, size);
  seg.data_ = static_cast<std::byte*>(p);
  seg.size_ = size;
  seg.guard_ = fault_guard::register_mapping(p, size, true);
  return seg;
}

Result<MmapSegment> MmapSegment::open(const std::string& path, Access access, Owner owner) {
  if (path.empty()) return make_error(ErrorCode::InvalidArgument, "segment path is empty");
  // O_NONBLOCK: a FIFO planted at the path must not hang the open (it
  // changes nothing for a regular file or its mapping); what is not a
  // regular file is refused below.
  const bool file = !(is_posix_shm_name(path) && !kBareNamesAreFiles);
  const int fd = open_backing(path, (access == Access::ReadWrite ? O_RDWR : O_RDONLY) | (file ? O_NONBLOCK : 0), 0);
  if (fd < 0) return os_error("cannot open segment", path);
  MmapSegment seg = adopt(nullptr, 0, path, access, fd, 0);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return os_error("cannot stat segment", path);
  if (!S_ISREG(st.st_mode))
    return make_error(ErrorCode::InvalidArgument,
                      "'" + path + "' is " + (S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISDIR(st.st_mode) ? "a directory"
                                              : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                              : S_ISSOCK(st.st_mode) ? "a socket" : "not a regular file") +
                          ", not a segment");
  if (owner == Owner::Me && st.st_uid != ::geteuid())
    return make_error(ErrorCode::PermissionDenied,
                      "'" + path + "' is owned by uid " + std::to_string(st.st_uid) + ", not by this process's user (uid " +
                          std::to_string(::geteuid()) + "): that user can rewrite or truncate it at any time; accept it "
                          "only if you trust them (EndpointOptions::allow_foreign_owner, --allow-foreign-owner; SPEC M-OWNER)");
  const auto size = static_cast<std::size_t>(st.st_size);
  if (auto s = check_size(size, ErrorCode::CorruptSegment, path); !s) return s.error();
  const int prot = access == Access::ReadWrite ? (PROT_READ | PROT_WRITE) : PROT_READ;
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return os_error("cannot map segment", path);
  forget_stale_poison(p, size);
  seg.data_ = static_cast<std::byte*>(p);
  seg.size_ = size;
  // Guarded before anything reads it: the file may shrink between fstat and
  // mmap, or any time after (SPEC M-TRUNCATE).
  seg.guard_ = fault_guard::register_mapping(p, size, access == Access::ReadWrite);
  return seg;
}

Status MmapSegment::remove(const std::string& path) {
  const int r = is_posix_shm_name(path) && !kBareNamesAreFiles ? ::shm_unlink(("/" + path).c_str())
                                                                : ::unlink(file_of(path).c_str());
  if (r != 0) return os_error("cannot remove segment", path);
  return {};
}

Status MmapSegment::remove_if_same() const {
  // A POSIX shm object is the file of its name in /dev/shm.
  const std::string file = is_posix_shm_name(path_) && !kBareNamesAreFiles ? "/dev/shm/" + path_ : file_of(path_);
  struct stat mine {
  }, now{};
  if (fd_ < 0 || ::fstat(static_cast<int>(fd_), &mine) != 0)
    return make_error(ErrorCode::InvalidState, "segment '" + path_ + "' is not open; not removing its name");
  if (::lstat(file.c_str(), &now) != 0) return os_error("cannot remove segment", path_);
  if (now.st_dev != mine.st_dev || now.st_ino != mine.st_ino)
    return make_error(ErrorCode::InvalidState,
                      "'" + path_ + "' names another file now (replaced under us): not removing it");
  return remove(path_);
}

Status MmapSegment::flush() const {
  if (data_ == nullptr) return make_error(ErrorCode::InvalidState, "segment is not mapped");
  if (::msync(data_, size_, MS_SYNC) != 0) return os_error("cannot flush segment", path_);
  return {};
}

Result<std::size_t> MmapSegment::backing_size() const {
  struct stat st {};
  if (fd_ < 0 || ::fstat(static_cast<int>(fd_), &st) != 0) return os_error("cannot stat segment", path_);
  return static_cast<std::size_t>(st.st_size);
}

void MmapSegment::unmap() noexcept {
  fault_guard::unregister_mapping(guard_);
  guard_ = fault_guard::kNoGuard;
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(static_cast<int>(fd_));
  data_ = nullptr;
  size_ = 0;
  fd_ = -1;
}

#endif

bool MmapSegment::lost() const noexcept { return fault_guard::lost(guard_); }

bool MmapSegment::notice_shrink() noexcept {
  if (data_ == nullptr || lost()) return lost();
  if (auto now = backing_size(); now && *now < size_) (void)fault_guard::abandon(guard_);
  return lost();
}

Error MmapSegment::lost_error() const {
  auto now = backing_size();
  return make_error(ErrorCode::CorruptSegment,
                    "segment.size: '" + path_ + "' was mapped with " + std::to_string(size_) + " bytes and " +
                        (now ? "is now " + std::to_string(*now) + " bytes" : std::string("cannot be measured now")) +
                        ": another process truncated it (or its filesystem could not supply a page) while this "
                        "process used it, and its contents are gone (SPEC M-TRUNCATE)");
}

#if defined(_WIN32)  // a file on disk mapped with CreateFileMapping / MapViewOfFile.

namespace {
Error win_error(const std::string& what, const std::string& path) {
  const DWORD e = GetLastError();
  std::string text = what + " '" + path + "': " + platform::last_error_text();
  if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) return make_error(ErrorCode::NotFound, text);
  if (e == ERROR_ACCESS_DENIED) return make_error(ErrorCode::PermissionDenied, text);
  if (e == ERROR_FILE_EXISTS || e == ERROR_ALREADY_EXISTS) return make_error(ErrorCode::AlreadyExists, text);
  return make_error(ErrorCode::IoError, text);
}

// Maps an open file handle; closes it on failure.
Result<std::pair<void*, HANDLE>> map_file(HANDLE f, std::size_t size, const std::string& path, bool rw) {
  const auto hi = static_cast<DWORD>(static_cast<std::uint64_t>(size) >> 32);
  const auto lo = static_cast<DWORD>(size & 0xFFFFFFFFu);
  HANDLE m = CreateFileMappingA(f, nullptr, rw ? PAGE_READWRITE : PAGE_READONLY, hi, lo, nullptr);
  if (m == nullptr) {
    Error e = win_error("cannot map segment", path);
    CloseHandle(f);
    return e;
  }
  void* p = MapViewOfFile(m, rw ? FILE_MAP_ALL_ACCESS : FILE_MAP_READ, 0, 0, size);
  if (p == nullptr) {
    Error e = win_error("cannot map segment", path);
    CloseHandle(m);
    CloseHandle(f);
    return e;
  }
  return std::pair<void*, HANDLE>{p, m};
}
// A bare name has no shm_open on Windows: it names a file in %TEMP%.
std::string file_of(const std::string& path) {
  return MmapSegment::is_posix_shm_name(path) ? platform::shm_directory() + "\\memlink-" + path : path;
}
}  // namespace

Result<MmapSegment> MmapSegment::create(const std::string& path, std::size_t size) {
  if (path.empty()) return make_error(ErrorCode::InvalidArgument, "segment path is empty");
  if (auto s = check_size(size, ErrorCode::InvalidArgument, path); !s) return s.error();
  HANDLE f = CreateFileA(file_of(path).c_str(), GENERIC_READ | GENERIC_WRITE,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, CREATE_NEW,
                         FILE_ATTRIBUTE_NORMAL, nullptr);
  if (f == INVALID_HANDLE_VALUE) return win_error("cannot create segment", path);
  auto m = map_file(f, size, path, true);  // the mapping extends the file to size
  if (!m) return m.error();
  std::memset(m->first, 0, size);
  return adopt(static_cast<std::byte*>(m->first), size, path, Access::ReadWrite,
               reinterpret_cast<intptr_t>(f), reinterpret_cast<intptr_t>(m->second));
}

Result<MmapSegment> MmapSegment::open(const std::string& path, Access access, Owner) {
  // Owner: Windows has no single owning uid to compare; the file's ACL
  // decides who may open it (SPEC M-OWNER).
  if (path.empty()) return make_error(ErrorCode::InvalidArgument, "segment path is empty");
  const bool rw = access == Access::ReadWrite;
  HANDLE f = CreateFileA(file_of(path).c_str(), rw ? (GENERIC_READ | GENERIC_WRITE) : GENERIC_READ,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                         OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (f == INVALID_HANDLE_VALUE) return win_error("cannot open segment", path);
  LARGE_INTEGER sz;
  if (!GetFileSizeEx(f, &sz)) {
    Error e = win_error("cannot stat segment", path);
    CloseHandle(f);
    return e;
  }
  const auto size = static_cast<std::size_t>(sz.QuadPart);
  if (auto s = check_size(size, ErrorCode::CorruptSegment, path); !s) {
    CloseHandle(f);
    return s.error();
  }
  auto m = map_file(f, size, path, rw);
  if (!m) return m.error();
  return adopt(static_cast<std::byte*>(m->first), size, path, access,
               reinterpret_cast<intptr_t>(f), reinterpret_cast<intptr_t>(m->second));
}

Status MmapSegment::remove(const std::string& path) {
  // Like unlink: the name is free at once, mappings stay valid. DeleteFile
  // alone leaves it taken ("delete pending") while anyone maps the file, so
  // rename the file aside first, then delete it under its new name.
  static std::atomic<unsigned> counter{0};
  const std::string file = file_of(path);
  const std::string aside = file + ".removed." + std::to_string(platform::current_pid()) + "." +
                            std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  if (!MoveFileExA(file.c_str(), aside.c_str(), 0)) return win_error("cannot remove segment", path);
  (void)DeleteFileA(aside.c_str());
  return {};
}

Status MmapSegment::remove_if_same() const { return remove(path_); }  // (Windows: no inode to compare)

Status MmapSegment::flush() const {
  if (data_ == nullptr) return make_error(ErrorCode::InvalidState, "segment is not mapped");
  if (!FlushViewOfFile(data_, size_)) return win_error("cannot flush segment", path_);
  return {};
}

Result<std::size_t> MmapSegment::backing_size() const {
  LARGE_INTEGER sz;
  if (!GetFileSizeEx(reinterpret_cast<HANDLE>(fd_), &sz)) return win_error("cannot stat segment", path_);
  return static_cast<std::size_t>(sz.QuadPart);
}

void MmapSegment::unmap() noexcept {
  if (data_ != nullptr) UnmapViewOfFile(data_);
  if (mapping_ != 0) CloseHandle(reinterpret_cast<HANDLE>(mapping_));
  if (fd_ != -1) CloseHandle(reinterpret_cast<HANDLE>(fd_));
  data_ = nullptr;
  size_ = 0;
  fd_ = -1;
  mapping_ = 0;
}

#endif

}  // namespace memlink::shm
