// What the report may claim about the implementation under test.
//
// A clause is PASS for an implementation only if a check exercised it on
// that implementation. The checks whose scope is "reference library" build
// the reference's Daemon and Client themselves, whatever --adapter says:
// they say something about the reference, nothing about another adapter,
// so for any other adapter they do not run and their clauses stay NOT
// COVERED, with the reason.
#pragma once

#include <string>
#include <vector>

#include "suite.hpp"

namespace memlink::conformance {

// Whether `check` exercises `adapter` (else it would exercise only the
// reference library).
bool check_reaches(const CheckDef& check, const std::string& adapter);

struct ClauseStatus {
  std::string id, title, status;  // PASS, FAIL or NOT COVERED
  std::uint64_t cases = 0;
  std::vector<std::string> checks;  // the checks that exercised it
  std::string reason;               // NOT COVERED: why
};

// One row per SPEC clause from the results of the checks that ran;
// `not_reaching` names the checks left out because they do not reach the
// adapter under test.
std::vector<ClauseStatus> clause_table(const std::vector<CheckResult>& results, const std::string& adapter,
                                       const std::vector<std::string>& not_reaching);

}  // namespace memlink::conformance
