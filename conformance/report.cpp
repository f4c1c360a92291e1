#include "report.hpp"

namespace memlink::conformance {

bool check_reaches(const CheckDef& check, const std::string& adapter) {
  return adapter == "reference" || std::string(check.scope) == "adapter";
}

std::vector<ClauseStatus> clause_table(const std::vector<CheckResult>& results, const std::string& adapter,
                                       const std::vector<std::string>& not_reaching) {
  std::string left_out;
  for (const auto& n : not_reaching) left_out += (left_out.empty() ? "" : ", ") + n;
  std::vector<ClauseStatus> table;
  for (const Clause& c : spec_clauses()) {
    ClauseStatus s{c.id, c.title, "NOT COVERED", 0, {}, ""};
    bool failed = false;
    for (const CheckResult& r : results) {
      auto it = r.clauses.find(c.id);
      if (it != r.clauses.end() && it->second > 0) {
        s.cases += it->second;
        s.checks.push_back(r.name);
      }
      if (r.failure && r.failure->clause == c.id) failed = true;
    }
    s.status = failed ? "FAIL" : s.cases > 0 ? "PASS" : "NOT COVERED";
    if (s.status == "NOT COVERED")
      s.reason = left_out.empty()
                     ? "no check that ran exercises this clause"
                     : "no check that reaches adapter '" + adapter + "' exercises this clause (" + left_out +
                           " run only on the reference library)";
    table.push_back(std::move(s));
  }
  return table;
}

}  // namespace memlink::conformance
