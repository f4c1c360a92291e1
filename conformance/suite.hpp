// The conformance suite: checks, the clauses they exercise, their results.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace memlink::conformance {

// Every clause id of SPEC.md, in order (a test keeps this in step with it).
struct Clause {
  const char* id;
  const char* title;
};
const std::vector<Clause>& spec_clauses();

enum class Depth { Quick, Default, Deep };

struct Params {
  std::string adapter = "reference";
  std::uint64_t seed = 0;
  Depth depth = Depth::Default;
  std::string only;  // run only this check ("" = all)
  // A driver command (DRIVER.md): check the transport it drives, in
  // processes of its own, instead of an in-process adapter.
  std::string driver;
  // What the driver claims (its hello's capabilities); set by the runner.
  std::set<std::string> capabilities;
  std::vector<std::string> crash_points;
  bool claims(const std::string& c) const { return driver.empty() || capabilities.count(c) > 0; }
};

struct Failure {
  std::string clause;       // the clause the failure cites
  std::string description;  // what differed
  std::vector<std::string> counterexample;  // shrunk, one step per line
  std::string replay;       // the command that replays it
};

struct CheckResult {
  std::string name;
  std::string scope;  // "adapter" or "reference library"
  int cases = 0;
  std::map<std::string, std::uint64_t> clauses;  // clause -> times exercised
  std::optional<Failure> failure;
  double seconds = 0;
  std::string notes;  // what the check saw, for the progress line and reports
  std::string picture_html;  // failed: a timeline of the failing history (timeline.hpp), if it has one
};

// Records which clauses a check exercised (the report's "cases" column).
void record_clause(const std::string& id);

struct CheckDef {
  const char* name;
  const char* scope;
  CheckResult (*run)(const Params&);
  // Through a driver: the capabilities it needs (comma-separated, "" for
  // none), or nullptr if it cannot run through one; and the function that
  // runs it there (nullptr: `run`, which goes through adapter_for()).
  const char* driver_needs = nullptr;
  CheckResult (*run_driver)(const Params&) = nullptr;
};
const std::vector<CheckDef>& all_checks();

// Runs one check as memlink-conformance does: the clauses it exercised
// recorded in the result, a driver that crashed, hung or printed garbage
// turned into a failure naming the DRIVER.md clause, its name, scope and
// time filled in. Whether it reaches params' implementation at all:
// check_reaches (report.hpp).
CheckResult run_check(const CheckDef& def, const Params& params);

// The individual checks (in stateful.cpp, properties.cpp, concurrency.cpp).
CheckResult run_stateful(const Params& params);
CheckResult run_geometry(const Params& params);
CheckResult run_bounds(const Params& params);
CheckResult run_checksum(const Params& params);
CheckResult run_linearizability(const Params& params);
CheckResult run_layout(const Params& params);
CheckResult run_connect_validation(const Params& params);
CheckResult run_wakeup(const Params& params);
CheckResult run_segment(const Params& params);
CheckResult run_recovery(const Params& params);
CheckResult run_exploration(const Params& params);
// The cross-process checks through driver processes (driver_checks.cpp).
CheckResult run_driver_linearizability(const Params& params);
CheckResult run_driver_wakeup(const Params& params);
CheckResult run_driver_recovery(const Params& params);
CheckResult run_driver_segment(const Params& params);
CheckResult run_driver_hostile(const Params& params);
// --reproduce for the exploration check: "<scenario config>@<decisions>".
bool valid_exploration_reproduce(const std::string& s);
void set_exploration_reproduce(const std::string& s);

// Shared by the RapidCheck-based checks: runs `property` and fills `out`.
struct RcOutcome {
  bool passed = true;
  int cases = 0;
  std::string description;
  std::vector<std::string> counterexample;
  std::string reproduce;  // RapidCheck's reproduce string, if it gave one
};

}  // namespace memlink::conformance
