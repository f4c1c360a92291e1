#include "memlink/shm/recovery.hpp"

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <thread>

#include "memlink/shm/control.hpp"
#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/heartbeat.hpp"
#include "memlink/shm/lock_file.hpp"
#include "memlink/shm/mmap.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/testing_hooks.hpp"

namespace memlink::shm {
namespace {

using std::chrono::nanoseconds;

// A side file's text (<base>.pid), never through a link and never blocking
// on a FIFO planted at the name: nullopt unless it is a regular file, and,
// with `ours`, one this user owns (SPEC 9b, K-PIDFILE).
std::optional<std::string> read_side_file(const std::string& path, bool ours) {
#if defined(_WIN32)
  (void)ours;
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
#else
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  std::optional<std::string> text;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (!ours || st.st_uid == ::geteuid())) {
    char buf[32];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n >= 0) text = std::string(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
#endif
}

std::uint32_t pid_in(const std::optional<std::string>& text) {
  if (!text) return 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text->c_str(), &end, 10);
  return end != text->c_str() && v <= 0xFFFFFFFFull ? static_cast<std::uint32_t>(v) : 0;
}

// Removes a side file (<base>.pid, .lock) only if it is a regular file this
// user owns: another user's file, a FIFO or a link planted at the name is
// left alone, whoever runs the cleanup (root included).
bool remove_own_side_file(const std::string& path) {
#if defined(_WIN32)
  return platform::remove_file(path);
#else
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) return false;
  return ::unlink(path.c_str()) == 0;
#endif
}

// Stale (SPEC K-STALE): held by a process that is not us and is not alive,
// and seen unchanged by this consumer for at least stale_after (so that a
// busy ring, whose tail is often caught mid-write, costs no liveness
// syscall). The word carries the holder and the lap, so "unchanged" means
// the same holder of the same message: nothing a clock in shared memory
// (which a peer could forge) has to vouch for.
// Only a Writing slot waits out stale_after: a consumer often catches a live
// writer mid-write at its tail, and asking the OS each time would cost a
// syscall per poll. Reading or Done at its own tail means another consumer
// holds the slot or died there, which is rare: that holder is asked at once
// (a consumer that replaced a killed one must not report InvalidState for
// stale_after first).
bool is_stale(const TailView& v, const RecoveryPolicy& policy, std::uint64_t held_for_ns) {
  if (v.owner_pid == platform::current_pid()) return false;
  const auto min_age = static_cast<std::uint64_t>(std::max<std::int64_t>(0, policy.stale_after.count()));
  if (v.state == static_cast<std::uint8_t>(SlotState::Writing) && held_for_ns < min_age) return false;
  return policy.owner_alive ? !policy.owner_alive(v.owner_pid) : !owner_process_alive(v.owner_pid);
}
}  // namespace

RecoveryReport& RecoveryReport::operator+=(const RecoveryReport& o) noexcept {
  reclaimed_writing += o.reclaimed_writing;
  reclaimed_claimed += o.reclaimed_claimed;
  requeued_reading += o.requeued_reading;
  released_done += o.released_done;
  return *this;
}

void decrement_client_count(ControlRegion& ctl) noexcept {
  std::uint32_t n = ctl.client_count.load(std::memory_order_relaxed);
  while (n > 0 && !ctl.client_count.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel)) {
  }
}

std::uint32_t reap_dead_clients(ControlRegion& ctl) noexcept {
  std::uint32_t freed = 0;
  for (auto& entry : ctl.client_pids) {
    std::uint32_t pid = entry.load(std::memory_order_acquire);
    if (pid == 0 || owner_process_alive(pid)) continue;
    // Only the CAS winner decrements: the client itself leaving, or
    // another reaper, may race us for the same entry.
    if (entry.compare_exchange_strong(pid, 0, std::memory_order_acq_rel)) {
      decrement_client_count(ctl);
      ++freed;
    }
  }
  return freed;
}

bool owner_process_alive(std::uint32_t pid) noexcept {
  MEMLINK_INTERPOSED(alive(pid));
  if (pid == 0 || !platform::process_exists(pid)) return false;
#if defined(__linux__)
  // A killed child that its parent has not reaped yet still "exists".
  // open/read, not stdio: no allocation and no stdio lock, because the
  // daemon's heartbeat thread asks this (K-CLIENTS) and a process that forks
  // while that thread holds the allocator's lock would leave the child stuck
  // on it (an ASan run of TransportTest.SecondReadingClientProcessIsRefused
  // hung so).
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  if (const int fd = ::open(path, O_RDONLY | O_CLOEXEC); fd >= 0) {
    char buf[512] = {};
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    const char* close_paren = n > 0 ? std::strrchr(buf, ')') : nullptr;
    if (close_paren != nullptr && close_paren[1] == ' ' && (close_paren[2] == 'Z' || close_paren[2] == 'X'))
      return false;
  }
#endif
  return true;
}

