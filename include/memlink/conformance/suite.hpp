// The conformance suite: checks, the clauses they exercise, their results.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "memlink/conformance/limits.hpp"
#include "memlink/conformance/verdict.hpp"

namespace memlink::conformance {

namespace driver {
class Launcher;
}

// Every clause of SPEC.md, in its order, with a title for the report.
struct Clause {
  ClauseId id;
  const char* title;
};
const std::vector<Clause>& spec_clauses();
const char* title_of(ClauseId id);

enum class Depth { Quick, Default, Deep };
const char* depth_name(Depth d);  // "quick", "default", "deep"

struct Params {
  std::string adapter = "reference";
  std::uint64_t seed = 0;
  Depth depth = Depth::Default;
  std::string only;  // run only this check ("" = all)
  // A driver command (DRIVER.md): check the transport it drives, in
  // processes of its own, instead of an in-process adapter.
  std::string driver;
  // What the driver claims (its hello's capabilities) and accepts (its
  // limits, D-LIMITS); set by the runner. In process: everything, and the
  // SPEC's limits.
  std::set<std::string> capabilities;
  std::vector<std::string> crash_points;
  driver::Limits limits = driver::spec_limits();
  bool claims(const std::string& c) const { return driver.empty() || capabilities.count(c) > 0; }
  // Where the check's driver processes come from (launcher.hpp); run_check
  // sets it for the check's duration, so that its processes are reused.
  std::shared_ptr<driver::Launcher> launcher;
  // The running check's clause counter, handed to it by run_check: a check
  // records a clause where it saw the clause's behaviour (the report's
  // "checks run" column; nothing is PASS that no check saw).
  ClauseCounter* counter = nullptr;
  void record(ClauseId c, std::uint64_t n = 1) const {
    if (counter != nullptr) counter->record(c, n);
  }
};

struct Failure {
  Citation clause;                          // the clause (or driver rule) the failure cites
  std::string description;                  // "[CLAUSE] what differed"
  std::vector<std::string> counterexample;  // shrunk, one step per line
  std::string replay;                       // the command that replays it
  static Failure of(const Violation& v, std::vector<std::string> counterexample = {}, std::string replay = {}) {
    return Failure{v.clause, v.describe(), std::move(counterexample), std::move(replay)};
  }
};

struct CheckResult {
  std::string name;
  std::string scope;  // "adapter", "driver protocol", "reference library" or "driver"
  int cases = 0;
  std::map<ClauseId, std::uint64_t> clauses;  // clause -> times exercised
  std::optional<Failure> failure;
  double seconds = 0;
  std::string notes;         // what the check saw, for the progress line and reports
  std::string picture_html;  // failed: a timeline of the failing history (timeline.hpp), if it has one
};

// What a check runs on, and so which implementations it can say anything about.
enum class Scope {
  Adapter,    // the Adapter interface (adapter.hpp): any in-process adapter, or a driver through driver_adapter
  Protocol,   // driver processes (launcher.hpp): a driver, or the reference driver in process (--adapter reference)
  Reference,  // the reference library's own code (exploration, bounds, checksum): the reference only
};
const char* scope_name(Scope s);  // "adapter", "driver protocol", "reference library"

struct CheckDef {
  const char* name;
  Scope scope;
  CheckResult (*run)(const Params&);
  // The capabilities (DRIVER.md D-CAPS) it needs: comma-separated, each
  // required; "a|b" is either. "" for none.
  const char* needs = "";
};
const std::vector<CheckDef>& all_checks();

// Runs one check as memlink-conformance does: the clauses it exercised
// recorded in the result, a driver that crashed, hung or printed garbage
// turned into a failure naming the DRIVER.md clause, its name, scope and
// time filled in. Whether it reaches params' implementation at all:
// check_reaches (report.hpp).
CheckResult run_check(const CheckDef& def, const Params& params);

// The individual checks.
CheckResult run_stateful(const Params& params);            // conformance/checks/stateful.cpp
CheckResult run_geometry(const Params& params);            // conformance/checks/geometry.cpp
CheckResult run_bounds(const Params& params);              // conformance/checks/bounds.cpp
CheckResult run_checksum(const Params& params);            // conformance/checks/checksum.cpp
CheckResult run_layout(const Params& params);              // conformance/checks/layout.cpp
CheckResult run_connect_validation(const Params& params);  // conformance/checks/layout.cpp
CheckResult run_linearizability(const Params& params);     // conformance/checks/linearizability.cpp
CheckResult run_hostile_reads(const Params& params);       // conformance/checks/hostile_reads.cpp
CheckResult run_wakeup(const Params& params);              // conformance/checks/wakeup.cpp
CheckResult run_recovery(const Params& params);            // conformance/checks/recovery.cpp
CheckResult run_segment(const Params& params);             // conformance/checks/segment.cpp
CheckResult run_exploration(const Params& params);         // conformance/checks/exploration.cpp
// --reproduce for the exploration check: "<scenario config>@<decisions>".
bool valid_exploration_reproduce(const std::string& s);
void set_exploration_reproduce(const std::string& s);

// Shared by the RapidCheck-based checks: runs `property` and fills `out`.
struct RcOutcome {
  bool passed = true;
  int cases = 0;
  std::optional<Violation> violation;  // what the failing case broke, if it said (fail_case)
  std::string description;
  std::vector<std::string> counterexample;
  std::string reproduce;             // RapidCheck's reproduce string, if it gave one
  bool replayed_passes = false;      // --reproduce: the replayed case passed
  bool shrink_budget_spent = false;  // shrinking stopped at its budget (not minimal)
};

}  // namespace memlink::conformance
