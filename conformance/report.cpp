#include "report.hpp"

#include <map>

namespace memlink::conformance {

bool check_reaches(const CheckDef& check, const std::string& adapter) {
  switch (check.scope) {
    case Scope::Adapter: return true;
    case Scope::Protocol:
    case Scope::Reference: return adapter == "reference";
  }
  return false;
}

bool check_reaches(const CheckDef& check, const Params& params) {
  if (params.driver.empty()) return check_reaches(check, params.adapter);
  return check.scope != Scope::Reference && missing_capability(check, params).empty();
}

std::string missing_capability(const CheckDef& check, const Params& params) {
  if (params.driver.empty() || check.scope == Scope::Reference) return "";
  const std::string needs = check.needs;
  for (std::size_t start = 0; start < needs.size();) {
    const std::size_t comma = std::min(needs.find(',', start), needs.size());
    const std::string any_of = needs.substr(start, comma - start);  // "a|b": either will do
    bool claimed = any_of.empty();
    for (std::size_t a = 0; a < any_of.size() && !claimed;) {
      const std::size_t bar = std::min(any_of.find('|', a), any_of.size());
      claimed = params.claims(any_of.substr(a, bar - a));
      a = bar + 1;
    }
    if (!claimed) return any_of.find('|') == std::string::npos ? any_of : "one of " + any_of;
    start = comma + 1;
  }
  return "";
}

std::string capability_for_clause(const std::string& clause) {
  // The capability (DRIVER.md D-CAPS) without which no check can reach the
  // clause through a driver.
  static const std::map<std::string, std::string> needs = {
      {"L-CONST", "spec_layout"},     {"M-NAME", "spec_layout"},       {"M-CREATE", "spec_layout"},
      {"M-OPEN", "spec_layout"},      {"M-PERSIST", "observe"},        {"G-STRIDE", "spec_layout"},
      {"G-DIST", "observe"},          {"G-PLACE", "spec_layout"},      {"G-FIT", "observe"},
      {"C-LAYOUT", "spec_layout"},    {"C-LINES", "spec_layout"},      {"C-INIT", "spec_layout"},
      {"C-FLAGS", "spec_layout"},     {"C-BACKPRESSURE", "backpressure"}, {"R-LAYOUT", "spec_layout"},
      {"R-POSITIONS", "spec_layout"}, {"R-HELD", "stops"},             {"R-PEEK", "peek"},
      {"S-LAYOUT", "spec_layout"},     {"S-STATES", "spec_layout"},
      {"S-TRANSITIONS", "observe"},   {"S-OWNER", "spec_layout"},      {"S-WORD", "spec_layout"},      {"S-CHECKSUM", "spec_layout"},
      {"V-ONCE", "spec_layout"},      {"V-SLOT", "stops"},             {"V-BOUNDS", "spec_layout"},
      {"V-CONNECT", "spec_layout"},   {"T-SEQ", "sequences"},          {"T-COUNTERS", "observe"},
      {"T-BLOCKING", "write_blocking"}, {"T-WAIT", "wait"},            {"F-WORDS", "wait"},
      {"F-WAKE", "wait"},             {"K-LOCK", "crash_recovery"},       {"K-PIDFILE", "spec_layout"},
      {"K-HEARTBEAT", "crash_recovery"}, {"K-TAKEOVER", "crash_recovery"}, {"K-FENCE", "takeover"},
      {"K-STALE", "crash_recovery"},  {"K-WRITING", "stops"},          {"K-CLAIMED", "crash_points"},
      {"K-READING", "two_step"},      {"K-DONE", "stops"},             {"K-TWO-STEP", "two_step"},
      {"K-IDEMPOTENT", "crash_points"}, {"K-ORPHAN", "cleanup"},       {"K-CRASH", "crash_points"},
      {"T-KILLED", "crash_recovery"},
      // The suite truncates or chowns the file named by `segment`; K-CLIENTS
      // reads client_count after a client was killed.
      {"M-TRUNCATE", "spec_layout"},  {"M-OWNER", "spec_layout"},      {"K-CLIENTS", "observe"},
  };
  const auto it = needs.find(clause);
  return it == needs.end() ? "" : it->second;
}

std::vector<ClauseStatus> clause_table(const std::vector<CheckResult>& results, const std::string& target,
                                       const std::vector<std::string>& not_reaching, const Params& params) {
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
    if (s.status != "NOT COVERED") {
      table.push_back(std::move(s));
      continue;
    }
    const std::string cap = params.driver.empty() ? "" : capability_for_clause(c.id);
    if (!params.driver.empty() && std::string(c.id) == "T-LOAN") {
      // An API of the reference library, not of the segment (SPEC T-LOAN):
      // the suite checks it in process, where its adapter uses it.
      s.status = "NOT APPLICABLE";
      s.reason = "the reference library's zero-copy API, checked in process (adapter 'reference'), not through a driver";
    } else if (!cap.empty() && !params.claims(cap)) {
      s.status = "NOT APPLICABLE";
      s.reason = "the driver does not claim capability '" + cap + "' (DRIVER.md D-CAPS)";
    } else if (!params.driver.empty()) {
      s.reason = left_out.empty() ? "no check that ran exercises this clause"
                                  : "no check that ran through the driver exercises this clause (left out: " +
                                        left_out + ")";
    } else {
      s.reason = left_out.empty()
                     ? "no check that ran exercises this clause"
                     : "no check that reaches adapter '" + target + "' exercises this clause (" + left_out +
                           " run only on the reference, in process or through its driver)";
    }
    table.push_back(std::move(s));
  }
  return table;
}

}  // namespace memlink::conformance
