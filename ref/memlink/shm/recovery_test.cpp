// Module tests of recovery (SPEC K-*): tail recovery of slots left by dead
// processes, the fence, and the daemon lock and PID file. Crash points and
// killed processes are in ref/tests/recovery_process_test.cpp.
#include "memlink/shm/recovery.hpp"

#include <gtest/gtest.h>

#if !defined(_WIN32)
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "memlink/shm/platform.hpp"
#include "memlink/shm/transport.hpp"
#include "test_support.hpp"

namespace memlink::shm {
namespace {

using namespace std::chrono_literals;

// The pid of a process that has exited and been reaped.
std::uint32_t dead_pid() { return test::pid_of_exited_process(); }

RingHeader& header_of(RingBuffer& ring) {
  return *reinterpret_cast<RingHeader*>(reinterpret_cast<std::byte*>(&ring.slot_header(0)) - RING_HEADER_SIZE);
}

// Makes the slot at `index` look like `pid` holds it.
void left_by(RingBuffer& ring, std::uint32_t index, std::uint32_t pid) { poke_owner(ring.slot_header(index), pid); }

RecoveryPolicy quick_policy() {
  RecoveryPolicy p;
  p.stale_after = 0ns;
  p.claim_timeout = 0ns;
  return p;
}

std::string read_one(RingBuffer& ring, std::uint64_t* seq = nullptr) {
  std::vector<std::byte> buf(ring.slot_size());
  auto r = ring.read_slot(buf);
  if (!r) return "<" + std::string(to_string(r.code())) + ">";
  if (seq != nullptr) *seq = r->sequence;
  return std::string(reinterpret_cast<const char*>(buf.data()), r->length);
}

TEST(TailRecovery, WritingByADeadOwnerIsReclaimedAndNeverDelivered) {  // K-WRITING
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  auto id = ring->claim();  // a writer that dies in Writing
  ASSERT_TRUE(id.ok());
  ring->fill(*id, as_bytes("half-written"));
  left_by(*ring, id->index, dead_pid());
  ASSERT_TRUE(ring->write_slot(as_bytes("after")).ok());
  EXPECT_EQ(read_one(*ring), "<Empty>");  // stuck behind the dead writer

  TailRecovery tails;
  const RecoveryReport r = tails.run(*ring, quick_policy());
  EXPECT_EQ(r.reclaimed_writing, 1u);
  EXPECT_EQ(r.total(), 1u);
  EXPECT_EQ(ring->reclaimed(), 1u);
  EXPECT_EQ(read_one(*ring), "after");
  EXPECT_EQ(read_one(*ring), "<Empty>");
  // The slot is reusable: a full lap of writes goes through.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ring->write_slot(as_bytes("lap")).ok()) << i;
}

TEST(TailRecovery, ReadingByADeadOwnerIsDeliveredAgainWithItsSequence) {  // K-READING
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  std::vector<std::byte> buf(64);
  for (const char* before : {"a", "b"}) {  // so that the message below is at position 2
    ASSERT_TRUE(ring->write_slot(as_bytes(before)).ok());
    ASSERT_TRUE(ring->read_slot(buf).ok());
  }
  ASSERT_TRUE(ring->write_slot(as_bytes("once")).ok());
  auto taken = ring->take(buf);  // a consumer that dies while Reading
  ASSERT_TRUE(taken.ok());
  left_by(*ring, taken->slot.index, dead_pid());
  EXPECT_EQ(read_one(*ring), "<InvalidState>");

  TailRecovery tails;
  EXPECT_EQ(tails.run(*ring, quick_policy()).requeued_reading, 1u);
  std::uint64_t seq = 0;
  EXPECT_EQ(read_one(*ring, &seq), "once");
  EXPECT_EQ(taken->sequence, 2u);  // T-SEQ: its position
  EXPECT_EQ(seq, 2u);  // same sequence: a receiver can drop the duplicate
  EXPECT_EQ(read_one(*ring), "<Empty>");
}

TEST(TailRecovery, DoneByADeadOwnerIsReleasedNotDeliveredAgain) {  // K-DONE
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  ASSERT_TRUE(ring->write_slot(as_bytes("processed")).ok());
  ASSERT_TRUE(ring->write_slot(as_bytes("next")).ok());
  std::vector<std::byte> buf(64);
  auto taken = ring->take(buf);
  ASSERT_TRUE(taken.ok());
  ring->complete(taken->slot);  // dies after Done, before the release
  left_by(*ring, taken->slot.index, dead_pid());

  TailRecovery tails;
  EXPECT_EQ(tails.run(*ring, quick_policy()).released_done, 1u);
  EXPECT_EQ(read_one(*ring), "next");
}

TEST(TailRecovery, LeavesFreshSlotsLiveOwnersAndItselfAlone) {  // K-STALE
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  auto id = ring->claim();
  ASSERT_TRUE(id.ok());
  TailRecovery tails;
  // Our own Writing slot: never stale.
  EXPECT_EQ(tails.run(*ring, quick_policy()).total(), 0u);
  // A dead owner's slot that entered Writing just now: too young.
  poke_owner(ring->slot_header(id->index), dead_pid());
  RecoveryPolicy patient = quick_policy();
  patient.stale_after = 1h;
  EXPECT_EQ(tails.run(*ring, patient).total(), 0u);
  // Held long enough, but the owner is alive (the policy says so): kept.
  RecoveryPolicy alive = quick_policy();
  alive.owner_alive = [](std::uint32_t) { return true; };
  EXPECT_EQ(tails.run(*ring, alive).total(), 0u);
  // Dead and old: reclaimed.
  EXPECT_EQ(tails.run(*ring, quick_policy()).reclaimed_writing, 1u);
}

TEST(TailRecovery, AClaimedPositionThatStaysEmptyIsReclaimedAfterTheClaimTimeout) {  // K-CLAIMED
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  header_of(*ring).head.fetch_add(1);  // a writer that died right after claiming
  ASSERT_TRUE(ring->write_slot(as_bytes("behind")).ok());
  TailRecovery tails;
  RecoveryPolicy p = quick_policy();
  p.claim_timeout = 1h;
  EXPECT_EQ(tails.run(*ring, p).total(), 0u);  // starts timing
  EXPECT_EQ(tails.run(*ring, p).total(), 0u);  // not yet
  EXPECT_EQ(tails.run(*ring, quick_policy()).reclaimed_claimed, 1u);
  EXPECT_EQ(read_one(*ring), "behind");
}

// K-CLAIMED in two phases: recovery reads head only after it has watched an
// Empty word for claim_timeout, and then times the claim from when it saw
// it. An unclaimed position is never reclaimed, and a claim seen late gets
// its full claim_timeout. (Only lower bounds on time are asserted.)
TEST(TailRecovery, AClaimSeenLateStillGetsItsWholeTimeoutAndAnUnclaimedTailIsLeftAlone) {  // K-CLAIMED
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  TailRecovery tails;
  RecoveryPolicy p = quick_policy();
  p.claim_timeout = std::chrono::milliseconds(50);
  EXPECT_EQ(tails.run(*ring, p).total(), 0u);  // starts watching the unclaimed Empty word
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(tails.run(*ring, p).total(), 0u) << "reclaimed a position nobody claimed";
  EXPECT_EQ(ring->tail(), 0u);
  EXPECT_TRUE(ring->positions_consistent());
  header_of(*ring).head.fetch_add(1);  // now a writer claims it and dies
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(tails.run(*ring, p).total(), 0u) << "a claim first seen now was timed from before it";
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(tails.run(*ring, p).reclaimed_claimed, 1u);
  EXPECT_EQ(ring->tail(), 1u);
  ASSERT_TRUE(ring->write_slot(as_bytes("next")).ok());
  EXPECT_EQ(read_one(*ring), "next");
}

// K-STALE times a Writing word from the first pass that saw that word at
// that tail: a watch that began on an earlier word (here the Empty word the
// idle consumer watched before the writer came) must not count. Only lower
// bounds on time are asserted: the first sight of a word is held for 0 ns.
TEST(TailRecovery, AWritingWordIsTimedFromItsFirstSightNotFromTheWordBefore) {  // K-STALE
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  TailRecovery tails;
  RecoveryPolicy p;
  p.stale_after = std::chrono::milliseconds(50);
  p.claim_timeout = 1h;  // the Empty word's watch runs on undisturbed
  p.owner_alive = [](std::uint32_t) { return false; };
  EXPECT_EQ(tails.run(*ring, p).total(), 0u);  // starts watching the Empty word
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(tails.run(*ring, p).total(), 0u);
  auto id = ring->claim();  // a writer enters Writing, then dies
  ASSERT_TRUE(id.ok());
  left_by(*ring, id->index, dead_pid());
  EXPECT_EQ(tails.run(*ring, p).total(), 0u) << "a Writing word first seen now was timed from the Empty word before it";
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(tails.run(*ring, p).reclaimed_writing, 1u);
  // The same at the next tail: the watch restarts when the tail moves.
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(tails.run(*ring, p).total(), 0u);  // Empty at tail 1, watched 60 ms
  auto next = ring->claim();
  ASSERT_TRUE(next.ok());
  left_by(*ring, next->index, dead_pid());
  EXPECT_EQ(tails.run(*ring, p).total(), 0u) << "the watch did not restart at the new tail";
}

// (The writer's side of K-CLAIMED, a writer stalled past the claim timeout
// that must give its slot back, goes through the real claim() held at its
// pause point: PausePoint.* in ref/tests/recovery_process_test.cpp, which
// links the test build.)

TEST(TailRecovery, IsIdempotent) {  // K-IDEMPOTENT
  auto ring = RingBuffer::create_owned(4, 64);
  ASSERT_TRUE(ring.ok());
  ASSERT_TRUE(ring->write_slot(as_bytes("a")).ok());
  std::vector<std::byte> buf(64);
  auto taken = ring->take(buf);
  ASSERT_TRUE(taken.ok());
  left_by(*ring, taken->slot.index, dead_pid());
  TailRecovery first, second;
  EXPECT_EQ(first.run(*ring, quick_policy()).requeued_reading, 1u);
  EXPECT_EQ(second.run(*ring, quick_policy()).total(), 0u);  // a re-run finds nothing to do
  EXPECT_EQ(read_one(*ring), "a");
}

TEST(Fence, AConsumerWhoseEpochEndedGivesTheSlotBack) {  // K-FENCE, for take and take_view
  for (const bool view : {false, true}) {
    SCOPED_TRACE(view ? "take_view" : "take");
    auto ring = RingBuffer::create_owned(4, 64);
    ASSERT_TRUE(ring.ok());
    ASSERT_TRUE(ring->write_slot(as_bytes("m")).ok());
    SharedAtomic<std::uint64_t> epoch;
    epoch.store(2);
    std::vector<std::byte> buf(64);
    auto take = [&](const Fence& f) -> Status {
      if (view) {
        auto r = ring->take_view(&f);
        return r.ok() ? Status{} : Status{r.error()};
      }
      auto r = ring->take(buf, &f);
      return r.ok() ? Status{} : Status{r.error()};
    };
    const Status r = take(Fence{&epoch, 1});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.code(), ErrorCode::Disconnected);
    EXPECT_NE(r.error().detail.find("fenced"), std::string::npos) << r.error().detail;
    EXPECT_EQ(load_state(ring->slot_header(0)), static_cast<std::uint8_t>(SlotState::Ready));
    EXPECT_TRUE(take(Fence{&epoch, 2}).ok());
  }
}

// ----------------------------------------------------------- RecoveryManager

TEST(RecoveryManager, TheLockNotThePidDecidesWhoIsAlive) {  // K-LOCK
  test::TempSegmentPath path("rmlock");
  RecoveryManager first(path.str());
  auto start = first.register_daemon(1s);
  ASSERT_TRUE(start.ok()) << start.error().message();
  EXPECT_EQ(*start, DaemonStart::Fresh);
  first.startup_done();
  EXPECT_TRUE(first.is_already_running());

  RecoveryManager second(path.str());
  auto refused = second.register_daemon(1s, 50ms);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), ErrorCode::AlreadyExists);
  EXPECT_EQ(second.cleanup_orphaned_shm().code(), ErrorCode::AlreadyExists);

  first.release();
  EXPECT_FALSE(second.is_already_running());
  auto now_free = second.register_daemon(1s);
  ASSERT_TRUE(now_free.ok()) << now_free.error().message();
  EXPECT_EQ(*now_free, DaemonStart::Fresh);
  second.release();
}

