#include "memlink/shm/mmap.hpp"

#include <gtest/gtest.h>

#if !defined(_WIN32)
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <cstring>

#include "memlink/shm/layout.hpp"
#include "test_support.hpp"

namespace memlink::shm {
namespace {

TEST(MmapSegment, CreateOpenAndContentsPersistAcrossUnmap) {
  test::TempSegmentPath path("mmap");
  {
    auto seg = MmapSegment::create(path.str(), 8192);
    ASSERT_TRUE(seg.ok()) << seg.error().message();
    EXPECT_EQ(seg->size(), 8192u);
    std::memcpy(seg->data() + 5000, "persist", 7);
    EXPECT_TRUE(seg->flush().ok());
  }
  auto again = MmapSegment::open(path.str());
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(std::memcmp(again->data() + 5000, "persist", 7), 0);
  EXPECT_EQ(again->data()[0], std::byte{0});  // zero-filled at creation
}

#if !defined(_WIN32)  // POSIX modes and users
TEST(MmapSegment, CreatedWithMode0600) {
  test::TempSegmentPath path("mode");
  ::umask(0);
  auto seg = MmapSegment::create(path.str(), 8192);
  ::umask(022);
  ASSERT_TRUE(seg.ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.str().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}
#endif

TEST(MmapSegment, PosixShmName) {
  test::TempSegmentPath name("posix", /*posix_name=*/true);
  EXPECT_TRUE(MmapSegment::is_posix_shm_name(name.str()));
  auto seg = MmapSegment::create(name.str(), 8192);
  ASSERT_TRUE(seg.ok()) << seg.error().message();
  seg->data()[100] = std::byte{42};
  auto other = MmapSegment::open(name.str());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->data()[100], std::byte{42});  // two mappings, one memory
}

TEST(MmapSegment, SizeLimits) {
  test::TempSegmentPath path("limits");
  EXPECT_EQ(MmapSegment::create(path.str(), MIN_SEGMENT_SIZE - 1).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(MmapSegment::create(path.str(), MAX_SEGMENT_SIZE + 1).code(), ErrorCode::InvalidArgument);
  EXPECT_TRUE(MmapSegment::create(path.str(), MIN_SEGMENT_SIZE).ok());
}

TEST(MmapSegment, Errors) {
  test::TempSegmentPath path("errors");
  EXPECT_EQ(MmapSegment::open(path.str()).code(), ErrorCode::NotFound);
  EXPECT_EQ(MmapSegment::create("", 8192).code(), ErrorCode::InvalidArgument);
  auto first = MmapSegment::create(path.str(), 8192);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(MmapSegment::create(path.str(), 8192).code(), ErrorCode::AlreadyExists);
  EXPECT_EQ(MmapSegment::create("/nonexistent-dir/x", 8192).code(), ErrorCode::NotFound);
}

TEST(MmapSegment, TruncatedFileIsCorrupt) {
  test::TempSegmentPath path("trunc");
  test::write_file(path.str(), std::vector<std::byte>(100));
  auto r = MmapSegment::open(path.str());
  EXPECT_EQ(r.code(), ErrorCode::CorruptSegment);
  EXPECT_NE(r.error().detail.find("segment.size"), std::string::npos);
}

#if !defined(_WIN32)
TEST(MmapSegment, PermissionDeniedForAnotherUser) {
  test::TempSegmentPath path("perm");
  ASSERT_TRUE(MmapSegment::create(path.str(), 8192).ok());
  // Mode 0600: a different user must be refused. As root, drop to nobody in a
  // child; as anyone else, remove our own permission.
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(path.str().c_str(), 0), 0);
    EXPECT_EQ(MmapSegment::open(path.str()).code(), ErrorCode::PermissionDenied);
    return;
  }
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    ::_exit(MmapSegment::open(path.str()).code() == ErrorCode::PermissionDenied ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child exit 1: open did not say PermissionDenied";
}

// SPEC M-OWNER: the mode lets us in (root, or a segment made writable for
// us), but its owner can truncate or rewrite it at any time.
TEST(MmapSegment, ASegmentAnotherUserOwnsIsRefusedUnlessAnyOwnerIsAccepted) {
  if (::geteuid() != 0) {
    // Not root: no file can be given away, but a root-owned readable file
    // shows the same decision. The owner check comes before the size check,
    // so refused says PermissionDenied and accepted gets as far as the size.
    struct stat st {};
    ASSERT_EQ(::stat("/etc/passwd", &st), 0);
    ASSERT_NE(st.st_uid, ::geteuid());
    auto refused = MmapSegment::open("/etc/passwd", MmapSegment::Access::ReadOnly);
    ASSERT_EQ(refused.code(), ErrorCode::PermissionDenied) << refused.error().message();
    EXPECT_NE(refused.error().detail.find("owned by uid " + std::to_string(st.st_uid)), std::string::npos);
    EXPECT_EQ(MmapSegment::open("/etc/passwd", MmapSegment::Access::ReadOnly, MmapSegment::Owner::Anyone).code(),
              ErrorCode::CorruptSegment);
    return;
  }
  test::TempSegmentPath path("owner");
  ASSERT_TRUE(MmapSegment::create(path.str(), 8192).ok());
  ASSERT_EQ(::chown(path.str().c_str(), 65534, 65534), 0);
  auto refused = MmapSegment::open(path.str());
  ASSERT_EQ(refused.code(), ErrorCode::PermissionDenied);
  EXPECT_NE(refused.error().detail.find("owned by uid 65534"), std::string::npos) << refused.error().detail;
  EXPECT_TRUE(MmapSegment::open(path.str(), MmapSegment::Access::ReadWrite, MmapSegment::Owner::Anyone).ok());
  EXPECT_TRUE(MmapSegment::open(path.str(), MmapSegment::Access::ReadOnly, MmapSegment::Owner::Anyone).ok());
}
#endif

}  // namespace
}  // namespace memlink::shm
