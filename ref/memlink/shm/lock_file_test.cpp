// Module tests of LockFile (flock / LockFileEx). Locks held by another
// process, and dropped when it is killed: ref/tests/two_process_test.cpp.
#include "memlink/shm/lock_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#if !defined(_WIN32)
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "test_support.hpp"

namespace memlink::shm {
namespace {

std::string lock_path(const test::TempSegmentPath& base) { return base.str() + ".lock"; }

TEST(LockFile, FirstOpenHoldsItSecondOpenIsRefused) {
  test::TempSegmentPath base("lockfile");
  EXPECT_FALSE(LockFile::is_held(lock_path(base)));  // no file yet
  auto first = LockFile::try_acquire(lock_path(base));
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_TRUE(first->held());
  EXPECT_TRUE(std::filesystem::exists(lock_path(base)));
  EXPECT_TRUE(LockFile::is_held(lock_path(base)));
  // Locks belong to open files: the same process is refused too.
  auto second = LockFile::try_acquire(lock_path(base));
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_FALSE(second->held());
  first->release();
  EXPECT_FALSE(first->held());
  EXPECT_FALSE(LockFile::is_held(lock_path(base)));
  auto third = LockFile::try_acquire(lock_path(base));
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->held());
}

#if !defined(_WIN32)
// A symlink planted at the lock file's name must not make the daemon create
// or lock a file elsewhere; a FIFO must not hang it; the lock file is 0600,
// so that no other user can open it and hold the lock (issue 14).
TEST(LockFile, APlantedSymlinkOrFifoIsRefusedAndTheFileIs0600) {
  test::TempSegmentPath base("locksafe");
  const std::string victim = base.str() + "-victim";
  std::filesystem::remove(victim);
  std::filesystem::create_symlink(victim, lock_path(base));
  auto through_link = LockFile::try_acquire(lock_path(base));
  EXPECT_FALSE(through_link.ok() && through_link->held()) << "locked through a planted symlink";
  EXPECT_FALSE(std::filesystem::exists(victim)) << "created the symlink's target";
  std::filesystem::remove(lock_path(base));

  ASSERT_EQ(::mkfifo(lock_path(base).c_str(), 0600), 0);
  auto fifo = LockFile::try_acquire(lock_path(base));  // used to block in open(2)
  EXPECT_FALSE(fifo.ok() && fifo->held()) << "used a FIFO as a lock file";
  EXPECT_FALSE(LockFile::is_held(lock_path(base)));
  std::filesystem::remove(lock_path(base));

  const mode_t old = ::umask(0);
  auto l = LockFile::try_acquire(lock_path(base));
  ::umask(old);
  ASSERT_TRUE(l.ok() && l->held());
  struct stat st {};
  ASSERT_EQ(::stat(lock_path(base).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}
#endif

TEST(LockFile, ProbingDoesNotTakeTheLock) {
  test::TempSegmentPath base("lockprobe");
  { auto l = LockFile::try_acquire(lock_path(base)); }  // creates the file, then drops the lock
  EXPECT_FALSE(LockFile::is_held(lock_path(base)));
  auto l = LockFile::try_acquire(lock_path(base));
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->held());
}

TEST(LockFile, MovingKeepsTheLock) {
  test::TempSegmentPath base("lockmove");
  auto l = LockFile::try_acquire(lock_path(base));
  ASSERT_TRUE(l.ok());
  LockFile moved = std::move(*l);
  EXPECT_FALSE(l->held());
  EXPECT_TRUE(moved.held());
  EXPECT_TRUE(LockFile::is_held(lock_path(base)));
  LockFile assigned;
  assigned = std::move(moved);
  EXPECT_TRUE(assigned.held());
  EXPECT_TRUE(LockFile::is_held(lock_path(base)));
}

// How a replaced daemon loses its lock (SPEC K-FENCE): the name is freed at
// once, though the old holder keeps its file open and locked.
TEST(LockFile, RemoveFreesTheNameWhileTheHolderKeepsItsFile) {
  test::TempSegmentPath base("lockremove");
  auto old_holder = LockFile::try_acquire(lock_path(base));
  ASSERT_TRUE(old_holder.ok());
  ASSERT_TRUE(old_holder->held());
  EXPECT_TRUE(LockFile::remove(lock_path(base)));
  EXPECT_FALSE(std::filesystem::exists(lock_path(base)));
  EXPECT_FALSE(LockFile::is_held(lock_path(base)));
  auto successor = LockFile::try_acquire(lock_path(base));
  ASSERT_TRUE(successor.ok()) << successor.error().message();
  EXPECT_TRUE(successor->held());
  EXPECT_TRUE(old_holder->held());  // on a file nobody can open any more
  old_holder->release();
  EXPECT_TRUE(LockFile::is_held(lock_path(base)));  // the successor's lock is unaffected
  EXPECT_FALSE(LockFile::remove(lock_path(base) + ".nothing-here"));
}

TEST(LockFile, UnopenablePathIsAnIoErrorNamingIt) {
  const std::string bad = "/nonexistent-dir-memlink/x.lock";
  auto l = LockFile::try_acquire(bad);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.code(), ErrorCode::IoError);
  EXPECT_NE(l.error().message().find(bad), std::string::npos) << l.error().message();
}

}  // namespace
}  // namespace memlink::shm
