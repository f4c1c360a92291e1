// One check run the way memlink-conformance runs it, for the runner and for
// C++ users who run the suite as a library (docs/conformance.md, "The suite as a library").
#include <chrono>
#include <map>
#include <string>

#include "driver_process.hpp"
#include "drivers/reference/reference_ops.hpp"
#include "launcher.hpp"
#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {

namespace {

// A driver that crashed, hung or printed garbage fails the check with the
// DRIVER.md rule it broke (D-TIME, D-FRAME, D-PROC, ...).
Failure driver_failure(const CheckDef& def, const Params& params, const driver::DriverFailure& e) {
  Failure f;
  f.clause = e.rule;
  f.description = "[" + std::string(spec::name(e.rule)) + "] " + e.text();
  f.replay = "scripts/conformance " +
             (params.driver.empty() ? "--adapter " + params.adapter : "--driver '" + params.driver + "'") + " --only " +
             def.name + " --seed " + std::to_string(params.seed) + " --depth " + depth_name(params.depth);
  return f;
}

}  // namespace

CheckResult run_check(const CheckDef& def, const Params& params) {
  ClauseCounter counter;
  const auto t0 = std::chrono::steady_clock::now();
  CheckResult r;
  try {
    // One launcher for the whole check, so that its cases reuse processes.
    Params p = params;
    p.counter = &counter;
    if (def.scope != Scope::Reference && !p.launcher) p.launcher = launcher_for(params);
    // What the transport accepts is what its driver's hello says (the
    // reference's too, in process: a fault may change it).
    if (p.launcher) p.limits = p.launcher->hello().limits;
    const std::uint64_t zero_copy_before = reference_ops::zero_copy_count();
    r = def.run(p);
    // T-LOAN: the in-process reference driver took loans and views (its
    // code runs here, so the suite can count them), and the check judged
    // what they carried. Through a separate process nothing shows it.
    if (params.driver.empty() && !r.failure)
      if (const std::uint64_t n = reference_ops::zero_copy_count() - zero_copy_before; n > 0)
        counter.record(ClauseId::T_LOAN, n);
  } catch (const driver::DriverFailure& e) {
    r.failure = driver_failure(def, params, e);
  } catch (const nlohmann::json::exception& e) {
    r.failure =
        driver_failure(def, params, driver::DriverFailure(driver::type_error_text(e), spec::DriverRule::D_FRAME));
  }
  r.name = def.name;
  r.scope = params.driver.empty() ? scope_name(def.scope) : "driver";
  for (const Clause& c : spec_clauses())
    if (const std::uint64_t n = counter.count(c.id); n > 0) r.clauses[c.id] = n;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace memlink::conformance
