#include "suite.hpp"

namespace memlink::conformance {

const std::vector<CheckDef>& all_checks() {
  // name, scope, in-process run, capabilities a driver needs, driver run.
  static const std::vector<CheckDef> checks = {
      {"stateful", "adapter", run_stateful, "", nullptr},
      {"geometry", "adapter", run_geometry, "spec_layout,observe", nullptr},
      {"layout", "adapter", run_layout, "spec_layout,observe,stops", nullptr},
      {"connect-validation", "adapter", run_connect_validation, "spec_layout,observe,stops", nullptr},
      {"linearizability", "reference library", run_linearizability, "", run_driver_linearizability},
      {"wakeup", "reference library", run_wakeup, "wait", run_driver_wakeup},
      {"recovery", "reference library", run_recovery, "crash_recovery", run_driver_recovery},
      {"exploration", "reference library", run_exploration, nullptr, nullptr},
      {"segment", "reference library", run_segment, "spec_layout", run_driver_segment},
      {"hostile-reads", "driver", nullptr, "spec_layout", run_driver_hostile},
      {"bounds", "reference library", run_bounds, nullptr, nullptr},
      {"checksum", "reference library", run_checksum, nullptr, nullptr},
  };
  return checks;
}

}  // namespace memlink::conformance
