// Crash recovery (SPEC K-*): who is the live daemon of a segment, how a new
// daemon takes over from a dead or unresponsive one, and how the consumer of
// a ring recovers the slot at its tail when the process holding it has died.
//
//   <base>.lock      held (LockFile: flock, or LockFileEx on Windows) by the
//                    live daemon for its whole life: the OS drops it when the
//                    process dies, PIDs never decide
//   <base>.pid       the daemon's pid, written atomically (for people)
//   <base>.takeover  held only while a daemon starts, so starts are serialized
//   <shm dir>/memlink-inode-<dev>-<ino>.lock
//                    the segment's identity lock, held by its live daemon
//                    beside <base>.lock: every name of one segment (a
//                    symlink, a hard link) meets it, so a live daemon is
//                    never taken over through another name (SPEC K-LOCK)
//
// <base> is the segment's path, or for a bare name /dev/shm/<name> (Linux),
// %TEMP%\memlink-<name> (Windows), /tmp/memlink-<name> (macOS).
//
// Contract: RecoveryManager is used by one daemon (or tool) process; a
// TailRecovery belongs to the one consumer of its ring.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "memlink/shm/lock_file.hpp"
#include "memlink/shm/pring.hpp"
#include "memlink/shm/result.hpp"

namespace memlink::shm {

// When a held slot counts as stale (SPEC K-STALE).
struct RecoveryPolicy {
  // A slot word the consumer has seen unchanged at its tail for less than
  // this long is never touched (and its holder's liveness not asked).
  std::chrono::nanoseconds stale_after = std::chrono::milliseconds(20);
  // A claimed position whose slot stays Empty this long (its writer died
  // between claiming and entering Writing) is reclaimed (SPEC K-CLAIMED).
  std::chrono::nanoseconds claim_timeout = std::chrono::seconds(1);
  // Whether the holder of a slot is alive. Default: the process exists and
  // is not a zombie. Tests substitute their own.
  std::function<bool(std::uint32_t pid)> owner_alive;
};

// What one recovery pass did.
struct RecoveryReport {
  std::uint64_t reclaimed_writing = 0;  // K-WRITING: never delivered
  std::uint64_t reclaimed_claimed = 0;  // K-CLAIMED
  std::uint64_t requeued_reading = 0;   // K-READING: will be delivered again
  std::uint64_t released_done = 0;      // K-DONE
  std::uint64_t total() const noexcept {
    return reclaimed_writing + reclaimed_claimed + requeued_reading + released_done;
  }
  RecoveryReport& operator+=(const RecoveryReport& o) noexcept;
};

// The default liveness test of RecoveryPolicy::owner_alive.
bool owner_process_alive(std::uint32_t pid) noexcept;

// SPEC K-CLIENTS: frees every client_pids entry whose process is dead and
// takes each off client_count (never below 0), so that clients killed with
// kill -9 do not count as connected forever. Returns how many it freed.
// Client::connect runs it, and the daemon's heartbeat thread once a second.
std::uint32_t reap_dead_clients(ControlRegion& ctl) noexcept;

// client_count - 1, never below 0 (a peer may have scribbled on it).
void decrement_client_count(ControlRegion& ctl) noexcept;

// Recovers the slot at one ring's tail, repeatedly, while it is held by a
// dead process (SPEC K-WRITING, K-CLAIMED, K-READING, K-DONE). The consumer
// of the ring calls run() when its tail does not move; it stops at the first
// slot that is Ready, fresh, or held by a live process.
class TailRecovery {
 public:
  RecoveryReport run(RingBuffer& ring, const RecoveryPolicy& policy);
  RecoveryReport run(PriorityRingBuffer& rings, const RecoveryPolicy& policy);

