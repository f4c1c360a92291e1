#include <atomic>
#include <mutex>

#include "suite.hpp"

namespace memlink::conformance {

const std::vector<Clause>& spec_clauses() {
  static const std::vector<Clause> clauses = {
      {"L-CONST", "constants"},
      {"M-NAME", "segment naming: file path or POSIX shm name"},
      {"M-CREATE", "create: exclusive, 0600, zero-filled, size limits"},
      {"M-OPEN", "open: size limits, NotFound, PermissionDenied"},
      {"M-PERSIST", "contents persist across unmap and map"},
      {"M-OWNER", "another user's segment is refused unless trusted"},
      {"M-TRUNCATE", "shrunk under its users: none dies, each says so"},
      {"G-STRIDE", "slot stride"},
      {"G-DIST", "slot distribution among priorities"},
      {"G-PLACE", "ring placement"},
      {"G-FIT", "largest n that fits"},
      {"C-LAYOUT", "control region fields and offsets"},
      {"C-LINES", "one cache line per writer"},
      {"C-INIT", "magic stored last, with release"},
      {"C-FLAGS", "flag bits"},
      {"C-BACKPRESSURE", "backpressure 0..1000, advisory"},
      {"R-LAYOUT", "ring header layout"},
      {"R-POSITIONS", "tail <= head <= tail + capacity"},
      {"R-ROLES", "many producers, one consumer"},
      {"R-CLAIM", "claim by CAS on head"},
      {"R-FIFO", "position order within a ring"},
      {"R-ORDER", "Critical before High before Low"},
      {"R-CAPACITY", "full ring refuses, changes nothing"},
      {"R-VISIBLE", "readable when Ready, not when claimed"},
      {"R-HELD", "Reading/Done at tail: InvalidState"},
      {"R-PEEK", "peek: next message, unconsumed"},
      {"R-RELEASE", "Done -> Empty, then tail + 1"},
      {"S-LAYOUT", "slot header layout"},
      {"S-STATES", "state values"},
      {"S-TRANSITIONS", "Empty->Writing->Ready->Reading->Done->Empty"},
      {"S-WORD", "one slot word: state, owner pid and lap"},
      {"S-OWNER", "owner pid in the word on Writing/Reading"},
      {"S-PUBLISH", "acknowledged only when Ready"},
      {"S-CHECKSUM", "CRC32C of the payload"},
      {"V-ONCE", "each field read once, validated copy used"},
      {"V-SLOT", "a bad slot is dropped, counted, never delivered"},
      {"V-BOUNDS", "overflow-checked offsets"},
      {"V-CONNECT", "connect validates the segment"},
      {"T-ENDPOINTS", "daemon and clients, client_count"},
      {"T-SEQ", "sequence numbers"},
      {"T-COUNTERS", "client_head and daemon_tail"},
      {"T-TOO-LARGE", "oversized payload refused"},
      {"T-LOAN", "zero-copy loans and views: the same steps as write and read"},
      {"T-BLOCKING", "blocking write waits for space, then Timeout"},
      {"T-WAIT", "wait strategies and results"},
      {"T-SHUTDOWN", "daemon shutdown"},
      {"T-KILLED", "writes continue after a daemon dies"},
      {"F-WORDS", "futex words cross processes"},
      {"F-WAKE", "no lost wake-up"},
      {"K-LOCK", "daemon liveness by an advisory lock, not a pid"},
      {"K-PIDFILE", "PID file written atomically"},
      {"K-HEARTBEAT", "heartbeat stamping; clients detect dead and unresponsive daemons"},
      {"K-TAKEOVER", "a new daemon takes over a dead or unresponsive daemon's segment"},
      {"K-FENCE", "a replaced daemon takes nothing after the new epoch"},
      {"K-STALE", "only slots of dead holders are recovered, at the tail"},
      {"K-WRITING", "recovery: Writing by a dead owner is reclaimed, never delivered"},
      {"K-CLAIMED", "recovery: a claimed position left Empty is reclaimed after a timeout"},
      {"K-READING", "recovery: Reading by a dead owner is delivered again"},
      {"K-DONE", "recovery: Done by a dead owner is released"},
      {"K-TWO-STEP", "take/finish gives at-least-once processing"},
      {"K-IDEMPOTENT", "recovery may crash and be re-run"},
      {"K-ORPHAN", "cleanup of a dead daemon's segment and files"},
      {"K-CLIENTS", "killed clients are taken off client_count"},
      {"K-CRASH", "crash points in the test build"},
      {"E-CODES", "error codes and messages"},
  };
  return clauses;
}

namespace {
std::mutex g_mutex;
std::map<std::string, std::uint64_t>* g_sink = nullptr;
}  // namespace

void record_clause(const std::string& id) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_sink != nullptr) ++(*g_sink)[id];
}

// Used by the runner to point record_clause at the running check's result.
void set_clause_sink(std::map<std::string, std::uint64_t>* sink) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_sink = sink;
}

}  // namespace memlink::conformance
