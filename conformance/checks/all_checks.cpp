#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {

const char* scope_name(Scope s) {
  switch (s) {
    case Scope::Adapter: return "adapter";
    case Scope::Protocol: return "driver protocol";
    case Scope::Reference: return "reference library";
  }
  return "?";
}

const std::vector<CheckDef>& all_checks() {
  // name, scope, run, the capabilities it needs.
  static const std::vector<CheckDef> checks = {
      {"stateful", Scope::Adapter, run_stateful, ""},
      {"geometry", Scope::Adapter, run_geometry, "spec_layout,observe"},
      {"layout", Scope::Adapter, run_layout, "spec_layout,observe,stops"},
      {"connect-validation", Scope::Adapter, run_connect_validation, "spec_layout,observe,stops"},
      {"linearizability", Scope::Protocol, run_linearizability, ""},
      {"wakeup", Scope::Protocol, run_wakeup, "wait"},
      {"recovery", Scope::Protocol, run_recovery, "crash_recovery|cleanup"},
      {"exploration", Scope::Reference, run_exploration, ""},
      {"segment", Scope::Protocol, run_segment, "spec_layout"},
      {"hostile-reads", Scope::Protocol, run_hostile_reads, "spec_layout"},
      {"bounds", Scope::Reference, run_bounds, ""},
      {"checksum", Scope::Reference, run_checksum, ""},
  };
  return checks;
}

}  // namespace memlink::conformance