std::uint64_t TailRecovery::held_for(std::size_t p, const TailView& v, std::uint64_t now) {
  if (watched_tail_[p] != v.tail || watched_word_[p] != v.word) {
    watched_tail_[p] = v.tail;
    watched_word_[p] = v.word;
    first_seen_ns_[p] = now;
    claimed_since_ns_[p] = 0;
  }
  return now - first_seen_ns_[p];
}

// K-CLAIMED in two phases, so that the producers' head line is read only
// when it can matter: Empty(g) at the tail is "nothing yet" until it has
// been watched for claim_timeout; then head says whether the position is
// claimed (if not, the watch starts again); a claimed position is reclaimed
// once it has been seen claimed, unchanged, for claim_timeout more. A
// writer that claimed it while the consumer watched the unclaimed word is
// therefore never reclaimed sooner than claim_timeout after its claim was
// seen (layout 2 step 1 read head on every pass to start the watch at the
// claim; an idle consumer then took the head line from its producers once
// per poll).
bool TailRecovery::claim_timed_out(std::size_t p, const RingBuffer& ring, const TailView& v,
                                   std::uint64_t held, std::uint64_t now, std::uint64_t timeout) {
  if (held < timeout) return false;
  if (claimed_since_ns_[p] == 0) {
    if (!ring.claimed(v.tail)) {
      first_seen_ns_[p] = now;  // unclaimed: watch again
      return false;
    }
    claimed_since_ns_[p] = now == 0 ? 1 : now;
  }
  return now - claimed_since_ns_[p] >= timeout;
}

RecoveryReport TailRecovery::run(RingBuffer& ring, const RecoveryPolicy& policy) {
  RecoveryReport report;
  const auto p = static_cast<std::size_t>(ring.priority());
  for (std::uint32_t step = 0; step <= ring.capacity(); ++step) {
    // The tail and its word only: head is read below only where it decides.
    const TailView v = ring.tail_word_view();
    const std::uint64_t now = platform::monotonic_ns();
    const std::uint64_t held = held_for(p, v, now);
    const auto state = slot_state_from_byte(v.state);
    if (!state) break;  // garbage: take() drops it as corrupt
    bool moved = false;  // acted on the tail slot (the loop then looks again)
    if (v.generation != v.tail_generation) {
      // Empty of the next lap: the consumer released the slot and died
      // before it moved the tail (K-DONE). Anything else: take() drops it.
      if (*state == SlotState::Empty && v.generation == next_generation(v.tail_generation) && ring.claimed(v.tail)) {
        moved = ring.release_done(v.tail, v.word);
        report.released_done += moved;
      }
      if (!moved) break;
      MEMLINK_CRASH_POINT("recovery.mid-slots");
      continue;
    }
    switch (*state) {
      case SlotState::Ready:
        break;
      case SlotState::Empty:
        // A claimed position whose writer has not entered Writing (K-CLAIMED).
        if (!claim_timed_out(p, ring, v, held, now, static_cast<std::uint64_t>(std::max<std::int64_t>(0, policy.claim_timeout.count()))))
          break;
        moved = ring.reclaim_claimed(v.tail);
        report.reclaimed_claimed += moved;
        break;
      case SlotState::Writing:
        if (!ring.claimed(v.tail) || !is_stale(v, policy, held)) break;
        moved = ring.reclaim_writing(v.tail, v.word);
        report.reclaimed_writing += moved;
        break;
      case SlotState::Reading:
        if (!ring.claimed(v.tail) || !is_stale(v, policy, held)) break;
        moved = ring.requeue_reading(v.tail, v.word);  // Ready now: delivered again
        report.requeued_reading += moved;
        break;
      case SlotState::Done:
        if (!ring.claimed(v.tail) || !is_stale(v, policy, held)) break;
        moved = ring.release_done(v.tail, v.word);
        report.released_done += moved;
        break;
    }
    if (!moved) break;
    MEMLINK_CRASH_POINT("recovery.mid-slots");
  }
  return report;
}

