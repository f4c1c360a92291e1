// memlink-conformance: checks an implementation of SPEC.md clause by clause.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "adapter.hpp"
#include "capabilities.hpp"
#include "cli_support.hpp"
#include "driver_adapter.hpp"
#include "driver_json.hpp"
#include "junit.hpp"
#include "launcher.hpp"
#include "rc_runner.hpp"
#include "report.hpp"
#include "suite.hpp"
#include "timeline.hpp"

namespace memlink::conformance {

namespace {

// The summary line of every sanitizer report (ThreadSanitizer, ASan,
// UBSan) in this process: the sanitizer runtime calls the hook below.
std::mutex g_reports_mu;
std::vector<std::string> g_reports;
std::vector<std::string> sanitizer_reports() {
  std::lock_guard<std::mutex> lock(g_reports_mu);
  return g_reports;
}

std::string check_names() {
  std::string names;
  for (const auto& c : all_checks()) names += (names.empty() ? "" : ", ") + std::string(c.name);
  return names;
}

// Writes a failure's timeline as DIR/NAME.html; the path, or "" if it failed.
std::string write_picture(const std::string& dir, const std::string& name, const std::string& html) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = (std::filesystem::path(dir) / (name + ".html")).string();
  std::ofstream out(path);
  out << html;
  return out.good() ? path : std::string();
}

std::string failure_text(const Failure& f) {
  std::string t = f.description + "\nshrunk counterexample:\n";
  for (const auto& line : f.counterexample) t += "  " + line + "\n";
  t += "replay: " + f.replay + "\n";
  return t;
}

// One test case per clause (junit.hpp): FAIL with each failure that names
// it, NOT COVERED and NOT APPLICABLE skipped with the reason.
void write_junit(const std::string& path, const Params& p, const std::vector<ClauseStatus>& table,
                 const std::vector<CheckResult>& results) {
  junit::Suite suite{"memlink-conformance." + p.adapter, std::nullopt, {}};
  for (const auto& c : table) {
    const std::string id(spec::name(c.id)), status(to_string(c.status));
    junit::TestCase tc{id + " " + c.title, "SPEC", std::nullopt, {}, std::nullopt, ""};
    if (c.status == Verdict::Fail) {
      for (const auto& r : results)
        if (r.failure && r.failure->clause.is(c.id))
          tc.failures.push_back({r.failure->description, failure_text(*r.failure)});
    } else if (c.status == Verdict::NotCovered || c.status == Verdict::NotApplicable) {
      tc.skipped = status + ": " + c.reason;
    }
    suite.cases.push_back(std::move(tc));
  }
  // A driver that broke DRIVER.md fails its check under the rule it broke,
  // which is no clause of the table: one case each, so JUnit shows it too.
  for (const auto& r : results)
    if (r.failure && r.failure->clause.clause() == nullptr) {
      junit::TestCase tc{
          std::string(r.failure->clause.name()) + " " + r.name, "DRIVER", std::nullopt, {}, std::nullopt, ""};
      tc.failures.push_back({r.failure->description, failure_text(*r.failure)});
      suite.cases.push_back(std::move(tc));
    }
  if (!junit::write(path, suite)) std::fprintf(stderr, "memlink-conformance: could not write %s\n", path.c_str());
}

void write_json(const std::string& path, const Params& p, const std::vector<ClauseStatus>& table,
                const std::vector<CheckResult>& results, bool ok, const std::vector<std::string>& not_run = {}) {
  nlohmann::json j{{"adapter", p.adapter}, {"seed", p.seed}, {"depth", depth_name(p.depth)}, {"ok", ok}};
  if (!not_run.empty()) j["not_run"] = not_run;  // --fail-fast: checks left out after the first failure
  if (!p.driver.empty()) {
    j["driver"] = p.driver;
    j["capabilities"] = p.capabilities;
  }
  for (const auto& c : table) {
    nlohmann::json cj{{"id", spec::name(c.id)},
                      {"title", c.title},
                      {"status", to_string(c.status)},
                      {"cases", c.cases},
                      {"checks", c.checks}};
    if (!c.reason.empty()) cj["reason"] = c.reason;
    j["clauses"].push_back(cj);
  }
  for (const auto& r : results) {
    nlohmann::json cj{{"name", r.name}, {"scope", r.scope}, {"cases", r.cases}, {"seconds", r.seconds}, {"notes", r.notes},
                      {"passed", !r.failure.has_value()}};
    if (r.failure) {
      cj["failure"] = {{"clause", r.failure->clause.name()},
                       {"description", r.failure->description},
                       {"counterexample", r.failure->counterexample},
                       {"replay", r.failure->replay}};
      if (!r.picture_html.empty()) cj["failure"]["picture"] = r.picture_html;
    }
    j["checks"].push_back(cj);
  }
  std::ofstream(path) << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

// A driver whose hello failed: nothing ran, every clause is NOT COVERED,
// and the reports a CI job asked for still say why (D-HELLO, D-VERSION, ...).
int report_unstartable_driver(Params& params, const driver::DriverFailure& e, const std::string& junit,
                              const std::string& json) {
  CheckResult hello;
  hello.name = "hello";
  hello.scope = "driver";
  hello.failure = Failure{e.rule,
                          "[" + std::string(spec::name(e.rule)) + "] " + e.text(),
                          {},
                          "scripts/conformance --driver '" + params.driver + "'"};
  params.adapter = "driver (no hello)";
  const std::vector<CheckResult> results{hello};
  const auto table = clause_table(results, params.adapter, {}, params);
  if (!junit.empty()) write_junit(junit, params, table, results);
  if (!json.empty()) write_json(json, params, table, results, false);
  return 1;
}

}  // namespace
}  // namespace memlink::conformance

