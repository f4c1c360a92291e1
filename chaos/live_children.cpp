#include "live_children.hpp"

#include <signal.h>

#include <array>
#include <atomic>
#include <mutex>

namespace memlink::chaos {
namespace {

// Children alive at once are few (a daemon, the writers, a reader, a
// held process or two); a run that ever had more than this many unreaped
// leaves the rest to PR_SET_PDEATHSIG or to the end of their stdin.
// Lock-free atomics: the handler reads them (async-signal-safe).
std::array<std::atomic<pid_t>, 256> g_live{};
static_assert(std::atomic<pid_t>::is_always_lock_free);

extern "C" void kill_live_and_die(int sig) {
  for (auto& slot : g_live)
    if (const pid_t pid = slot.load(std::memory_order_relaxed); pid > 0) ::kill(pid, SIGKILL);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void kill_live_children_on_interrupt() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, kill_live_and_die);
  });
}

void note_started(pid_t pid) {
  for (auto& slot : g_live) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid, std::memory_order_relaxed)) return;
  }
}

void note_reaped(pid_t pid) {
  for (auto& slot : g_live) {
    pid_t mine = pid;
    if (slot.compare_exchange_strong(mine, 0, std::memory_order_relaxed)) return;
  }
}

}  // namespace memlink::chaos