RecoveryReport TailRecovery::run(PriorityRingBuffer& rings, const RecoveryPolicy& policy) {
  RecoveryReport r;
  for (Priority p : kAllPriorities) r += run(rings.ring(p), policy);
  return r;
}

std::string_view to_string(DaemonStart s) noexcept {
  switch (s) {
    case DaemonStart::Fresh: return "fresh";
    case DaemonStart::Orphaned: return "orphaned";
    case DaemonStart::Unresponsive: return "unresponsive";
  }
  return "?";
}

std::string RecoveryManager::base_path(const std::string& segment_path) {
  if (!MmapSegment::is_posix_shm_name(segment_path)) return segment_path;
#if defined(__linux__)
  return "/dev/shm/" + segment_path;
#elif defined(_WIN32)
  return platform::shm_directory() + "\\memlink-" + segment_path;
#else
  return platform::shm_directory() + "/memlink-" + segment_path;
#endif
}

RecoveryManager::RecoveryManager(std::string segment_path)
    : segment_path_(std::move(segment_path)) {
  const std::string base = base_path(segment_path_);
  lock_path_ = base + ".lock";
  pid_path_ = base + ".pid";
  takeover_path_ = base + ".takeover";
}

RecoveryManager::RecoveryManager(RecoveryManager&&) noexcept = default;
// A manager destroyed mid-start (refused, or its daemon failed to come up)
// removes the files it made, while it still holds them; otherwise the
// LockFiles just drop their locks.
RecoveryManager::~RecoveryManager() {
  if (takeover_.held()) release();
}

std::string RecoveryManager::identity_lock_path(const std::string& segment_path) {
#if defined(_WIN32)
  (void)segment_path;
  return {};
#else
  struct stat st {};
  if (segment_path.empty() || ::stat(base_path(segment_path).c_str(), &st) != 0) return {};
  return platform::shm_directory() + "/memlink-inode-" + std::to_string(static_cast<std::uint64_t>(st.st_dev)) + "-" +
         std::to_string(static_cast<std::uint64_t>(st.st_ino)) + ".lock";
#endif
}

Result<bool> RecoveryManager::try_hold_identity() {
  if (identity_.held()) return true;
  const std::string path = identity_lock_path(segment_path_);
  if (path.empty()) return true;
  auto lock = LockFile::try_acquire(path);
  if (!lock) return lock.error();
  if (!lock->held()) return false;
  identity_ = std::move(*lock);
  return true;
}

Status RecoveryManager::hold_identity() {
  auto ours = try_hold_identity();
  if (!ours) return ours.error();
  if (!*ours)
    return make_error(
        ErrorCode::AlreadyExists,
        "a daemon serves '" + segment_path_ + "' under another name: it holds " + identity_lock_path(segment_path_));
  return {};
}

namespace {

// Age of the segment's heartbeat in ns, or nullopt if it cannot be read.
// An age past `timeout` is confirmed by watching the heartbeat stay still
// (heartbeat.hpp); a heartbeat that moves while we watch has age 0.
std::optional<std::uint64_t> heartbeat_age(const std::string& segment_path, std::uint64_t timeout,
                                           std::uint32_t* pid) {
  auto seg = MmapSegment::open(segment_path);
  if (!seg) return std::nullopt;
  if (!validate_control(seg->data(), seg->size())) return std::nullopt;
  const ControlRegion* ctl = control_of(seg->data());
  const std::uint64_t hb = ctl->heartbeat_ns.load(std::memory_order_acquire);
  if (pid != nullptr) *pid = ctl->daemon_pid.load(std::memory_order_relaxed);
  const std::uint64_t age = heartbeat_age_ns(hb, platform::monotonic_ns());
  if (age > timeout && !heartbeat_stays_still(*ctl, hb)) return 0;
  return age;
}

bool segment_exists(const std::string& path) { return MmapSegment::open(path).ok(); }

}  // namespace

