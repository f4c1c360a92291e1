// The conformance suite: checks, the clauses they exercise, their results.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
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
};
const std::vector<CheckDef>& all_checks();

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
