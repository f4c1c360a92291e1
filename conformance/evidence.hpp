// What one step of the stateful check showed (nothing PASS that was not
// seen): the clauses whose behaviour the step exercised, judged from the
// model before and after it and the outcome the spec required (which the
// implementation matched, or the step failed). A clause is recorded only
// where its behaviour happened: FIFO needs a delivery from a ring that held
// two messages, priority order a read that chose between two priorities
// pending at once, capacity a full ring refusing a write, a delivery clause
// a message delivered.
#pragma once

#include <string>
#include <vector>

#include "memlink/conformance/verdict.hpp"
#include "memlink/model/model.hpp"

namespace memlink::conformance {

enum class StepKind {
  Write,
  WriteBlocking,
  Read,
  Peek,
  SetBackpressure,
  Connect,
  Disconnect,
  Reopen,
  StopWriter,
  StopReader,
  Corrupt,  // a hostile peer changes a field; what it does shows at the next read
  Shutdown,
  Recover,  // stopped processes die and the consumer recovers (K-STALE)
};

struct StepFacts {
  StepKind kind = StepKind::Write;
  model::Direction direction = model::Direction::ClientToDaemon;  // of the ring the step acts on
  model::Priority priority = model::Priority::Low;                // writes
  bool observed = false;   // the whole state was compared after the step (capability observe)
  bool sequences = false;  // sequence numbers were compared (capability sequences)
};

std::vector<ClauseId> clauses_seen(const StepFacts& step, const model::Model& before, const model::Model& after,
                                   const model::Outcome& want);

// Acknowledged messages of direction d the model holds, ready or not yet
// read: what a read that finds nothing failed to deliver.
std::size_t acknowledged_pending(const model::Model& m, model::Direction d);

}  // namespace memlink::conformance