Result<DaemonStart> RecoveryManager::register_daemon(nanoseconds heartbeat_timeout, nanoseconds start_wait) {
  // An empty path would put '.lock' and '.takeover' in the working directory.
  if (segment_path_.empty()) return make_error(ErrorCode::InvalidArgument, "segment path is empty");
  if (lock_.held()) return make_error(ErrorCode::InvalidState, "this manager already holds " + lock_path_);
  // 1. Serialize starts: one daemon at a time decides and takes over.
  const std::uint64_t give_up = platform::monotonic_ns() + static_cast<std::uint64_t>(start_wait.count());
  for (;;) {
    auto lock = LockFile::try_acquire(takeover_path_);
    if (!lock) return lock.error();
    if (lock->held()) {
      takeover_ = std::move(*lock);
      break;
    }
    if (platform::monotonic_ns() >= give_up)
      return make_error(ErrorCode::Timeout, "another daemon has been starting on '" + segment_path_ +
                                                "' for too long (" + takeover_path_ + " is locked)");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto fail = [this](Error e) -> Result<DaemonStart> {
    release();  // removes the start lock it made (and any lock taken)
    return e;
  };
  // 2. The daemon lock, and the segment's identity lock (another name for
  // the same segment meets the same one): both free means no live daemon.
  auto lock = LockFile::try_acquire(lock_path_);
  if (!lock) return fail(lock.error());
  auto identity_free = try_hold_identity();
  if (!identity_free) return fail(identity_free.error());
  auto start = decide_start(std::move(*lock), *identity_free, heartbeat_timeout);
  if (!start) return fail(start.error());
  MEMLINK_CRASH_POINT("recovery.after-lock");
  return start;
}

Result<DaemonStart> RecoveryManager::decide_start(LockFile lock, bool identity_free, nanoseconds heartbeat_timeout) {
  if (lock.held() && identity_free) {
    lock_ = std::move(lock);
    return segment_exists(segment_path_) ? DaemonStart::Orphaned : DaemonStart::Fresh;
  }
  // 3. Held: alive, unless it stopped heart-beating (stopped, or hung).
  const std::string held_by =
      lock.held() ? identity_lock_path(segment_path_) + " (it serves the segment under another name)" : lock_path_;
  std::uint32_t pid = 0;
  const auto age = heartbeat_age(segment_path_, static_cast<std::uint64_t>(heartbeat_timeout.count()), &pid);
  if (!age || *age <= static_cast<std::uint64_t>(heartbeat_timeout.count())) {
    const std::uint32_t holder = pid != 0 ? pid : recorded_pid();
    if (lock.held()) (void)lock.remove_if_mine();  // the lock file this refused start made
    return make_error(ErrorCode::AlreadyExists,
                      "a daemon (pid " + std::to_string(holder) + ") is running on '" + segment_path_ + "': it holds " +
                          held_by +
                          (age ? " and its heartbeat is " + std::to_string(*age / 1000000) + " ms old"
                               : std::string(" (segment not readable yet)")));
  }
  // Replace the held lock files: the old daemon keeps its locks on files
  // nobody can open, and its epoch, which we are about to increment,
  // fences it (K-FENCE).
  if (!lock.held()) {
    auto fresh = replace_lock(lock_path_);
    if (!fresh) return fresh.error();
    lock = std::move(*fresh);
  }
  if (!identity_free) {
    auto fresh = replace_lock(identity_lock_path(segment_path_));
    if (!fresh) return fresh.error();
    identity_ = std::move(*fresh);
  }
  lock_ = std::move(lock);
  return DaemonStart::Unresponsive;
}

Result<LockFile> RecoveryManager::replace_lock(const std::string& path) {
  (void)LockFile::remove(path);
  auto fresh = LockFile::try_acquire(path);
  if (!fresh) return fresh.error();
  if (!fresh->held()) return make_error(ErrorCode::AlreadyExists, "lost the race for " + path);
  return fresh;
}

void RecoveryManager::startup_done() { takeover_.release(); }

Status RecoveryManager::write_pid_file(std::uint32_t pid) const {
#if defined(_WIN32)
  const std::string tmp = pid_path_ + ".tmp." + std::to_string(platform::current_pid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << pid << "\n";
    if (!out) return make_error(ErrorCode::IoError, "cannot write " + tmp);
  }
#else
  // A temp name nobody can predict, created exclusively and never through a
  // symlink: with the old '<base>.pid.tmp.<pid>' opened with truncate, a
  // user who planted links there made a root daemon overwrite any file
  // (and a planted FIFO hung its start). Mode 0644 exactly, whatever the umask.
  std::string tmp;
  int fd = -1;
  std::random_device random;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".tmp.%u.%08x%08x", platform::current_pid(), random(), random());
    tmp = pid_path_ + suffix;
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  }
  if (fd < 0) return make_error(ErrorCode::IoError, "cannot create " + tmp + ": " + platform::last_error_text());
  const std::string text = std::to_string(pid) + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fchmod(fd, 0644) == 0;
  ::close(fd);
  if (!written) {
    (void)platform::remove_file(tmp);
    return make_error(ErrorCode::IoError, "cannot write " + tmp);
  }
