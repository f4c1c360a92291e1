// The reference passes; the clause list is SPEC.md's; a clause is PASS only
// where a check reached the adapter. (That the suite fails a broken
// transport, naming the clause: ctest suite-*-catches-*, the reference with a
// bug of the mutant catalog linked in.)
#include "memlink/conformance/suite.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "memlink/conformance/adapter.hpp"
#include "memlink/conformance/reference_adapter.hpp"
#include "memlink/conformance/report.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {
namespace {

Params quick(const std::string& adapter, std::uint64_t seed = 1) {
  Params p;
  p.adapter = adapter;
  p.seed = seed;
  p.depth = Depth::Quick;
  return p;
}

TEST(Suite, ReferencePassesTheStatefulAndGeometryChecks) {
  for (std::uint64_t seed : {1, 2}) {
    const auto r = run_stateful(quick("reference", seed));
    EXPECT_FALSE(r.failure.has_value()) << r.failure->description;
    EXPECT_GT(r.cases, 0);
    const auto g = run_geometry(quick("reference", seed));
    EXPECT_FALSE(g.failure.has_value()) << g.failure->description;
  }
}

TEST(Suite, ClauseListMatchesSpecMd) {
  std::ifstream f(MEMLINK_SPEC_MD);
  ASSERT_TRUE(f) << MEMLINK_SPEC_MD;
  std::stringstream s;
  s << f.rdbuf();
  const std::string spec = s.str();
  // Clause ids are written **X-NAME** (or (`X-NAME`) in a heading).
  std::set<std::string> in_spec;
  for (const std::string open : {"**", "(`"}) {
    const std::string close = open == "**" ? "**" : "`)";
    for (std::size_t at = spec.find(open); at != std::string::npos; at = spec.find(open, at + 1)) {
      const std::size_t end = spec.find(close, at + open.size());
      if (end == std::string::npos) break;
      const std::string id = spec.substr(at + open.size(), end - at - open.size());
      if (id.size() >= 3 && id[1] == '-' && id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ-") == std::string::npos)
        in_spec.insert(id);
    }
  }
  std::set<std::string> listed;
  for (const auto& c : spec_clauses()) listed.insert(std::string(spec::name(c.id)));
  EXPECT_EQ(in_spec, listed);
}

TEST(Suite, OtherChecksPassOnTheReference) {
  for (auto run : {run_bounds, run_checksum, run_layout, run_connect_validation}) {
    const auto r = run(quick("reference"));
    EXPECT_FALSE(r.failure.has_value()) << r.name << ": " << r.failure->description;
  }
  // The checks through the driver protocol, on the in-process reference driver.
  for (const char* name : {"linearizability", "wakeup", "segment"})
    for (const auto& def : all_checks())
      if (name == std::string(def.name)) {
        const auto r = run_check(def, quick("reference"));
        EXPECT_FALSE(r.failure.has_value()) << r.name << ": " << r.failure->description;
        EXPECT_GT(r.cases, 0) << r.name;
      }
}

// The report claims PASS for an adapter only where a check ran on it: the
// checks that build the reference library themselves never count for
// another adapter (a broken one used to show PASS F-WAKE and PASS K-FENCE).
// Another transport, as a user registers one (here the reference under
// another name): the checks that build the reference themselves never reach it.
const bool kOtherRegistered = register_adapter("other-transport", [] { return std::make_unique<ReferenceAdapter>(); });

TEST(Report, AClauseIsPassOnlyWhereACheckReachedTheAdapter) {
  ASSERT_TRUE(kOtherRegistered);
  for (const auto& name : adapter_names())
    for (const auto& def : all_checks())
      EXPECT_EQ(check_reaches(def, name), name == "reference" || def.scope == Scope::Adapter)
          << def.name << " for " << name;
  std::vector<CheckResult> results;
  std::vector<std::string> left_out;
  for (const auto& def : all_checks()) {
    if (!check_reaches(def, "other-transport")) {
      left_out.push_back(def.name);
      continue;
    }
    ClauseCounter counter;
    Params p = quick("other-transport");
    p.counter = &counter;
    CheckResult r = def.run(p);
    r.name = def.name;
    r.scope = scope_name(def.scope);
    for (ClauseId id : spec::all_clauses())
      if (counter.count(id) > 0) r.clauses[id] = counter.count(id);
    results.push_back(std::move(r));
  }
  EXPECT_FALSE(left_out.empty());
  const auto table = clause_table(results, "other-transport", left_out);
  std::set<std::string> adapter_checks;
  for (const auto& def : all_checks())
    if (def.scope == Scope::Adapter) adapter_checks.insert(def.name);
  int pass = 0;
  for (const auto& c : table) {
    if (c.status == Verdict::Pass) {
      ++pass;
      for (const auto& by : c.checks) EXPECT_TRUE(adapter_checks.count(by)) << c.id << " counted " << by;
    }
    if (c.id == ClauseId::F_WAKE || c.id == ClauseId::K_FENCE) {
      EXPECT_EQ(c.status, Verdict::NotCovered) << c.id;
      EXPECT_NE(c.reason.find("reaches adapter 'other-transport'"), std::string::npos) << c.reason;
    }
    if (c.status == Verdict::NotCovered) {
      EXPECT_FALSE(c.reason.empty()) << c.id;
    }
  }
  EXPECT_GT(pass, 0);
}

// Through a driver, a clause that needs a capability the driver does not
// claim is NOT APPLICABLE, naming the capability; one no check reached is
// NOT COVERED with the reason; PASS only where a check ran on it.
TEST(Report, ThroughADriverAClauseNeedingAnUnclaimedCapabilityIsNotApplicable) {
  Params p;
  p.driver = "some-driver";
  p.capabilities = {"wait", "crash_recovery"};
  auto def = [](const std::string& name) {
    for (const auto& d : all_checks())
      if (name == d.name) return d;
    ADD_FAILURE() << "no check " << name;
    return all_checks().front();
  };
  EXPECT_TRUE(check_reaches(def("stateful"), p));
  EXPECT_TRUE(check_reaches(def("wakeup"), p));
  EXPECT_FALSE(check_reaches(def("layout"), p));
  EXPECT_EQ(missing_capability(def("layout"), p), "spec_layout");
  EXPECT_FALSE(check_reaches(def("exploration"), p));  // cannot run through a driver at all
  EXPECT_EQ(missing_capability(def("exploration"), p), "");
  CheckResult wakeup;
  wakeup.name = "wakeup";
  wakeup.clauses = {{ClauseId::F_WAKE, 3}, {ClauseId::T_WAIT, 3}};
  const auto table = clause_table({wakeup}, "driver some-driver", {"layout", "exploration"}, p);
  std::map<ClauseId, ClauseStatus> by_id;
  for (const auto& c : table) by_id[c.id] = c;
  EXPECT_EQ(by_id[ClauseId::F_WAKE].status, Verdict::Pass);
  EXPECT_EQ(by_id[ClauseId::L_CONST].status, Verdict::NotApplicable);
  EXPECT_NE(by_id[ClauseId::L_CONST].reason.find("spec_layout"), std::string::npos) << by_id[ClauseId::L_CONST].reason;
  EXPECT_EQ(by_id[ClauseId::T_BLOCKING].status, Verdict::NotApplicable);
  EXPECT_NE(by_id[ClauseId::T_BLOCKING].reason.find("write_blocking"), std::string::npos);
  // Claimed, but no check that ran exercised it: NOT COVERED, never PASS.
  EXPECT_EQ(by_id[ClauseId::K_TAKEOVER].status, Verdict::NotCovered);
  EXPECT_FALSE(by_id[ClauseId::K_TAKEOVER].reason.empty());
  EXPECT_EQ(by_id[ClauseId::E_CODES].status, Verdict::NotCovered);
  for (const auto& c : table) {
    if (c.status == Verdict::Pass) {
      EXPECT_TRUE(c.id == ClauseId::F_WAKE || c.id == ClauseId::T_WAIT) << c.id;
    }
  }
}

}  // namespace
}  // namespace memlink::conformance

