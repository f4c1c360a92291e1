// One check run the way memlink-conformance runs it, for the runner and for
// C++ users who run the suite as a library (README, "The suite as a library").
#include <chrono>
#include <map>
#include <string>

#include "driver_process.hpp"
#include "launcher.hpp"
#include "reference_ops.hpp"
#include "suite.hpp"

namespace memlink::conformance {

void set_clause_sink(std::map<std::string, std::uint64_t>* sink);

namespace {

// A driver that crashed, hung or printed garbage fails the check with the
// DRIVER.md clause its message names (D-TIME, D-FRAME; D-PROC otherwise).
Failure driver_failure(const CheckDef& def, const Params& params, const std::string& what) {
  const auto open = what.find("[D-");
  Failure f;
  f.clause = open == std::string::npos ? "D-PROC" : what.substr(open + 1, what.find(']', open) - open - 1);
  f.description = what;
  f.replay = "scripts/conformance " +
             (params.driver.empty() ? "--adapter " + params.adapter : "--driver '" + params.driver + "'") +
             " --only " + def.name + " --seed " + std::to_string(params.seed);
  return f;
}

// Records clauses into one map while it lives, and stops recording however
// the check ends.
class ClauseSink {
 public:
  explicit ClauseSink(std::map<std::string, std::uint64_t>& sink) { set_clause_sink(&sink); }
  ~ClauseSink() { set_clause_sink(nullptr); }
  ClauseSink(const ClauseSink&) = delete;
  ClauseSink& operator=(const ClauseSink&) = delete;
};

}  // namespace

CheckResult run_check(const CheckDef& def, const Params& params) {
  std::map<std::string, std::uint64_t> clauses;
  const auto t0 = std::chrono::steady_clock::now();
  CheckResult r;
  {
    ClauseSink sink(clauses);
    try {
      // One launcher for the whole check, so that its cases reuse processes.
      Params with_launcher = params;
      if (def.scope != Scope::Reference && !with_launcher.launcher) with_launcher.launcher = launcher_for(params);
      // What the transport accepts is what its driver's hello says (the
      // reference's too, in process: a fault may change it).
      if (with_launcher.launcher) with_launcher.limits = with_launcher.launcher->hello().limits;
      const std::uint64_t zero_copy_before = reference_ops::zero_copy_count();
      r = def.run(with_launcher);
      // T-LOAN: the in-process reference driver took loans and views (its
      // code runs here, so the suite can count them), and the check judged
      // what they carried. Through a separate process nothing shows it.
      if (params.driver.empty() && !r.failure)
        if (const std::uint64_t n = reference_ops::zero_copy_count() - zero_copy_before; n > 0)
          clauses["T-LOAN"] += n;
    } catch (const driver::DriverFailure& e) {
      r.failure = driver_failure(def, params, e.what());
    }
  }
  r.name = def.name;
  r.scope = params.driver.empty() ? scope_name(def.scope) : "driver";
  r.clauses = std::move(clauses);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace memlink::conformance
