#include "suite.hpp"

namespace memlink::conformance {

const std::vector<CheckDef>& all_checks() {
  static const std::vector<CheckDef> checks = {
      {"stateful", "adapter", run_stateful},
      {"geometry", "adapter", run_geometry},
      {"layout", "adapter", run_layout},
      {"connect-validation", "adapter", run_connect_validation},
      {"linearizability", "reference library", run_linearizability},
      {"wakeup", "reference library", run_wakeup},
      {"recovery", "reference library", run_recovery},
      {"exploration", "reference library", run_exploration},
      {"segment", "reference library", run_segment},
      {"bounds", "reference library", run_bounds},
      {"checksum", "reference library", run_checksum},
  };
  return checks;
}

}  // namespace memlink::conformance