namespace memlink::conformance {
namespace {

// A failing check whose shrinking runs past its budget still reports the
// smallest failing case it found, with its clause and its counterexample
// (RapidCheck describes the case by running it once more).
TEST(RcRunner, ShrinkingPastItsBudgetStillDescribesTheSmallestCase) {
  Params p;
  p.depth = Depth::Quick;
  const RcOutcome out = run_rc("budget-test", p, 10, 100, [] {
    const auto v = *rc::gen::container<std::vector<int>>(400, rc::gen::inRange(1, 1000));
    long sum = 0;
    for (int x : v) sum += x;
    // Fails from the first larger case on; shrinking each of 400 values
    // while the sum stays large takes far more tries than the budget.
    if (sum >= 40000) fail_case(ClauseId::R_FIFO, "a case of " + std::to_string(v.size()) + " values");
  });
  EXPECT_FALSE(out.passed);
  EXPECT_TRUE(out.shrink_budget_spent);
  ASSERT_TRUE(out.violation.has_value()) << out.description;
  EXPECT_TRUE(out.violation->clause.is(ClauseId::R_FIFO));
  EXPECT_NE(out.description.find("a case of 400 values"), std::string::npos) << out.description;
  EXPECT_FALSE(out.counterexample.empty());
}

// A replay string is hex digits in pairs; anything else is refused, never
// thrown (--reproduce zz aborted the runner) nor half-read ("1z" as 0x01).
TEST(Reproduce, AStringThatIsNotHexIsRefusedNotThrown) {
  for (const char* bad : {"zz", "1z", "z1", "0", "", "0g", "  "})
    EXPECT_FALSE(decode_reproduce(bad).has_value()) << bad;
}

}  // namespace
}  // namespace memlink::conformance
