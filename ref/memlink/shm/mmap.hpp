// A named segment of shared memory mapped into this process (SPEC M-*).
//
// A path with a '/' in it is a file (for example /dev/shm/name or any
// writable file); a bare name ("name") is POSIX shared memory (shm_open).
// On Windows a path is a file mapped with CreateFileMapping, and a bare name
// (no '/', '\\' or ':') is the file %TEMP%\memlink-<name>; on macOS a bare
// name is the file /tmp/memlink-<name> (see mmap.cpp for why).
// Segments are created with mode 0600: only the owner may attach.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "memlink/shm/result.hpp"

namespace memlink::shm {

class MmapSegment {
 public:
  enum class Access : std::uint8_t { ReadWrite, ReadOnly };

  // Creates a new segment of `size` bytes (zero-filled) and maps it.
  // InvalidArgument unless MIN_SEGMENT_SIZE <= size <= MAX_SEGMENT_SIZE;
  // AlreadyExists if something is already at the path.
  static Result<MmapSegment> create(const std::string& path, std::size_t size);

  // Whose segment open() accepts (SPEC M-OWNER). A segment another user owns
  // can be rewritten or truncated by that user at any time; refuse it unless
  // the caller trusts that user.
  enum class Owner : std::uint8_t { Me, Anyone };

  // Maps an existing segment whole. The size comes from the file; one outside
  // [MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE] is CorruptSegment ("segment.size").
  // With Owner::Me, a segment owned by another user is PermissionDenied.
  static Result<MmapSegment> open(const std::string& path, Access access = Access::ReadWrite, Owner owner = Owner::Me);

  // Removes the name (file or POSIX shm object); mappings stay valid.
  static Status remove(const std::string& path);
  // Removes this segment's name only while the name is still this segment
  // (same device and inode, looked at just before the unlink): a file put
  // in its place, another daemon's segment included, is left alone
  // (InvalidState). SPEC 9b: a process deletes only what it created.
  Status remove_if_same() const;

  // True for a bare name that means POSIX shared memory.
  static bool is_posix_shm_name(const std::string& path) noexcept;

  MmapSegment() = default;
  ~MmapSegment();
  MmapSegment(MmapSegment&& other) noexcept;
  MmapSegment& operator=(MmapSegment&& other) noexcept;
  MmapSegment(const MmapSegment&) = delete;
  MmapSegment& operator=(const MmapSegment&) = delete;

  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }
  bool writable() const noexcept { return access_ == Access::ReadWrite; }
  bool is_mapped() const noexcept { return data_ != nullptr; }

  // Writes dirty pages back to the file (msync); a no-op for POSIX shm.
  Status flush() const;

  // Current size of the backing object, to catch truncation after mapping.
  Result<std::size_t> backing_size() const;

  // SPEC M-TRUNCATE: true once an access faulted because the backing object
  // shrank under the mapping (or its filesystem could not supply a page).
  // The mapping is then private zero pages (fault_guard.hpp): nothing in it
  // is the segment any more.
  bool lost() const noexcept;
  // Compares the backing object's size with the mapping's; if it shrank,
  // gives the whole mapping up at once (fault_guard::abandon) rather than
  // page by page as accesses fault. Returns lost(). One fstat.
  bool notice_shrink() noexcept;
  // CorruptSegment "segment.size: ..." naming the path, the mapped size and
  // the size the backing object has now.
  Error lost_error() const;

  void unmap() noexcept;

 private:
  // Takes ownership of an established mapping and its OS handles.
  static MmapSegment adopt(std::byte* data, std::size_t size, std::string path, Access access,
                           intptr_t fd, intptr_t mapping) noexcept;

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::string path_;
  Access access_ = Access::ReadWrite;
  intptr_t fd_ = -1;          // POSIX fd or Windows file HANDLE
  intptr_t mapping_ = 0;      // Windows file-mapping HANDLE
  int guard_ = -1;            // fault_guard entry, or fault_guard::kNoGuard
};

}  // namespace memlink::shm
