// What the report may claim about the implementation under test.
//
// A clause is PASS for an implementation only if a check exercised it on
// that implementation. The checks whose scope is "reference library" build
// the reference's Daemon and Client themselves: in process they say
// something about the reference, nothing about another adapter, so for any
// other adapter they do not run and their clauses stay NOT COVERED, with
// the reason. Through a driver (DRIVER.md) a check runs only if the driver
// claims the capabilities it needs; a clause that needs a capability the
// driver does not claim is NOT APPLICABLE, naming it.
#pragma once

#include <string>
#include <vector>

#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {

// In process: whether `check` exercises `adapter` (else it would exercise
// only the reference library).
bool check_reaches(const CheckDef& check, const std::string& adapter);
// In process or through params.driver.
bool check_reaches(const CheckDef& check, const Params& params);
// Through a driver: the first capability `check` needs that the driver does
// not claim ("" if none, or if it cannot run through a driver at all).
std::string missing_capability(const CheckDef& check, const Params& params);
// The capability a clause needs through a driver, or "" (every transport).
std::string capability_for_clause(ClauseId clause);

struct ClauseStatus {
  ClauseId id;
  std::string title;
  Verdict status = Verdict::NotCovered;
  std::uint64_t cases = 0;
  std::vector<std::string> checks;  // the checks that exercised it
  std::string reason;               // NOT APPLICABLE, NOT COVERED: why
};

// One row per SPEC clause from the results of the checks that ran;
// `not_reaching` names the checks left out because they do not reach the
// implementation under test (`target`: the adapter, or "driver NAME").
// With params.driver set, a clause no check exercised is NOT APPLICABLE if
// it needs a capability the driver does not claim.
std::vector<ClauseStatus> clause_table(const std::vector<CheckResult>& results, const std::string& target,
                                       const std::vector<std::string>& not_reaching, const Params& params = {});

}  // namespace memlink::conformance
