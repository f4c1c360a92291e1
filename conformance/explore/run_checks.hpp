// The named checks that check_run (scenarios.hpp) composes into one run's
// verdict, each usable and testable alone: each appends what it finds in
// one run's record (and the scheduler's execution) to `v`.
#pragma once

#include <vector>

#include "scenarios.hpp"
#include "scheduler.hpp"

namespace memlink::conformance::explore {

// The scheduler's own findings: livelocks and threads that never return
// (K-STALE with a death in the run, else T-WAIT), data races (S-PUBLISH),
// lost and idle wake-ups (F-WAKE).
void check_scheduler_findings(const Execution& e, std::vector<Violation>& v);
// F-WAKE: no sleeper counted once every thread has returned.
void check_sleepers_at_end(const RunRecord& r, const Execution& e, std::vector<Violation>& v);
// Every delivery is a message written, intact, at its priority, from a
// write that did not fail (V-SLOT, S-PUBLISH, V-ONCE, R-ORDER, K-CLAIMED,
// R-CAPACITY); a failed read on a healthy ring is S-PUBLISH or V-SLOT.
void check_deliveries(const RunRecord& r, std::vector<Violation>& v);
// Every write: delivered at most once (K-READING), once if acknowledged
// (S-PUBLISH), never an error (R-RELEASE, K-FENCE), not-sent only after the
// claim timeout (K-CLAIMED), a blocking write's Timeout on time (T-BLOCKING).
void check_writes(const RunRecord& r, const Execution& e, std::vector<Violation>& v);
// T-SEQ: unique per ring, increasing per writer, dense for one writer.
void check_sequence_numbers(const RunRecord& r, std::vector<Violation>& v);
// T-COUNTERS: client_head and daemon_tail against the writes and reads.
void check_counters(const RunRecord& r, std::vector<Violation>& v);
// R-POSITIONS at the end: each c2d ring's tail <= head, and the positions
// between them are the messages still in it: every acknowledged write not
// delivered, at most also those whose writer died, timed out its claim or
// failed (a tail moved back over delivered messages, or moved past one never
// read, leaves them disagreeing with the history).
void check_positions_at_end(const RunRecord& r, std::vector<Violation>& v);
// K-FENCE: a replaced daemon took nothing after its successor's epoch began.
void check_fence(const RunRecord& r, std::vector<Violation>& v);
// R-FIFO, R-ORDER, R-CAPACITY, R-VISIBLE: the history is linearizable
// against the queue specification (ring by ring while a replaced daemon's
// read overlapped its successor's).
void check_linearizable_history(const Config& c, const RunRecord& r, std::vector<Violation>& v);

}  // namespace memlink::conformance::explore
