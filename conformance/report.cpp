#include "memlink/conformance/report.hpp"

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

std::string capability_for_clause(ClauseId clause) {
  // The capability (DRIVER.md D-CAPS) without which no check can reach the
  // clause through a driver. (Longer than 60 lines because it is a table,
  // one line per clause that needs one.)
  static const std::map<ClauseId, std::string> needs = {
      {ClauseId::L_CONST, "spec_layout"},
      {ClauseId::M_NAME, "spec_layout"},
      {ClauseId::M_CREATE, "spec_layout"},
      {ClauseId::M_OPEN, "spec_layout"},
      {ClauseId::M_PERSIST, "observe"},
      {ClauseId::G_STRIDE, "spec_layout"},
      {ClauseId::G_DIST, "observe"},
      {ClauseId::G_PLACE, "spec_layout"},
      {ClauseId::G_FIT, "observe"},
      {ClauseId::C_LAYOUT, "spec_layout"},
      {ClauseId::C_LINES, "spec_layout"},
      {ClauseId::C_INIT, "spec_layout"},
      {ClauseId::C_AGE, "aged"},
      {ClauseId::C_FLAGS, "spec_layout"},
      {ClauseId::C_BACKPRESSURE, "backpressure"},
      {ClauseId::R_LAYOUT, "spec_layout"},
      {ClauseId::R_POSITIONS, "spec_layout"},
      {ClauseId::R_HELD, "stops"},
      {ClauseId::R_PEEK, "peek"},
      {ClauseId::S_LAYOUT, "spec_layout"},
      {ClauseId::S_STATES, "spec_layout"},
      {ClauseId::S_TRANSITIONS, "observe"},
      {ClauseId::S_OWNER, "spec_layout"},
      {ClauseId::S_WORD, "spec_layout"},
      {ClauseId::S_CHECKSUM, "spec_layout"},
      {ClauseId::V_ONCE, "spec_layout"},
      {ClauseId::V_SLOT, "stops"},
      {ClauseId::V_BOUNDS, "spec_layout"},
      {ClauseId::V_CONNECT, "spec_layout"},
      {ClauseId::T_SEQ, "sequences"},
      {ClauseId::T_COUNTERS, "observe"},
      {ClauseId::T_BLOCKING, "write_blocking"},
      {ClauseId::T_WAIT, "wait"},
      {ClauseId::F_WORDS, "wait"},
      {ClauseId::F_WAKE, "wait"},
      {ClauseId::K_LOCK, "crash_recovery"},
      {ClauseId::K_PIDFILE, "spec_layout"},
      {ClauseId::K_HEARTBEAT, "crash_recovery"},
      {ClauseId::K_TAKEOVER, "crash_recovery"},
      {ClauseId::K_FENCE, "takeover"},
      {ClauseId::K_STALE, "crash_recovery"},
      {ClauseId::K_WRITING, "stops"},
      {ClauseId::K_CLAIMED, "crash_points"},
      {ClauseId::K_READING, "two_step"},
      {ClauseId::K_DONE, "stops"},
      {ClauseId::K_TWO_STEP, "two_step"},
      {ClauseId::K_IDEMPOTENT, "crash_points"},
      {ClauseId::K_ORPHAN, "cleanup"},
      {ClauseId::K_CRASH, "crash_points"},
      {ClauseId::T_KILLED, "crash_recovery"},
      // The suite truncates or chowns the file named by `segment`; K-CLIENTS
      // reads client_count after a client was killed.
      {ClauseId::M_TRUNCATE, "spec_layout"},
      {ClauseId::M_OWNER, "spec_layout"},
      {ClauseId::K_CLIENTS, "observe"},
  };
  const auto it = needs.find(clause);
  return it == needs.end() ? "" : it->second;
}

std::vector<ClauseStatus> clause_table(const std::vector<CheckResult>& results, const std::string& target,
                                       const std::vector<std::string>& not_reaching, const Params& params) {
  std::string left_out, failed_first;
  for (const auto& n : not_reaching) left_out += (left_out.empty() ? "" : ", ") + n;
  for (const auto& r : results)
    if (r.failure) failed_first += (failed_first.empty() ? "" : ", ") + r.name;
  // Why no check saw a clause: the checks that could have stopped at their
  // first failure, or never ran here.
  const std::string stopped = failed_first.empty() ? "" : "; " + failed_first + " stopped at a failure first";
  std::vector<ClauseStatus> table;
  for (const Clause& c : spec_clauses()) {
    ClauseStatus s{c.id, c.title, Verdict::NotCovered, 0, {}, ""};
    bool failed = false;
    for (const CheckResult& r : results) {
      auto it = r.clauses.find(c.id);
      if (it != r.clauses.end() && it->second > 0) {
        s.cases += it->second;
        s.checks.push_back(r.name);
      }
      if (r.failure && r.failure->clause.is(c.id)) failed = true;
    }
    s.status = failed ? Verdict::Fail : s.cases > 0 ? Verdict::Pass : Verdict::NotCovered;
    if (s.status != Verdict::NotCovered) {
      table.push_back(std::move(s));
      continue;
    }
    const std::string cap = params.driver.empty() ? "" : capability_for_clause(c.id);
    if (!params.driver.empty() && c.id == ClauseId::T_LOAN) {
      // An API of the reference library, not of the segment (SPEC T-LOAN):
      // the suite checks it in process, where its adapter uses it.
      s.status = Verdict::NotApplicable;
      s.reason =
          "the reference library's zero-copy API, checked in process (adapter 'reference'), not through a driver";
    } else if (!cap.empty() && !params.claims(cap)) {
      s.status = Verdict::NotApplicable;
      s.reason = "the driver does not claim capability '" + cap + "' (DRIVER.md D-CAPS)";
    } else if (!params.driver.empty()) {
      s.reason = "no check that ran through the driver saw this clause's behaviour" + stopped +
                 (left_out.empty() ? "" : " (left out here: " + left_out + ")");
    } else {
      s.reason =
          "no check that reaches adapter '" + target + "' saw this clause's behaviour" + stopped +
          (left_out.empty() ? "" : " (" + left_out + " run only on the reference, in process or through its driver)");
    }
    table.push_back(std::move(s));
  }
  return table;
}

}  // namespace memlink::conformance
