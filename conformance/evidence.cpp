#include "evidence.hpp"

namespace memlink::conformance {
namespace {

using model::Direction;
using model::Model;
using model::Priority;
using model::SlotState;
using shm::ErrorCode;

bool is(const model::Outcome& o, ErrorCode c) { return o.error == c; }

// Rings of d whose oldest message a read could take (past Writing).
int readable_rings(const Model& m, Direction d) {
  int n = 0;
  for (Priority p : shm::kAllPriorities) {
    const auto s = m.oldest_state(d, p);
    n += s.has_value() && *s != SlotState::Writing;
  }
  return n;
}

// A ring of d whose oldest message is still being written: R-VISIBLE says a
// read passes over it.
bool writing_at_a_tail(const Model& m, Direction d) {
  for (Priority p : shm::kAllPriorities)
    if (m.oldest_state(d, p) == SlotState::Writing) return true;
  return false;
}

void write_seen(const StepFacts& s, const Model& after, const model::Outcome& want, std::vector<ClauseId>& out) {
  if (is(want, ErrorCode::Full) || is(want, ErrorCode::Timeout)) out.push_back(ClauseId::R_CAPACITY);
  if (is(want, ErrorCode::Timeout)) out.push_back(ClauseId::T_BLOCKING);
  if (is(want, ErrorCode::MessageTooLarge)) out.push_back(ClauseId::T_TOO_LARGE);
  if (is(want, ErrorCode::Disconnected)) out.push_back(ClauseId::T_SHUTDOWN);
  if (!want.ok()) return;
  if (s.sequences && want.sequence > 0) out.push_back(ClauseId::T_SEQ);  // a ring's second number, or later
  // A slot serving its second lap: a release (R-RELEASE) made it free again.
  if (after.view().rings[std::size_t(s.direction)][std::size_t(s.priority)].head > after.capacity(s.priority))
    out.push_back(ClauseId::R_RELEASE);
}

void read_seen(const StepFacts& s, const Model& before, const model::Outcome& want, std::vector<ClauseId>& out) {
  if (want.message) {
    out.push_back(ClauseId::S_PUBLISH);  // an acknowledged write, delivered
    if (before.pending(s.direction, want.message->priority) >= 2) out.push_back(ClauseId::R_FIFO);
    if (readable_rings(before, s.direction) >= 2) out.push_back(ClauseId::R_ORDER);
    if (writing_at_a_tail(before, s.direction)) out.push_back(ClauseId::R_VISIBLE);
  }
  if (is(want, ErrorCode::CorruptSegment)) out.push_back(ClauseId::V_SLOT);
  if (is(want, ErrorCode::InvalidState)) out.push_back(ClauseId::R_HELD);
  if (is(want, ErrorCode::Empty) && writing_at_a_tail(before, s.direction)) out.push_back(ClauseId::R_VISIBLE);
}

}  // namespace

std::vector<ClauseId> clauses_seen(const StepFacts& s, const Model& before, const Model& after,
                                   const model::Outcome& want) {
  std::vector<ClauseId> out;
  if (want.error) out.push_back(ClauseId::E_CODES);  // an error the implementation also gave, with a detail
  switch (s.kind) {
    case StepKind::Write:
    case StepKind::WriteBlocking: write_seen(s, after, want, out); break;
    case StepKind::Read: read_seen(s, before, want, out); break;
    case StepKind::Peek:
      if (want.message) out.push_back(ClauseId::R_PEEK);
      if (is(want, ErrorCode::CorruptSegment)) out.push_back(ClauseId::V_SLOT);
      if (is(want, ErrorCode::InvalidState)) out.push_back(ClauseId::R_HELD);
      break;
    case StepKind::SetBackpressure:
      if (is(want, ErrorCode::InvalidArgument)) out.push_back(ClauseId::C_BACKPRESSURE);  // out of range, refused
      break;
    case StepKind::Connect:
      // After the shutdown a refused connect shows T-SHUTDOWN whatever its
      // code: the daemon may have removed the name (NotFound, which the
      // check accepts for the model's code), so no version check was seen.
      if (before.is_shut_down()) {
        if (!want.ok()) out.push_back(ClauseId::T_SHUTDOWN);
      } else if (is(want, ErrorCode::ProtocolMismatch)) {
        out.push_back(ClauseId::V_CONNECT);
      }
      if (want.ok()) out.push_back(ClauseId::T_ENDPOINTS);
      break;
    case StepKind::Disconnect: out.push_back(ClauseId::T_ENDPOINTS); break;
    case StepKind::Reopen:
      if (s.observed &&
          (before.deliverable(Direction::ClientToDaemon) + before.deliverable(Direction::DaemonToClient)) > 0)
        out.push_back(ClauseId::M_PERSIST);  // the state, messages and all, compared after mapping again
      break;
    case StepKind::StopWriter:
    case StepKind::StopReader:
      if (want.ok() && s.observed) out.push_back(ClauseId::S_TRANSITIONS);
      break;
    case StepKind::Corrupt:
    case StepKind::Recover: break;  // Recover records its own (K-WRITING, K-READING, K-DONE)
    case StepKind::Shutdown:
      if (s.observed) out.push_back(ClauseId::T_SHUTDOWN);
      break;
  }
  return out;
}

std::size_t acknowledged_pending(const Model& m, Direction d) { return m.deliverable(d); }

}  // namespace memlink::conformance
