// DRIVER.md D-CAPS from the code: every capability a driver may claim, what
// it promises, and what each check does with it: the checks that need it
// (all_checks()), the clauses only it reaches (capability_for_clause), and
// the scenarios, phases and commands it turns on, read from the tables the
// checks gate on (recovery's scenarios, wakeup's phases, stateful's
// commands). `memlink-conformance --capability-map` prints it; DRIVER.md
// carries it between markers, and a test fails when the two differ.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace memlink::conformance {

struct CapabilityInfo {
  const char* name;
  const char* promise;
};
// Every capability of DRIVER.md D-CAPS, in the order the map lists them.
const std::vector<CapabilityInfo>& capability_list();

// What one check does with one capability ("a writer asleep on a full ring").
struct CapabilityUse {
  std::string capability, check, what;
};
std::vector<CapabilityUse> capability_uses();

// The map, as the Markdown table DRIVER.md carries.
std::string capability_map_markdown();

// The tables the checks gate on (each in its check's file): a thing the
// check does, and the capabilities it needs.
using Gates = std::vector<std::pair<std::string, std::vector<std::string>>>;
Gates stateful_gates();         // checks/stateful.cpp
Gates wakeup_gates();           // checks/wakeup.cpp
Gates recovery_gates();         // checks/recovery.cpp
Gates linearizability_gates();  // checks/linearizability.cpp
Gates segment_gates();          // checks/segment.cpp
Gates launcher_gates();         // launcher.cpp

}  // namespace memlink::conformance