TEST(RecoveryManager, PidFileIsWrittenAtomicallyAndRemovedOnRelease) {  // K-PIDFILE
  test::TempSegmentPath path("rmpid");
  RecoveryManager rm(path.str());
  ASSERT_TRUE(rm.register_daemon(1s).ok());
  ASSERT_TRUE(rm.write_pid_file(4242).ok());
  EXPECT_EQ(rm.recorded_pid(), 4242u);
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(rm.pid_path()).parent_path()))
    EXPECT_EQ(e.path().string().find(rm.pid_path() + ".tmp"), std::string::npos) << e.path();
  rm.release();
  EXPECT_FALSE(std::filesystem::exists(rm.pid_path()));
  EXPECT_FALSE(std::filesystem::exists(rm.lock_path()));
}

TEST(RecoveryManager, CleanupRemovesWhatADeadDaemonLeft) {
  test::TempSegmentPath path("rmclean");
  // Without the magic it is no memlink segment: kept, and said so (K-ORPHAN).
  test::write_file(path.str(), std::vector<std::byte>(8192));
  RecoveryManager rm(path.str());
  std::ofstream(rm.pid_path()) << "12345\n";
  const Status refused = rm.cleanup_orphaned_shm();
  EXPECT_EQ(refused.code(), ErrorCode::InvalidArgument);
  EXPECT_TRUE(std::filesystem::exists(path.str()));
  std::vector<std::byte> segment(8192);
  std::memcpy(segment.data(), &SEGMENT_MAGIC, sizeof SEGMENT_MAGIC);
  test::write_file(path.str(), segment);
  ASSERT_TRUE(rm.cleanup_orphaned_shm().ok());
  EXPECT_FALSE(std::filesystem::exists(path.str()));
  EXPECT_FALSE(std::filesystem::exists(rm.pid_path()));
  EXPECT_EQ(rm.cleanup_orphaned_shm().code(), ErrorCode::NotFound);
}