 private:
  // How long this consumer has seen the same word at the same tail, per
  // priority (K-STALE, K-CLAIMED time it on the consumer's own clock).
  std::uint64_t held_for(std::size_t priority, const TailView& v, std::uint64_t now);
  // K-CLAIMED: whether the Empty word at v's tail, watched for `held`, is a
  // claimed position to reclaim now (reads head only past the first phase).
  bool claim_timed_out(std::size_t priority, const RingBuffer& ring, const TailView& v, std::uint64_t held,
                       std::uint64_t now, std::uint64_t timeout);
  std::uint64_t watched_tail_[kPriorityCount] = {~0ULL, ~0ULL, ~0ULL};
  std::uint64_t watched_word_[kPriorityCount] = {};
  std::uint64_t first_seen_ns_[kPriorityCount] = {};
  std::uint64_t claimed_since_ns_[kPriorityCount] = {};  // 0: not seen claimed yet
};

// How a daemon came to own the segment (register_daemon's answer).
enum class DaemonStart : std::uint8_t {
  Fresh,         // no segment: create one
  Orphaned,      // a segment whose daemon is dead (or shut down): take over
  Unresponsive,  // a live daemon stopped heart-beating: replace and fence it
};
std::string_view to_string(DaemonStart s) noexcept;

class RecoveryManager {
 public:
  explicit RecoveryManager(std::string segment_path);
  RecoveryManager(RecoveryManager&&) noexcept;
  RecoveryManager& operator=(RecoveryManager&&) = delete;
  ~RecoveryManager();

  // Takes the daemon lock. AlreadyExists if a live daemon holds it and its
  // heartbeat is younger than `heartbeat_timeout` (the detail names its pid);
  // Timeout if another daemon is starting and does not finish within
  // `start_wait`. Holds the start lock until startup_done().
  Result<DaemonStart> register_daemon(std::chrono::nanoseconds heartbeat_timeout,
                                      std::chrono::nanoseconds start_wait = std::chrono::seconds(5));
  // Lets the next daemon start (call once this one serves).
  void startup_done();
  // Writes <base>.pid atomically (temporary file + rename).
  Status write_pid_file(std::uint32_t pid) const;
  // Pid recorded in <base>.pid, 0 if none or unreadable.
  std::uint32_t recorded_pid() const;

  // Takes the identity lock of the segment now at the path (a daemon that
  // created it calls this at once). AlreadyExists if a daemon holds it.
  Status hold_identity();
  // True if some process (this one included) holds the daemon lock, or the
  // identity lock of the segment at the path.
  bool is_already_running() const;
  // Removes the segment, PID file and lock file of a dead daemon (side
  // files only when they are regular files this user owns: SPEC 9b; a
  // segment another user owns only with `allow_foreign_owner`, else
  // PermissionDenied). AlreadyExists if a daemon is alive; NotFound if
  // there was nothing. `report`, if given, says what there was.
  struct CleanupReport {
    bool segment = false, pid_file = false;
  };
  Status cleanup_orphaned_shm(CleanupReport* report = nullptr, bool allow_foreign_owner = false);
  // A recovery pass over the rings this process consumes (SPEC K-TAKEOVER).
  RecoveryReport recover_stale_slots(PriorityRingBuffer& inbound, const RecoveryPolicy& policy);

  // On clean shutdown: removes the PID file and lock files, releases the
  // locks. A manager destroyed before startup_done() (a failed start) does
  // the same, so that a refused start leaves no .lock or .takeover behind.
  void release();

  const std::string& lock_path() const noexcept { return lock_path_; }
  const std::string& pid_path() const noexcept { return pid_path_; }
  const std::string& segment_path() const noexcept { return segment_path_; }

  // <base> for a segment path (see the header comment).
  static std::string base_path(const std::string& segment_path);
  // The identity lock's path for the segment at `segment_path` (followed
  // through links, as opening it is), or "" when there is none (no file,
  // or Windows, which has no identity lock).
  static std::string identity_lock_path(const std::string& segment_path);

 private:
  std::string segment_path_;
  std::string lock_path_;
  std::string pid_path_;
  std::string takeover_path_;
  LockFile lock_;      // the daemon lock, for this daemon's life
  LockFile takeover_;  // the start lock, until startup_done()
  LockFile identity_;  // the identity lock, for this daemon's life
  TailRecovery tails_;
  // The pid write_pid_file() last wrote: release() removes the PID file only
  // while it still records it (SPEC K-PIDFILE).
  mutable std::uint32_t written_pid_ = 0;
  // Whether the path lock (`lock`: free under this name, held() if so) and
  // the identity lock leave the segment to us, the replaced holders' locks
  // taken over (step 3 of register_daemon), or why not.
  Result<DaemonStart> decide_start(LockFile lock, bool identity_free, std::chrono::nanoseconds heartbeat_timeout);
  // Lock a replaced daemon still holds: its file removed, a fresh one taken.
  static Result<LockFile> replace_lock(const std::string& path);
  // Result: true when the identity lock is ours or there is no segment yet.
  Result<bool> try_hold_identity();
};

}  // namespace memlink::shm
