// What the chaos runner kills when it is interrupted.
//
// The processes it attacks run in process groups of their own
// (process_control.cpp), so a terminal's Ctrl-C or a hangup reaches the
// runner alone. Forked children die with it (PR_SET_PDEATHSIG, on Linux);
// driver processes in workload mode may never read their stdin again, so
// the runner, on SIGINT, SIGTERM or SIGHUP, SIGKILLs every child it started
// and has not reaped, then dies of the signal as it would have.
#pragma once

#include <sys/types.h>

namespace memlink::chaos {

// Installs the handlers (once; later calls do nothing).
void kill_live_children_on_interrupt();
// A child was started / was reaped (waitpid returned it: its pid may be reused).
void note_started(pid_t pid);
void note_reaped(pid_t pid);

}  // namespace memlink::chaos
