// compare_outcome names the clause a difference breaks: an error about room
// or size is filed under the clause about room or size, whatever operation
// met it (a mutant that refused a payload of exactly the slot size was
// filed under S-TRANSITIONS, the clause of the stopped writer that met it).
#include "compare.hpp"

#include <gtest/gtest.h>

#include "rc_runner.hpp"

namespace memlink::conformance {
namespace {

using shm::ErrorCode;

// The clause compare_outcome failed with, or nullopt if it passed.
std::optional<Citation> failed_clause(ClauseId decided_by, std::optional<ErrorCode> want_error,
                                      std::optional<ErrorCode> got_error) {
  model::Outcome want;
  want.clause = decided_by;
  want.error = want_error;
  Got got;
  got.error = got_error;
  got.detail = got_error ? "what failed" : "";
  clear_last_violation();
  try {
    compare_outcome("writer stops after claim c2d critical 100 bytes", want, got);
  } catch (...) {
    if (auto v = take_last_violation()) return v->clause;
    ADD_FAILURE() << "compare_outcome threw without a violation";
  }
  return std::nullopt;
}

TEST(Compare, ATooLargeRefusalOfAPayloadThatFitsIsNamedTooLarge) {
  const auto c = failed_clause(ClauseId::S_TRANSITIONS, std::nullopt, ErrorCode::MessageTooLarge);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->is(ClauseId::T_TOO_LARGE)) << *c;
}

TEST(Compare, AnOversizedPayloadTakenIsNamedTooLarge) {
  const auto c = failed_clause(ClauseId::S_TRANSITIONS, ErrorCode::MessageTooLarge, std::nullopt);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->is(ClauseId::T_TOO_LARGE)) << *c;
}

TEST(Compare, AFullRefusalIsNamedCapacity) {
  const auto c = failed_clause(ClauseId::S_TRANSITIONS, std::nullopt, ErrorCode::Full);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->is(ClauseId::R_CAPACITY)) << *c;
}

TEST(Compare, OtherDifferencesAreNamedByTheClauseThatDecidedTheOutcome) {
  const auto c = failed_clause(ClauseId::S_TRANSITIONS, std::nullopt, ErrorCode::CorruptSegment);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->is(ClauseId::S_TRANSITIONS)) << *c;
  EXPECT_FALSE(failed_clause(ClauseId::S_TRANSITIONS, ErrorCode::Full, ErrorCode::Full).has_value());
}

}  // namespace
}  // namespace memlink::conformance