extern "C" void __sanitizer_report_error_summary(const char* summary) {
  std::lock_guard<std::mutex> lock(memlink::conformance::g_reports_mu);
  memlink::conformance::g_reports.emplace_back(summary);
}

int main(int argc, char** argv) {
  using namespace memlink::conformance;
  CLI::App app{"memlink-conformance: checks a transport against SPEC.md, clause by clause, with a model\n"
               "as the oracle. Prints PASS / FAIL / NOT COVERED per clause; for a failure, the shrunk\n"
               "counterexample and the command that replays it. Exit status 1 on any failure.",
               "memlink-conformance"};
  Params params;
  std::string depth = "default", junit, json, reproduce, artifacts = "conformance-failures";
  bool list_adapters = false, list_clauses = false, capability_map = false, fail_fast = false;
  app.add_option("--adapter", params.adapter, "Implementation to check, in process")->capture_default_str();
  auto* driver_opt = app.add_option("--driver", params.driver,
                                    "Check the transport this command drives (conformance/DRIVER.md), in processes "
                                    "of its own, e.g. --driver build/release/memlink-shm-driver");
  app.add_option("--seed", params.seed, "Seed (same seed, same cases)")->capture_default_str();
  app.add_option("--depth", depth, "quick, default or deep")
      ->check(CLI::IsMember({"quick", "default", "deep"}))
      ->capture_default_str();
  app.add_option("--only", params.only, "Run only these checks (comma-separated)");
  app.add_option("--reproduce", reproduce, "With --only: replay one shrunk case (from a failure's replay line)");
  app.add_option("--junit", junit, "Write a JUnit XML report (one test case per clause)");
  app.add_option("--json", json, "Write a JSON report");
  app.add_option("--artifacts", artifacts, "Where a failing concurrent history's timeline (HTML) goes")
      ->capture_default_str();
  app.add_flag("--fail-fast", fail_fast,
               "Stop after the first check that fails (the others are reported as not run; scripts/mutate)");
  app.add_flag("--list-adapters", list_adapters, "List the adapters and exit");
  app.add_flag("--list-clauses", list_clauses, "List the SPEC.md clauses and exit");
  app.add_flag("--capability-map", capability_map,
               "Print what each driver capability unlocks (DRIVER.md D-CAPS, as Markdown) and exit");
  memlink::cli::add_version_flag(app, "memlink-conformance");
  if (const auto status = memlink::cli::parse(app, argc, argv)) return *status;
  params.depth = depth == "quick" ? Depth::Quick : depth == "deep" ? Depth::Deep : Depth::Default;

  if (list_adapters) {
    for (const auto& n : adapter_names(true)) std::printf("%s%s\n", n.c_str(), n == "reference" ? " (default)" : " (deliberately broken; for the suite's own tests)");
    return 0;
  }
  if (capability_map) {
    std::printf("%s", capability_map_markdown().c_str());
    return 0;
  }
  if (list_clauses) {
    for (const auto& c : spec_clauses())
      std::printf("%-15s %s\n", std::string(memlink::spec::name(c.id)).c_str(), c.title);
    return 0;
  }
  if (*driver_opt && app.count("--adapter") > 0) {
    std::fprintf(stderr, "memlink-conformance: --driver and --adapter exclude each other\n");
    return 2;
  }
  if (!params.driver.empty()) {
    try {
      params.launcher = driver::command_launcher(params.driver);
      const auto& hello = params.launcher->hello();
      params.capabilities = hello.capabilities;
      params.crash_points = hello.crash_points;
      params.limits = hello.limits;
      params.adapter = "driver " + hello.name;
      if (hello.protocol < driver::kProtocolVersion)
        std::fprintf(stderr,
                     "memlink-conformance: the driver speaks protocol %d; this suite speaks %d and runs it as %d "
                     "(no limits, no reset: each case starts its own processes; DRIVER.md D-VERSION)\n",
                     hello.protocol, driver::kProtocolVersion, hello.protocol);
    } catch (const driver::DriverFailure& e) {
      std::fprintf(stderr, "memlink-conformance: cannot start the driver: %s\n", e.what());
      return report_unstartable_driver(params, e, junit, json);
    }
  } else if (params.adapter == "reference") {
    try {
      params.launcher = driver::reference_launcher();
    } catch (const driver::DriverFailure& e) {
      std::fprintf(stderr, "memlink-conformance: %s\n", e.what());
      return 2;
    }
  } else if (!make_adapter(params.adapter)) {
    std::fprintf(stderr, "memlink-conformance: unknown adapter '%s' (see --list-adapters)\n", params.adapter.c_str());
    return 2;
  }
  std::set<std::string> only;
  for (std::size_t start = 0; start < params.only.size();) {
    const std::size_t comma = std::min(params.only.find(',', start), params.only.size());
    if (comma > start) only.insert(params.only.substr(start, comma - start));
    start = comma + 1;
  }
  for (const auto& name : only) {
    const CheckDef* def = nullptr;
    for (const auto& c : all_checks())
      if (name == c.name) def = &c;
    if (def && !check_reaches(*def, params)) {
      const std::string cap = missing_capability(*def, params);
      if (!cap.empty())
        std::fprintf(stderr, "memlink-conformance: check '%s' needs capability '%s', which the driver does not claim\n",
                     name.c_str(), cap.c_str());
      else if (!params.driver.empty())
        std::fprintf(stderr,
                     "memlink-conformance: check '%s' runs on the reference library's own code; it cannot run through "
                     "a driver\n",
                     name.c_str());
      else
        std::fprintf(stderr, "memlink-conformance: check '%s' (%s) cannot check adapter '%s'\n", name.c_str(),
                     scope_name(def->scope), params.adapter.c_str());
      return 2;
    }
    if (!def) {
      std::fprintf(stderr, "memlink-conformance: unknown check '%s' (checks: %s)\n", name.c_str(), check_names().c_str());
      return 2;
    }
  }
  if (!reproduce.empty()) {
    const bool exploration = only.size() == 1 && *only.begin() == "exploration";
    if (only.size() != 1 || !(exploration ? valid_exploration_reproduce(reproduce) : decode_reproduce(reproduce).has_value())) {
      std::fprintf(stderr, "memlink-conformance: --reproduce needs --only and a string from a replay line\n");
      return 2;
    }
    if (exploration) set_exploration_reproduce(reproduce);
    else set_reproduce(params.only, reproduce);
  }

  std::printf("memlink-conformance: %s%s, seed %llu, depth %s\n", params.driver.empty() ? "adapter " : "",
              params.adapter.c_str(), static_cast<unsigned long long>(params.seed), depth.c_str());
  if (!params.driver.empty()) {
    std::string caps;
    for (const auto& c : params.capabilities) caps += (caps.empty() ? "" : ", ") + c;
    std::printf("driver: %s\nclaims: %s\n", params.driver.c_str(), caps.c_str());
  }
  std::vector<CheckResult> results;
  std::vector<std::string> not_reaching, not_run;
  for (const auto& def : all_checks()) {
    if (!only.empty() && !only.count(def.name)) continue;
    if (fail_fast && std::any_of(results.begin(), results.end(), [](const CheckResult& r) { return r.failure; })) {
      not_run.push_back(def.name);
      continue;
    }
    if (!check_reaches(def, params)) {
      const std::string cap = missing_capability(def, params);
      if (!cap.empty())
        std::fprintf(stderr, "  left out %-15s: it needs capability '%s', which the driver does not claim\n", def.name, cap.c_str());
      else if (!params.driver.empty())
        std::fprintf(stderr, "  left out %-15s (%s): it cannot run through a driver\n", def.name,
                     scope_name(def.scope));
      else
        std::fprintf(stderr, "  left out %-15s (%s): it does not go through adapter '%s'\n", def.name,
                     scope_name(def.scope), params.adapter.c_str());
      not_reaching.push_back(def.name);
      continue;
    }
    std::fprintf(stderr, "  running %-16s (%s) ...", def.name,
                 params.driver.empty() ? scope_name(def.scope) : "driver");
    std::fflush(stderr);
    const std::size_t reports_before = sanitizer_reports().size();
    CheckResult r = run_check(def, params);
    // A sanitizer report during the check fails it (scripts/conformance --tsan).
    if (const auto reports = sanitizer_reports(); reports.size() > reports_before && !r.failure) {
      r.failure = Failure::of(
          Violation{ClauseId::S_PUBLISH, "a sanitizer reported " + std::to_string(reports.size() - reports_before) +
                                             " problem(s) while the check ran; the first: " + reports[reports_before] +
                                             " (a data race on shared memory means a release/acquire pair is missing; "
                                             "the full report is on stderr)"},
          {reports.begin() + static_cast<std::ptrdiff_t>(reports_before), reports.end()},
          "scripts/conformance --tsan --only " + std::string(def.name) + " --seed " + std::to_string(params.seed));
    }
    std::fprintf(stderr, " %s, %d cases, %.1f s%s%s\n", r.failure ? "FAILED" : "ok", r.cases, r.seconds,
                 r.notes.empty() ? "" : "; ", r.notes.c_str());
    results.push_back(std::move(r));
  }

  if (!not_run.empty()) {
    std::string names;
    for (const auto& n : not_run) names += (names.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "  not run (--fail-fast, after the first failure): %s\n", names.c_str());
  }
  const auto table = clause_table(results, params.adapter, not_reaching, params);
  int pass = 0, fail = 0, uncovered = 0, not_applicable = 0;
  std::printf("\n%-14s %-15s %-48s %10s  %s\n", "status", "clause", "", "checks run", "by");
  for (const auto& c : table) {
    std::string by;
    for (const auto& n : c.checks) by += (by.empty() ? "" : ",") + n;
    std::printf("%-14s %-15s %-48s %10llu  %s\n", std::string(to_string(c.status)).c_str(),
                std::string(memlink::spec::name(c.id)).c_str(), c.title.c_str(),
                static_cast<unsigned long long>(c.cases), by.c_str());
    pass += c.status == Verdict::Pass;
    fail += c.status == Verdict::Fail;
    uncovered += c.status == Verdict::NotCovered;
    not_applicable += c.status == Verdict::NotApplicable;
  }
  bool ok = true;
  for (auto& r : results) {
    if (!r.failure) continue;
    ok = false;
    std::printf("\nFAILED check '%s' (%s), clause %s:\n%s", r.name.c_str(), r.scope.c_str(),
                std::string(r.failure->clause.name()).c_str(), failure_text(*r.failure).c_str());
    if (!r.picture_html.empty()) {
      const std::string path = write_picture(artifacts, r.name + "-seed" + std::to_string(params.seed), r.picture_html);
      std::printf(path.empty() ? "picture: could not write it under %s\n" : "picture: %s\n",
                  path.empty() ? artifacts.c_str() : path.c_str());
      r.picture_html = path;  // from here on, the file's name
    }
  }
  if (!not_reaching.empty() && params.driver.empty()) {
    std::string names;
    for (const auto& n : not_reaching) names += (names.empty() ? "" : ", ") + n;
    std::printf(
        "\nleft out, because they run on the reference (its library, or its driver in process) and not through adapter "
        "'%s': %s.\n"
        "A clause only they exercise is NOT COVERED for this adapter, never PASS.\n",
        params.adapter.c_str(), names.c_str());
  }
  for (const auto& c : table)
    if (c.status == Verdict::NotApplicable || (c.status == Verdict::NotCovered && !params.driver.empty()))
      std::printf("%s %s: %s\n", std::string(to_string(c.status)).c_str(),
                  std::string(memlink::spec::name(c.id)).c_str(), c.reason.c_str());
  std::printf("\nconformance: %d clauses pass, %d fail, %d not applicable, %d not covered (of %zu); %s%s: %s\n", pass,
              fail, not_applicable, uncovered, table.size(), params.driver.empty() ? "adapter " : "",
              params.adapter.c_str(), ok ? "CONFORMS where covered" : "DOES NOT CONFORM");
  if (!junit.empty()) write_junit(junit, params, table, results);
  if (!json.empty()) write_json(json, params, table, results, ok, not_run);
  return ok ? 0 : 1;
}
