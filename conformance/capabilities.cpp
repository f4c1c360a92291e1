#include "capabilities.hpp"

#include <map>
#include <set>

#include "memlink/conformance/report.hpp"
#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {

const std::vector<CapabilityInfo>& capability_list() {
  static const std::vector<CapabilityInfo> caps = {
      {"priorities", "the three priorities 0 critical, 1 high, 2 low, read highest first (SPEC R-ORDER)"},
      {"daemon_writes", "the daemon can write and the reading client read (the d2c direction)"},
      {"write_blocking", "`write_blocking` waits for room (T-BLOCKING)"},
      {"wait", "`wait` for a message from another process (T-WAIT, F-WAKE)"},
      {"peek", "`peek` shows the next message without consuming it (R-PEEK)"},
      {"two_step", "`take` / `finish` (K-TWO-STEP): a reader killed between them gets its message delivered again"},
      {"sequences", "every message carries its sequence number: its position in its ring (SPEC T-SEQ)"},
      {"backpressure", "`set_backpressure` of 0..1000, refusing more (C-BACKPRESSURE)"},
      {"crash_recovery",
       "after kill -9 of any process, a new daemon `create`d on the same segment keeps every acknowledged message "
       "(K-TAKEOVER, K-STALE)"},
      {"takeover",
       "a new daemon replaces a *live but silent* (SIGSTOPped) one after `heartbeat_timeout_ms`; the old one, resumed, "
       "answers `Disconnected` (K-FENCE)"},
      {"cleanup", "`cleanup` removes what a dead daemon left (K-ORPHAN)"},
      {"crash_points", "`arm` with action crash: the process kills itself at a named point (D-ARM)"},
      {"pause_points", "`arm` with action stop or hold: the process (or the thread) stops at a named point (D-ARM)"},
      {"stops", "`stop_writer`, `stop_reader`, `recover`, `corrupt`: the model's crash simulations (D-STOPS)"},
      {"observe", "`observe` returns SPEC's observable state (D-CONTROL)"},
      {"spec_layout",
       "the segment is the file named by `segment`, laid out exactly as SPEC.md says; the suite reads, writes, "
       "truncates and (as root) chowns it"},
      {"reset", "`reset` makes a process as new, so that it serves case after case (D-RESET)"},
      {"aged",
       "`create` with `age` formats the segment as if it had served for a long time: positions and epoch just "
       "before their wraps (SPEC C-AGE)"},
      {"workload", "`workload` runs a chaos role (D-WORKLOAD)"},
  };
  return caps;
}

namespace {

// "a|b" -> {"a", "b"}
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start <= s.size();) {
    const std::size_t end = std::min(s.find(sep, start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string joined(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : sep) + x;
  return out;
}

void add_gates(std::vector<CapabilityUse>& out, const char* check, const Gates& gates) {
  for (const auto& [what, needs] : gates)
    for (const auto& cap : needs) {
      std::vector<std::string> others;
      for (const auto& o : needs)
        if (o != cap) others.push_back(o);
      out.push_back({cap, check, what + (others.empty() ? "" : " (with " + joined(others, ", ") + ")")});
    }
}

}  // namespace

std::vector<CapabilityUse> capability_uses() {
  std::vector<CapabilityUse> out;
  add_gates(out, "every check", launcher_gates());
  out.push_back({"workload", "memlink-chaos --driver",
                 "its writer, reader and daemon processes (without it chaos refuses the driver)"});
  add_gates(out, "stateful", stateful_gates());
  add_gates(out, "linearizability", linearizability_gates());
  add_gates(out, "wakeup", wakeup_gates());
  add_gates(out, "recovery", recovery_gates());
  add_gates(out, "segment", segment_gates());
  return out;
}

std::string capability_map_markdown() {
  std::map<std::string, std::vector<std::string>> checks, clauses, uses;
  for (const auto& def : all_checks())
    for (const auto& all_of : split(def.needs, ','))
      for (const auto& cap : split(all_of, '|'))
        checks[cap].push_back(std::string(def.name) + (all_of.find('|') != std::string::npos
                                                           ? " (either of " + joined(split(all_of, '|'), ", ") + ")"
                                                           : ""));
  for (const auto& c : spec_clauses())
    if (const std::string cap = capability_for_clause(c.id); !cap.empty())
      clauses[cap].push_back(std::string(spec::name(c.id)));
  for (const auto& u : capability_uses()) uses[u.capability].push_back(u.check + ": " + u.what);
  std::string md =
      "| capability | the driver promises | checks that need it | clauses only it reaches | what else it turns on |\n"
      "|---|---|---|---|---|\n";
  for (const auto& c : capability_list()) {
    auto cell = [](const std::vector<std::string>& v) { return v.empty() ? std::string("—") : joined(v, "; "); };
    md += std::string("| `") + c.name + "` | " + c.promise + " | " + cell(checks[c.name]) + " | " +
          cell(clauses[c.name]) + " | " + cell(uses[c.name]) + " |\n";
  }
  return md;
}

}  // namespace memlink::conformance
