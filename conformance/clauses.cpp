#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {

namespace {

// A short title per clause, for the report's table; SPEC.md says the rest.
// (A switch over the generated ids: a clause added to SPEC.md without a
// title here is a compiler warning, -Wswitch, and an empty title. Longer
// than 60 lines because it is a table, one line per clause.)
const char* title(ClauseId id) {
  switch (id) {
    case ClauseId::L_CONST: return "constants";
    case ClauseId::M_NAME: return "segment naming: file path or POSIX shm name";
    case ClauseId::M_CREATE: return "create: exclusive, 0600, zero-filled, size limits";
    case ClauseId::M_OPEN: return "open: size limits, NotFound, PermissionDenied";
    case ClauseId::M_OWNER: return "another user's segment is refused unless trusted";
    case ClauseId::M_PERSIST: return "contents persist across unmap and map";
    case ClauseId::M_TRUNCATE: return "shrunk under its users: none dies, each says so";
    case ClauseId::G_STRIDE: return "slot stride";
    case ClauseId::G_DIST: return "slot distribution among priorities";
    case ClauseId::G_PLACE: return "ring placement";
    case ClauseId::G_FIT: return "largest n that fits";
    case ClauseId::C_LAYOUT: return "control region fields and offsets";
    case ClauseId::C_LINES: return "one cache line per writer";
    case ClauseId::C_INIT: return "magic stored last, with release";
    case ClauseId::C_AGE: return "every clause holds at each counter's wrap";
    case ClauseId::C_FLAGS: return "flag bits";
    case ClauseId::C_BACKPRESSURE: return "backpressure 0..1000, advisory";
    case ClauseId::R_LAYOUT: return "ring header layout";
    case ClauseId::R_POSITIONS: return "tail <= head <= tail + capacity";
    case ClauseId::R_ROLES: return "many producers, one consumer";
    case ClauseId::R_CLAIM: return "claim by CAS on head";
    case ClauseId::R_FIFO: return "position order within a ring";
    case ClauseId::R_ORDER: return "Critical before High before Low";
    case ClauseId::R_CAPACITY: return "full ring refuses, changes nothing";
    case ClauseId::R_VISIBLE: return "readable when Ready, not when claimed";
    case ClauseId::R_HELD: return "Reading/Done at tail: InvalidState";
    case ClauseId::R_PEEK: return "peek: next message, unconsumed";
    case ClauseId::R_RELEASE: return "Done -> Empty, then tail + 1";
    case ClauseId::S_LAYOUT: return "slot header layout";
    case ClauseId::S_STATES: return "state values";
    case ClauseId::S_TRANSITIONS: return "Empty->Writing->Ready->Reading->Done->Empty";
    case ClauseId::S_WORD: return "one slot word: state, owner pid and lap";
    case ClauseId::S_OWNER: return "owner pid in the word on Writing/Reading";
    case ClauseId::S_PUBLISH: return "acknowledged only when Ready";
    case ClauseId::S_CHECKSUM: return "CRC32C of the payload";
    case ClauseId::V_ONCE: return "each field read once, validated copy used";
    case ClauseId::V_SLOT: return "a bad slot is dropped, counted, never delivered";
    case ClauseId::V_BOUNDS: return "overflow-checked offsets";
    case ClauseId::V_CONNECT: return "connect validates the segment";
    case ClauseId::T_ENDPOINTS: return "daemon and clients, client_count";
    case ClauseId::T_SEQ: return "sequence numbers";
    case ClauseId::T_COUNTERS: return "client_head and daemon_tail";
    case ClauseId::T_TOO_LARGE: return "oversized payload refused";
    case ClauseId::T_LOAN: return "zero-copy loans and views: the same steps as write and read";
    case ClauseId::T_BLOCKING: return "blocking write waits for space, then Timeout";
    case ClauseId::T_WAIT: return "wait strategies and results";
    case ClauseId::T_SHUTDOWN: return "daemon shutdown";
    case ClauseId::T_KILLED: return "writes continue after a daemon dies";
    case ClauseId::F_WORDS: return "futex words cross processes";
    case ClauseId::F_WAKE: return "no lost wake-up";
    case ClauseId::K_LOCK: return "daemon liveness by an advisory lock, not a pid";
    case ClauseId::K_PIDFILE: return "PID file written atomically";
    case ClauseId::K_HEARTBEAT: return "heartbeat stamping; clients detect dead and unresponsive daemons";
    case ClauseId::K_TAKEOVER: return "a new daemon takes over a dead or unresponsive daemon's segment";
    case ClauseId::K_FENCE: return "a replaced daemon takes nothing after the new epoch";
    case ClauseId::K_STALE: return "only slots of dead holders are recovered, at the tail";
    case ClauseId::K_WRITING: return "recovery: Writing by a dead owner is reclaimed, never delivered";
    case ClauseId::K_CLAIMED: return "recovery: a claimed position left Empty is reclaimed after a timeout";
    case ClauseId::K_READING: return "recovery: Reading by a dead owner is delivered again";
    case ClauseId::K_DONE: return "recovery: Done by a dead owner is released";
    case ClauseId::K_TWO_STEP: return "take/finish gives at-least-once processing";
    case ClauseId::K_IDEMPOTENT: return "recovery may crash and be re-run";
    case ClauseId::K_CLIENTS: return "killed clients are taken off client_count";
    case ClauseId::K_ORPHAN: return "cleanup of a dead daemon's segment and files";
    case ClauseId::K_CRASH: return "crash points in the test build";
    case ClauseId::E_CODES: return "error codes and messages";
  }
  return "";
}

}  // namespace

const char* title_of(ClauseId id) { return title(id); }

const std::vector<Clause>& spec_clauses() {
  static const std::vector<Clause> clauses = [] {
    std::vector<Clause> out;
    for (ClauseId id : spec::all_clauses()) out.push_back({id, title(id)});
    return out;
  }();
  return clauses;
}

}  // namespace memlink::conformance
