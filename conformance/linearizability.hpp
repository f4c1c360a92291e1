// A linearizability checker for histories of one direction of the transport
// (many writers, one reader), in the style of Wing & Gong with Lowe's
// memoisation: search for an order of the operations that respects real time
// and that the sequential specification accepts.
//
// The sequential specification is the model's, restated over message ids:
// per priority a bounded FIFO (R-CAPACITY, R-FIFO); a read returns the
// oldest message of the highest priority (R-ORDER), except that a message
// whose write overlaps the read may not be visible yet (R-VISIBLE), so the
// read may pass over its ring or return Empty.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "memlink/conformance/verdict.hpp"
#include "memlink/shm/priority.hpp"
#include "timeline.hpp"

namespace memlink::conformance {

struct HistoryOp {
  enum class Kind : std::uint8_t { Write, Read };
  Kind kind = Kind::Write;
  int process = 0;        // thread or process that ran it
  shm::Priority priority = shm::Priority::Low;  // write: its priority; read: the delivered one
  std::uint64_t id = 0;   // write: the message id; read: the id delivered
  bool ok = false;        // write: acknowledged (else Full); read: delivered (else Empty)
  std::uint64_t invoke_ns = 0;
  std::uint64_t response_ns = 0;  // ~0: never returned (its process died)
  // A write that was never delivered and whose effect is unknown: its writer
  // died, or was told its stalled position was reclaimed (K-CLAIMED). It may
  // have taken no position at all, or one that recovery later reclaimed;
  // while it holds the oldest position of its ring, reads find that ring
  // empty (R-VISIBLE), and it takes capacity (R-CAPACITY).
  bool ghost = false;
  std::uint64_t sequence = 0;  // read: the delivered message's sequence number (T-SEQ)
};

struct LinearizabilityResult {
  bool linearizable = false;
  // False: the search met its budget before deciding (Unknown); then
  // `linearizable` is false and means nothing.
  bool decided = true;
  std::size_t states = 0;          // distinct search states it visited
  std::size_t longest_prefix = 0;  // most operations any candidate order placed
  std::string explanation;
  // Not linearizable: the operations of the longest valid prefix, and those
  // that could have come next but none of which the spec accepts there.
  std::vector<std::size_t> prefix, stuck;
};

// The search visits at most `max_states` distinct states (each a set of
// operations placed and the queues they leave): a bounded amount of work,
// whatever the history; past it the answer is undecided, never a guess.
inline constexpr std::size_t kDefaultSearchStates = 200000;
LinearizabilityResult check_linearizable(const std::vector<HistoryOp>& history,
                                         const std::array<std::uint32_t, shm::kPriorityCount>& capacity,
                                         std::size_t max_states = kDefaultSearchStates);

// T-SEQ over a history: the delivered sequence numbers of a direction are
// unique, and each writer's increase in the order it wrote. "" if so.
std::string sequence_violation(const std::vector<HistoryOp>& history);

// The clauses whose behaviour the history shows, so that a check records
// only those (nothing is PASS that no check saw): S-PUBLISH (an acknowledged
// write delivered), R-FIFO (two deliveries from one writer on one ring),
// R-ROLES (deliveries from two writers on one ring), R-CAPACITY (a full ring
// refused), R-VISIBLE (a read that overlapped a write), R-ORDER (a read that
// chose among priorities pending at once), R-CLAIM (two overlapping writes
// to one ring, both delivered), T-SEQ (two deliveries on one ring, if the
// transport numbers its messages).
std::set<ClauseId> clauses_seen(const std::vector<HistoryOp>& history, bool sequences);

// The verdict on one concurrent history, in order of what it proves:
// an unexpected error (R-RELEASE), acknowledged writes not all delivered
// (S-PUBLISH), a T-SEQ violation (`seq`), not linearizable (R-VISIBLE).
// No violation if it passes; else the violation and the history, one
// operation per line.
struct HistoryVerdict {
  std::optional<Violation> violation;  // nullopt: it passes (or is undecided)
  std::vector<std::string> lines;
};
HistoryVerdict judge_history(const std::vector<HistoryOp>& history, const LinearizabilityResult& lin,
                             const std::string& where, const std::string& unexpected, const std::string& seq);

// One line per operation, in invocation order, times relative to the first.
std::string format_history(const std::vector<HistoryOp>& history);

// A linearizability history as a timeline: the operations of `lin.stuck`
// (none of which the spec accepts after the longest valid prefix) drawn as
// the ones that broke it.
Timeline history_timeline(const std::vector<HistoryOp>& history, const LinearizabilityResult& lin,
                          const std::string& title, const std::string& clause, const std::string& replay);


}  // namespace memlink::conformance
