// Crash and pause points (SPEC K-CRASH): named places in the write, read,
// recovery and heartbeat paths where a test build can SIGKILL its own
// process, or hold it (or just the thread) while another process acts, so
// that a runner can walk every point and every occurrence, as SQLite's
// crash tests do.
//
//   MEMLINK_CRASH_AT=<point>:<n>   the n-th time (1-based) this process
//                                  reaches <point>, it kills itself
//   MEMLINK_PAUSE_AT=<point>:<n>   the n-th time, the thread stops there:
//                                  with MEMLINK_PAUSE_DIR=<dir> only the
//                                  thread, which creates <dir>/paused and
//                                  waits until <dir>/resume exists (it
//                                  removes both); without, the whole process
//                                  (raise(SIGSTOP); the runner sends SIGCONT)
//
// The library built with MEMLINK_TESTING_HOOKS (target memlink_shm_testing)
// honours the variables, and tells a thread's interposer (testing_hooks.hpp)
// of every point it reaches; in the normal library MEMLINK_CRASH_POINT
// compiles to nothing and crash_point() does nothing.
#pragma once

#include <array>
#include <string_view>

namespace memlink::shm {

// Every point, in the order the runner walks them. The state each one leaves
// behind is what the name says: the SPEC K-* clauses recover from all of them.
inline constexpr std::array<std::string_view, 17> kCrashPoints = {
    "write.after-claim",      // position claimed (head + 1), slot still Empty
    "write.after-writing",    // slot Writing, nothing copied yet
    "write.mid-payload",      // half the payload copied
    "write.before-publish",   // payload and checksum written, still Writing
    "write.after-publish",    // Ready (acknowledged in the segment), caller not told
    "read.before-take",       // the consumer checked the slot (and its epoch), Ready -> Reading not yet done
    "read.after-take-cas",    // Reading, the epoch and tail not re-checked yet (SPEC K-FENCE)
    "read.after-take",        // Reading, payload copied, not yet handed to the caller
    "read.before-done",       // the caller has processed it; still Reading
    "read.after-done",        // Done, tail not advanced
    "read.after-release",     // Empty and tail + 1, caller not told
    "recovery.after-lock",    // new daemon holds the lock, nothing changed yet
    "recovery.after-epoch",   // epoch incremented, no slot recovered yet
    "recovery.mid-slots",     // one slot recovered, the rest not
    "recovery.before-serving",// all slots recovered, daemon_alive not yet set
    "daemon.after-record",    // chaos daemon: delivery recorded, not finished (at-least-once)
    "heartbeat.before-stamp", // the daemon's heartbeat thread, about to stamp (SPEC K-HEARTBEAT)
};

// True in a build whose crash points are live.
bool crash_points_compiled_in() noexcept;

// Arms (or with occurrence 0 disarms) a point from code instead of the
// environment, e.g. in a child after fork(). Resets the visit count.
void arm_crash_point(std::string_view point, long occurrence) noexcept;

// Arms (or with occurrence 0 disarms) a pause in this process: the thread
// that makes the n-th visit to `point` calls `handler(point, context)` there
// and continues when it returns (in-process tests: act while a thread is
// held at a step). Resets the visit count.
using PauseHandler = void (*)(std::string_view point, void* context);
void arm_pause_point(std::string_view point, long occurrence, PauseHandler handler, void* context) noexcept;

// Counts a visit to `point`; kills the process if MEMLINK_CRASH_AT names this
// visit, holds it if MEMLINK_PAUSE_AT (or arm_pause_point) does. Thread-safe.
// Does nothing in the normal library.
void crash_point(std::string_view point) noexcept;

}  // namespace memlink::shm

#if defined(MEMLINK_TESTING_HOOKS)
#define MEMLINK_CRASH_POINT(point) ::memlink::shm::crash_point(point)
#else
#define MEMLINK_CRASH_POINT(point) ((void)0)
#endif
