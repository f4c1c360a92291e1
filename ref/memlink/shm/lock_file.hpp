// An exclusive lock on a file that the operating system drops when its
// holder dies, however it dies: flock() on Linux and macOS, LockFileEx() on
// Windows. The daemon lock and the start lock (SPEC K-LOCK) are LockFiles.
//
// Locks belong to an open file (not to a process): a second LockFile on the
// same path in the same process is refused like one in another process.
//
// Contract: a LockFile is owned by one thread at a time; the static helpers
// may be called from anywhere.
#pragma once

#include <cstdint>
#include <string>

#include "memlink/shm/result.hpp"

namespace memlink::shm {

class LockFile {
 public:
  // Opens `path` (creating it) and locks it without waiting. The result is
  // held() unless another open file holds the lock. A lock taken on a file
  // that was removed or replaced meanwhile is dropped and retried, so a
  // held() LockFile always locks the file the path names now.
  static Result<LockFile> try_acquire(const std::string& path);

  // True if some open file (in any process, this one included) holds the
  // lock on `path`. False if there is no such file.
  static bool is_held(const std::string& path);

  // Frees the name at once, even while a holder keeps the file open: the
  // holder keeps its lock on a file nobody can open any more (that is how a
  // replaced daemon loses its lock; SPEC K-FENCE). False if nothing was there.
  static bool remove(const std::string& path);

  LockFile() = default;
  LockFile(LockFile&& other) noexcept;
  LockFile& operator=(LockFile&& other) noexcept;
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;
  ~LockFile() { release(); }

  bool held() const noexcept { return handle_ != kNone; }
  // Removes the file at path() only while it is still the file this lock
  // holds (same device and inode, looked at just before the unlink): a file
  // put in its place — another daemon's lock included — is left alone.
  bool remove_if_mine() const;
  const std::string& path() const noexcept { return path_; }
  // Closes the file, which drops the lock. Idempotent.
  void release() noexcept;

 private:
  static constexpr std::intptr_t kNone = -1;  // an fd, or a HANDLE on Windows
  LockFile(std::string path, std::intptr_t handle) : path_(std::move(path)), handle_(handle) {}
  std::string path_;
  std::intptr_t handle_ = kNone;
};

}  // namespace memlink::shm
