// The Adapter interface over driver processes (DRIVER.md): a daemon process
// and one process per client, on one segment, so the in-process checks
// (stateful, geometry, layout, connect-validation) run unchanged against a
// transport in any language. The stateful check learns from capabilities()
// which commands it may send.
#pragma once

#include <memory>
#include <string>

#include "driver_process.hpp"
#include "launcher.hpp"
#include "memlink/conformance/adapter.hpp"
#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {

// The adapter a check should use: over params.driver if set (its processes
// from launcher_for(params)), else the in-process adapter params.adapter names.
std::unique_ptr<Adapter> adapter_for(const Params& params);

// D-LIMITS: `request` (a create) on `p`; a transport without the SPEC
// layout that refuses the size with InvalidArgument although its limits
// allow it (its own floor may grow with the slot size) is asked again for
// twice the size, up to its maximum. The SPEC layout says what fits (G-FIT):
// its refusal stands.
driver::Reply create_fitted(driver::DriverProcess& p, nlohmann::json request, const Params& params,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20));

// After a case: asks the driver to remove what its processes left at `path`
// (D-CLEANUP), if it claims "cleanup"; their processes must be gone.
void cleanup_through(driver::Launcher& launcher, const std::string& path);

// The segment path a driver check should use now (unique per call).
std::string driver_segment_path(const std::string& tag);

}  // namespace memlink::conformance
