// Runs a RapidCheck property with the suite's seed and budget and captures
// the result (counterexample, and a reproduce string that jumps straight to
// the shrunk case) instead of printing it.
//
// This leans on RapidCheck internals (rc::detail::checkProperty,
// TestListener, Reproduce and its serialisation): the public rc::check()
// prints to stderr and returns a bool, with neither the counterexample's
// lines nor the reproduce string the replay line needs. Checked with
// RapidCheck commit 08b5058, the one Debian 12 ships (librapidcheck-dev
// 0~1033-08b5058-3) and .clusterfuzzlite/Dockerfile pins; another version may
// need this header changed (it fails to compile, not silently).
#pragma once

#include <rapidcheck.h>

#include <cstdio>
#include <functional>
#include <limits>
#include <sstream>
#include <unordered_map>

#include "driver_process.hpp"
#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {

// Fails the running case with a violation: its clause travels beside the
// text (the last violation a thread raised is the shrunk case's: every
// shrink RapidCheck keeps fails, every one it drops passes), never parsed
// back out of a message.
[[noreturn]] void fail_case(Violation v);
[[noreturn]] inline void fail_case(Citation clause, std::string text) { fail_case(Violation{clause, std::move(text)}); }
// The violation the failing case raised on this thread (run_rc reads it).
std::optional<Violation> take_last_violation();
void clear_last_violation();

// Hex of RapidCheck's own serialisation of a Reproduce.
std::string encode_reproduce(const rc::detail::Reproduce& r);
std::optional<rc::detail::Reproduce> decode_reproduce(const std::string& hex);

// Set by the runner from --reproduce: the one case to run again.
void set_reproduce(const std::string& check, const std::string& hex);
std::optional<rc::detail::Reproduce> reproduce_for(const std::string& check);

std::uint64_t check_seed(const Params& params, const std::string& check);

// How many shrink steps a failing check may try (each may start processes
// through a driver): the work is bounded, so a check's time never depends on
// how long RapidCheck could go on shrinking.
int shrink_budget(const Params& params);

// A driver's failure inside a case fails the case under the DRIVER.md rule
// it broke; an answer whose field has the wrong type is D-FRAME's, never an
// exception that names no rule (SPEC 9b: a driver is untrusted input).
[[noreturn]] void fail_case_by_driver(const driver::DriverFailure& e);
[[noreturn]] void fail_case_by_type_error(const nlohmann::json::exception& e);
template <class Testable>
void run_case(Testable& testable) {
  try {
    testable();
  } catch (const driver::DriverFailure& e) {
    fail_case_by_driver(e);
  } catch (const nlohmann::json::exception& e) {
    fail_case_by_type_error(e);
  }
}

template <class Testable>
RcOutcome run_rc(const std::string& check, const Params& params, int max_success, int max_size,
                 Testable&& testable) {
  rc::detail::TestMetadata md;
  md.id = check;
  md.description = check;
  rc::detail::TestParams tp;
  tp.seed = check_seed(params, check);
  tp.maxSuccess = max_success;
  tp.maxSize = max_size;
  std::unordered_map<std::string, rc::detail::Reproduce> reproduce;
  if (auto r = reproduce_for(check)) reproduce.emplace(check, *r);
  // Once the shrink budget is spent every further candidate passes at
  // once, without running: RapidCheck keeps the smallest failure so far.
  struct Quiet final : rc::detail::TestListener {
    int shrinks = 0, budget = 0;
    void onTestCaseFinished(const rc::detail::CaseDescription&) override {}
    void onShrinkTried(const rc::detail::CaseDescription&, bool) override { ++shrinks; }
    void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
  } quiet;
  quiet.budget = shrink_budget(params);
  clear_last_violation();
  auto bounded = [&quiet, &testable] {
    if (quiet.shrinks >= quiet.budget) return;
    run_case(testable);
  };
  auto result = rc::detail::checkProperty(rc::detail::toProperty(bounded), md, tp, quiet, reproduce);
  RcOutcome out;
  out.shrink_budget_spent = quiet.shrinks >= quiet.budget;
  rc::detail::FailureResult spent;
  int passed_before = -1;
  if (out.shrink_budget_spent && result.match(spent)) {
    passed_before = spent.numSuccess;
    // RapidCheck evaluates the smallest failing case once more to describe
    // it, and that evaluation was skipped like every candidate after the
    // budget: replay that one case for real (a replay does not shrink).
    quiet.budget = std::numeric_limits<int>::max();
    clear_last_violation();
    std::unordered_map<std::string, rc::detail::Reproduce> last{{check, spent.reproduce}};
    auto again = rc::detail::checkProperty(rc::detail::toProperty(bounded), md, tp, quiet, last);
    rc::detail::FailureResult replayed;
    if (again.match(replayed))
      result = again;
    else
      spent.description =
          "(the smallest failing case passed when replayed to describe it: the check is not deterministic)";
  }
  rc::detail::SuccessResult success;
  rc::detail::FailureResult failure;
  rc::detail::GaveUpResult gave_up;
  rc::detail::Error error;
  if (result.match(success)) {
    out.cases = success.numSuccess;
  } else if (result.match(failure)) {
    out.passed = false;
    out.cases = (passed_before >= 0 ? passed_before : failure.numSuccess) + 1;
    out.violation = take_last_violation();
    out.description = failure.description;
    for (const auto& [type, value] : failure.counterExample) {
      std::istringstream lines(value);
      for (std::string line; std::getline(lines, line);) out.counterexample.push_back(line);
    }
    out.reproduce = encode_reproduce(failure.reproduce);
  } else if (result.match(gave_up)) {
    out.passed = false;
    out.cases = gave_up.numSuccess;
    out.description = "gave up: " + gave_up.description;
  } else if (result.match(error)) {
    if (!reproduce.empty() && error.description.find("not a failure") != std::string::npos) {
      // --reproduce on code that no longer fails: the replayed case passes.
      out.cases = 1;
      out.replayed_passes = true;
    } else {
      out.passed = false;
      out.description = "error: " + error.description;
    }
  }
  return out;
}

// The case budget for a depth.
inline int depth_budget(const Params& p, int quick, int normal, int deep) {
  return p.depth == Depth::Quick ? quick : p.depth == Depth::Default ? normal : deep;
}

// Fills a CheckResult from a RapidCheck outcome: the failing clause is the
// violation the failing case raised (none if it failed otherwise, an
// RC_ASSERT or a thrown exception).
void fill_result(CheckResult& result, const RcOutcome& rc, const Params& params);

// A whole RapidCheck-based check: runs `testable` as check `name` and
// returns its result (failure clause, counterexample, replay line).
template <class Testable>
CheckResult rc_check(const std::string& name, const Params& params, int cases, int max_size, Testable&& testable) {
  CheckResult result;
  result.name = name;
  fill_result(result, run_rc(name, params, cases, max_size, std::forward<Testable>(testable)), params);
  return result;
}

}  // namespace memlink::conformance
