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

void write_seen(const StepFacts& s, const Model& after, const model::Outcome& want, std::vector<std::string>& out) {
  if (is(want, ErrorCode::Full) || is(want, ErrorCode::Timeout)) out.push_back("R-CAPACITY");
  if (is(want, ErrorCode::Timeout)) out.push_back("T-BLOCKING");
  if (is(want, ErrorCode::MessageTooLarge)) out.push_back("T-TOO-LARGE");
  if (is(want, ErrorCode::Disconnected)) out.push_back("T-SHUTDOWN");
  if (!want.ok()) return;
  if (s.sequences && want.sequence > 0) out.push_back("T-SEQ");  // a ring's second number, or later
  // A slot serving its second lap: a release (R-RELEASE) made it free again.
  if (after.view().rings[std::size_t(s.direction)][std::size_t(s.priority)].head > after.capacity(s.priority))
    out.push_back("R-RELEASE");
}

void read_seen(const StepFacts& s, const Model& before, const model::Outcome& want, std::vector<std::string>& out) {
  if (want.message) {
    out.push_back("S-PUBLISH");  // an acknowledged write, delivered
    if (before.pending(s.direction, want.message->priority) >= 2) out.push_back("R-FIFO");
    if (readable_rings(before, s.direction) >= 2) out.push_back("R-ORDER");
    if (writing_at_a_tail(before, s.direction)) out.push_back("R-VISIBLE");
  }
  if (is(want, ErrorCode::CorruptSegment)) out.push_back("V-SLOT");
  if (is(want, ErrorCode::InvalidState)) out.push_back("R-HELD");
  if (is(want, ErrorCode::Empty) && writing_at_a_tail(before, s.direction)) out.push_back("R-VISIBLE");
}

}  // namespace

std::vector<std::string> clauses_seen(const StepFacts& s, const Model& before, const Model& after,
                                      const model::Outcome& want) {
  std::vector<std::string> out;
  if (want.error) out.push_back("E-CODES");  // an error the implementation also gave, with a detail
  switch (s.kind) {
    case StepKind::Write:
    case StepKind::WriteBlocking: write_seen(s, after, want, out); break;
    case StepKind::Read: read_seen(s, before, want, out); break;
    case StepKind::Peek:
      if (want.message) out.push_back("R-PEEK");
      if (is(want, ErrorCode::CorruptSegment)) out.push_back("V-SLOT");
      if (is(want, ErrorCode::InvalidState)) out.push_back("R-HELD");
      break;
    case StepKind::SetBackpressure:
      if (is(want, ErrorCode::InvalidArgument)) out.push_back("C-BACKPRESSURE");  // out of range, refused
      break;
    case StepKind::Connect:
      if (is(want, ErrorCode::ProtocolMismatch)) out.push_back("V-CONNECT");
      if (is(want, ErrorCode::Disconnected)) out.push_back("T-SHUTDOWN");
      if (want.ok()) out.push_back("T-ENDPOINTS");
      break;
    case StepKind::Disconnect: out.push_back("T-ENDPOINTS"); break;
    case StepKind::Reopen:
      if (s.observed && (before.deliverable(Direction::ClientToDaemon) + before.deliverable(Direction::DaemonToClient)) > 0)
        out.push_back("M-PERSIST");  // the state, messages and all, compared after mapping again
      break;
    case StepKind::StopWriter:
    case StepKind::StopReader:
      if (want.ok() && s.observed) out.push_back("S-TRANSITIONS");
      break;
    case StepKind::Corrupt: break;
    case StepKind::Shutdown:
      if (s.observed) out.push_back("T-SHUTDOWN");
      break;
  }
  return out;
}

std::size_t acknowledged_pending(const Model& m, Direction d) { return m.deliverable(d); }

}  // namespace memlink::conformance