#endif
  if (!platform::replace_file(tmp, pid_path_)) {
    const std::string why = platform::last_error_text();
    (void)platform::remove_file(tmp);
    return make_error(ErrorCode::IoError, "rename " + tmp + " -> " + pid_path_ + ": " + why);
  }
  written_pid_ = pid;  // what release() may remove
  return {};
}

std::uint32_t RecoveryManager::recorded_pid() const { return pid_in(read_side_file(pid_path_, true)); }

bool RecoveryManager::is_already_running() const {
  if (LockFile::is_held(lock_path_)) return true;
  const std::string identity = identity_lock_path(segment_path_);
  return !identity.empty() && LockFile::is_held(identity);
}

Status RecoveryManager::cleanup_orphaned_shm(CleanupReport* report, bool allow_foreign_owner) {
  if (segment_path_.empty()) return make_error(ErrorCode::InvalidArgument, "segment path is empty");
  auto starting = LockFile::try_acquire(takeover_path_);
  if (!starting) return starting.error();
  if (!starting->held())
    return make_error(ErrorCode::AlreadyExists, "a daemon is starting on '" + segment_path_ + "'");
  // Whatever the outcome, the start lock we made goes (removed while we
  // hold it, as release() does): a refused cleanup or --replace must not
  // leave <name>.takeover beside somebody's file.
  struct DropStartLock {
    LockFile& lock;
    ~DropStartLock() { (void)lock.remove_if_mine(); }
  } drop_start_lock{*starting};
  if (is_already_running())
    return make_error(ErrorCode::AlreadyExists, "daemon pid " + std::to_string(recorded_pid()) + " holds " +
                                                    lock_path_ + "; not removing '" + segment_path_ + "'");
  // SPEC K-ORPHAN: only a memlink segment goes, never whatever else a name
  // (or a careless bare name, "foo.lock") points at.
  // Nor another user's segment, unless asked (SPEC M-OWNER).
  const auto owner = allow_foreign_owner ? MmapSegment::Owner::Anyone : MmapSegment::Owner::Me;
  if (auto seg = MmapSegment::open(segment_path_, MmapSegment::Access::ReadOnly, owner); seg) {
    std::uint64_t magic = 0;
    std::memcpy(&magic, seg->data(), sizeof magic);
    if (magic != SEGMENT_MAGIC)
      return make_error(ErrorCode::InvalidArgument, "'" + segment_path_ + "' is not a memlink segment (its first 8 bytes are not "
                                                    "the magic): not removing it");
  } else if (seg.code() != ErrorCode::NotFound) {
    return make_error(seg.code(), "not removing '" + segment_path_ + "': " + seg.error().message());
  }
  const std::string identity = identity_lock_path(segment_path_);
  const bool had_segment = MmapSegment::remove(segment_path_).ok();
  const bool had_pid = remove_own_side_file(pid_path_);
  (void)remove_own_side_file(lock_path_);
  if (!identity.empty()) (void)remove_own_side_file(identity);
  if (report != nullptr) *report = CleanupReport{had_segment, had_pid};
  if (!had_segment && !had_pid)
    return make_error(ErrorCode::NotFound, "no segment or PID file for '" + segment_path_ + "'");
  return {};
}

void RecoveryManager::release() {
  if (!lock_.held() && !takeover_.held()) return;  // never started (a tool's manager)
  // Remove while still holding the lock: a starter that opened the old file
  // notices (try_acquire's same-file check) and retries on a new one. Only
  // what is still ours (SPEC 9b): the PID file while it records this
  // process, a lock while it is the file we hold. A daemon whose files
  // were replaced (removed by hand, a successor started on the path) leaves
  // its successor's alone.
  if (written_pid_ != 0 && pid_in(read_side_file(pid_path_, true)) == written_pid_)
    (void)remove_own_side_file(pid_path_);
  for (LockFile* held : {&lock_, &identity_}) {
    (void)held->remove_if_mine();
    held->release();
  }
  // The start lock too, but only while holding it, for the same reason.
  if (takeover_.held()) {
    (void)takeover_.remove_if_mine();
    takeover_.release();
  } else if (auto starting = LockFile::try_acquire(takeover_path_); starting && starting->held()) {
    (void)starting->remove_if_mine();
  }
}

RecoveryReport RecoveryManager::recover_stale_slots(PriorityRingBuffer& inbound, const RecoveryPolicy& policy) {
  return tails_.run(inbound, policy);
}

}  // namespace memlink::shm
