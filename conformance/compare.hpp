// Comparing what an implementation did with what the model says the spec
// requires. Every comparison records the clause it checks; a difference
// fails the running RapidCheck case with "[CLAUSE] what differed".
#pragma once

#include <optional>
#include <string>

#include "memlink/conformance/adapter.hpp"
#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {

// An adapter's result, in the model's terms.
struct Got {
  std::optional<shm::ErrorCode> error;
  std::string detail;
  std::optional<model::Message> message;
  std::uint64_t sequence = 0;
  std::uint32_t length = 0;
};

Got got_from(const shm::Status& s);
Got got_from(const shm::Result<std::uint64_t>& r);  // write: the sequence number
Got got_from(const shm::Result<model::Message>& r);
Got got_from(const shm::Result<PeekInfo>& r);

// Whether sequence numbers are compared (T-SEQ, R-FIFO by sequence): not for
// an implementation that does not claim "sequences" (DRIVER.md D-CAPS); its
// FIFO order is then judged by the payloads alone.
void compare_sequences(bool on);

void compare_outcome(const std::string& operation, const model::Outcome& want, const Got& got);
// The whole observable state; records the clauses whose fields it saw moved.
void compare_views(const Params& params, const model::View& want, const model::View& got);
// Ring capacities only (G-FIT, G-DIST), right after creation.
void compare_geometry(const Params& params, const model::View& want, const model::View& got);

}  // namespace memlink::conformance
