// Every shared write predicted: which fields of a SPEC-layout segment one
// step of the stateful check may write, derived from the model's state
// before and after the step, and the check that nothing else moved. A
// field that moved without the model's say-so fails, naming the field, its
// values and the parties SPEC lets write it (C-LAYOUT's "written by"
// column, R-LAYOUT, S-LAYOUT): a stray store into another ring, a reserved
// byte, a slot nobody claimed, the epoch, a counter of the other direction.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "evidence.hpp"
#include "memlink/conformance/verdict.hpp"
#include "memlink/model/model.hpp"

namespace memlink::conformance {

struct FrameStep {
  StepKind kind = StepKind::Write;
  model::Direction direction = model::Direction::ClientToDaemon;  // of the ring the step acts on
  model::Priority priority = model::Priority::Low;                // writes and corruptions
  const model::View* before = nullptr;                            // the model before the step
  const model::View* after = nullptr;                             // and after it
  std::string what;                                               // the step as a report shows it
};

// Each field of `after` whose bytes differ from `before` though `step` may
// not write it. Images of different sizes are one violation; an empty
// image (a segment whose name is gone, T-SHUTDOWN) is not judged.
std::vector<Violation> unpredicted_writes(const FrameStep& step, std::span<const std::byte> before,
                                          std::span<const std::byte> after);

// Between two calls nobody sleeps: every futex's waiters count is 0 (F-WAKE:
// a count that leaked makes every later publish pay a wake for nobody).
std::vector<Violation> quiescent_violations(std::span<const std::byte> image, const std::string& what);

}  // namespace memlink::conformance