#if !defined(_WIN32)
// The PID file went through '<base>.pid.tmp.<pid>', opened with truncate: a
// user who planted a symlink there made a root daemon overwrite any file.
// The temp name is now unpredictable and created exclusively, never through
// a link; the PID file is 0644 exactly, whatever the umask (issue 14).
TEST(RecoveryManager, ThePidFileIsNeverWrittenThroughAPlantedLink) {
  test::TempSegmentPath path("rmpid");
  RecoveryManager rm(path.str());
  const std::string victim = path.str() + "-victim";
  std::ofstream(victim) << "precious\n";
  const std::string predictable = rm.pid_path() + ".tmp." + std::to_string(platform::current_pid());
  std::filesystem::remove(predictable);
  std::filesystem::create_symlink(victim, predictable);
  const mode_t old = ::umask(0);
  const Status s = rm.write_pid_file(4242);
  ::umask(old);
  ASSERT_TRUE(s.ok()) << s.error().message();
  std::ifstream in(victim);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "precious") << "the daemon wrote through a planted symlink";
  EXPECT_EQ(rm.recorded_pid(), 4242u);
  struct stat st {};
  ASSERT_EQ(::lstat(rm.pid_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  std::filesystem::remove(predictable);
  std::filesystem::remove(victim);
  std::filesystem::remove(rm.pid_path());
}
#endif

TEST(RecoveryManager, SidecarsOfABareNameLiveInTheShmDirectory) {
#if defined(_WIN32)
  EXPECT_EQ(RecoveryManager::base_path("C:\\memlink\\seg"), "C:\\memlink\\seg");
  EXPECT_EQ(RecoveryManager::base_path("seg"), platform::shm_directory() + "\\memlink-seg");
#else
  EXPECT_EQ(RecoveryManager::base_path("/tmp/seg"), "/tmp/seg");
#if defined(__linux__)
  EXPECT_EQ(RecoveryManager::base_path("seg"), "/dev/shm/seg");
#endif
#endif
}

#if !defined(_WIN32)  // zombies are POSIX (an exited Windows process is signaled, see platform.cpp)
TEST(OwnerLiveness, AZombieIsDead) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  // Not reaped yet: kill(pid, 0) still succeeds, the liveness test must not.
  for (int i = 0; i < 200 && owner_process_alive(static_cast<std::uint32_t>(child)); ++i)
    std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(platform::process_exists(static_cast<std::uint32_t>(child)));
  EXPECT_FALSE(owner_process_alive(static_cast<std::uint32_t>(child)));
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(owner_process_alive(platform::current_pid()));
  EXPECT_FALSE(owner_process_alive(0));
}
#endif

// An owner pid a peer wrote outside the valid range is dead: as a pid_t,
// 0xFFFFFFFF is -1, and kill(-1, 0) says "alive" (such a slot was never
// reclaimed); above INT32_MAX it is a process group.
TEST(OwnerLiveness, PidsOutsideTheValidRangeAreDead) {
  for (std::uint32_t pid : {0u, 0xFFFFFFFFu, 0x80000000u, 0x80000001u, 0xFFFFFFFEu}) {
    EXPECT_FALSE(platform::process_exists(pid)) << pid;
    EXPECT_FALSE(owner_process_alive(pid)) << pid;
  }
  EXPECT_TRUE(owner_process_alive(platform::current_pid()));
}

TEST(OwnerLiveness, LiveAndExitedProcesses) {
  EXPECT_TRUE(owner_process_alive(platform::current_pid()));
  EXPECT_FALSE(owner_process_alive(0));
  EXPECT_FALSE(owner_process_alive(dead_pid()));
}

}  // namespace
}  // namespace memlink::shm
