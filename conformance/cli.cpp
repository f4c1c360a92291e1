// memlink-conformance: checks an implementation of SPEC.md clause by clause.
// The command line (run_main, cli.hpp); main.cpp only calls it.
#include "cli.hpp"

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

#include "capabilities.hpp"
#include "cli_support.hpp"
#include "driver_adapter.hpp"
#include "driver_json.hpp"
#include "junit.hpp"
#include "launcher.hpp"
#include "memlink/conformance/adapter.hpp"
#include "memlink/conformance/report.hpp"
#include "memlink/conformance/suite.hpp"
#include "rc_runner.hpp"
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

// The strings of `v`, separated by `sep`.
template <typename Strings>
std::string joined(const Strings& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
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
    nlohmann::json cj{{"name", r.name},       {"scope", r.scope}, {"cases", r.cases},
                      {"seconds", r.seconds}, {"notes", r.notes}, {"passed", !r.failure.has_value()}};
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

namespace memlink::conformance {
namespace {

// What the command line asked for.
struct Request {
  Params params;
  std::string depth = "default", junit, json, reproduce, artifacts = "conformance-failures";
  bool list_adapters = false, list_clauses = false, capability_map = false, fail_fast = false;
  bool driver_given = false, adapter_given = false;
  std::set<std::string> only;  // --only, split
};

void add_options(CLI::App& app, Request& q) {
  Params& params = q.params;
  app.add_option("--adapter", params.adapter, "Implementation to check, in process")->capture_default_str();
  app.add_option("--driver", params.driver,
                 "Check the transport this command drives (conformance/DRIVER.md), in processes "
                 "of its own, e.g. --driver build/release/memlink-shm-driver");
  app.add_option("--seed", params.seed, "Seed (same seed, same cases)")->capture_default_str();
  app.add_option("--depth", q.depth, "quick, default or deep")
      ->check(CLI::IsMember({"quick", "default", "deep"}))
      ->capture_default_str();
  app.add_option("--only", params.only, "Run only these checks (comma-separated)");
  app.add_option("--reproduce", q.reproduce, "With --only: replay one shrunk case (from a failure's replay line)");
  app.add_option("--junit", q.junit, "Write a JUnit XML report (one test case per clause)");
  app.add_option("--json", q.json, "Write a JSON report");
  app.add_option("--artifacts", q.artifacts, "Where a failing concurrent history's timeline (HTML) goes")
      ->capture_default_str();
  app.add_flag("--fail-fast", q.fail_fast,
               "Stop after the first check that fails (the others are reported as not run; scripts/mutate)");
  app.add_flag("--list-adapters", q.list_adapters, "List the adapters and exit");
  app.add_flag("--list-clauses", q.list_clauses, "List the SPEC.md clauses and exit");
  app.add_flag("--capability-map", q.capability_map,
               "Print what each driver capability unlocks (DRIVER.md D-CAPS, as Markdown) and exit");
  memlink::cli::add_version_flag(app, "memlink-conformance");
}

// --list-adapters, --capability-map, --list-clauses: the exit status, or
// nothing when none was asked for.
std::optional<int> print_a_list(const Request& q) {
  if (q.list_adapters) {
    for (const auto& n : adapter_names()) std::printf("%s%s\n", n.c_str(), n == "reference" ? " (default)" : "");
    return 0;
  }
  if (q.capability_map) {
    std::printf("%s", capability_map_markdown().c_str());
    return 0;
  }
  if (q.list_clauses) {
    for (const auto& c : spec_clauses())
      std::printf("%-15s %s\n", std::string(memlink::spec::name(c.id)).c_str(), c.title);
    return 0;
  }
  return std::nullopt;
}

// Starts the driver (its hello) or picks the in-process adapter: an exit
// status when it cannot.
std::optional<int> open_transport(Request& q) {
  Params& params = q.params;
  if (q.driver_given && q.adapter_given) {
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
      return report_unstartable_driver(params, e, q.junit, q.json);
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
  return std::nullopt;
}

// Why `def` cannot run on this transport, as "needs capability ...", "runs
// on the reference library's own code ..." or "does not go through ...".
std::string why_it_cannot_run(const CheckDef& def, const Params& params) {
  const std::string cap = missing_capability(def, params);
  if (!cap.empty()) return "it needs capability '" + cap + "', which the driver does not claim";
  if (!params.driver.empty())
    return "it runs on the reference (" + std::string(scope_name(def.scope)) + ") and cannot run through a driver";
  return "it runs on the reference (" + std::string(scope_name(def.scope)) + "), not through adapter '" +
         params.adapter + "'";
}

// --only's names, each a check this transport can run; --reproduce with
// exactly one of them. An exit status on a usage error.
std::optional<int> select_checks(Request& q) {
  const std::string& list = q.params.only;
  for (std::size_t start = 0; start < list.size();) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) q.only.insert(list.substr(start, comma - start));
    start = comma + 1;
  }
  for (const auto& name : q.only) {
    const CheckDef* def = nullptr;
    for (const auto& c : all_checks())
      if (name == c.name) def = &c;
    if (!def) {
      std::fprintf(stderr, "memlink-conformance: unknown check '%s' (checks: %s)\n", name.c_str(),
                   check_names().c_str());
      return 2;
    }
    if (!check_reaches(*def, q.params)) {
      std::fprintf(stderr, "memlink-conformance: check '%s' cannot run: %s\n", name.c_str(),
                   why_it_cannot_run(*def, q.params).c_str());
      return 2;
    }
  }
  if (q.reproduce.empty()) return std::nullopt;
  const bool exploration = q.only.size() == 1 && *q.only.begin() == "exploration";
  if (q.only.size() != 1 ||
      !(exploration ? valid_exploration_reproduce(q.reproduce) : decode_reproduce(q.reproduce).has_value())) {
    std::fprintf(stderr, "memlink-conformance: --reproduce needs --only and a string from a replay line\n");
    return 2;
  }
  if (exploration)
    set_exploration_reproduce(q.reproduce);
  else
    set_reproduce(q.params.only, q.reproduce);
  return std::nullopt;
}

// Runs one check; a sanitizer report while it ran fails it
// (scripts/conformance --tsan).
CheckResult run_watched(const CheckDef& def, const Params& params) {
  const std::size_t reports_before = sanitizer_reports().size();
  CheckResult r = run_check(def, params);
  if (const auto reports = sanitizer_reports(); reports.size() > reports_before && !r.failure) {
    r.failure = Failure::of(
        Violation{ClauseId::S_PUBLISH, "a sanitizer reported " + std::to_string(reports.size() - reports_before) +
                                           " problem(s) while the check ran; the first: " + reports[reports_before] +
                                           " (a data race on shared memory means a release/acquire pair is missing; "
                                           "the full report is on stderr)"},
        {reports.begin() + static_cast<std::ptrdiff_t>(reports_before), reports.end()},
        "scripts/conformance --tsan --only " + std::string(def.name) + " --seed " + std::to_string(params.seed));
  }
  return r;
}

struct Run {
  std::vector<CheckResult> results;
  std::vector<std::string> not_reaching;  // checks this transport cannot run
  std::vector<std::string> not_run;       // --fail-fast: after the first failure
};

// Every selected check, with a progress line each on stderr.
Run run_checks(const Request& q) {
  const Params& params = q.params;
  Run run;
  for (const auto& def : all_checks()) {
    if (!q.only.empty() && !q.only.count(def.name)) continue;
    if (q.fail_fast && std::any_of(run.results.begin(), run.results.end(),
                                   [](const CheckResult& r) { return r.failure.has_value(); })) {
      run.not_run.push_back(def.name);
      continue;
    }
    if (!check_reaches(def, params)) {
      std::fprintf(stderr, "  left out %-15s: %s\n", def.name, why_it_cannot_run(def, params).c_str());
      run.not_reaching.push_back(def.name);
      continue;
    }
    std::fprintf(stderr, "  running %-16s (%s) ...", def.name,
                 params.driver.empty() ? scope_name(def.scope) : "driver");
    std::fflush(stderr);
    CheckResult r = run_watched(def, params);
    std::fprintf(stderr, " %s, %d cases, %.1f s%s%s\n", r.failure ? "FAILED" : "ok", r.cases, r.seconds,
                 r.notes.empty() ? "" : "; ", r.notes.c_str());
    run.results.push_back(std::move(r));
  }
  if (!run.not_run.empty())
    std::fprintf(stderr, "  not run (--fail-fast, after the first failure): %s\n", joined(run.not_run, ", ").c_str());
  return run;
}

struct Tally {
  int pass = 0, fail = 0, uncovered = 0, not_applicable = 0;
};

// The clause table, one line a clause.
Tally print_table(const std::vector<ClauseStatus>& table) {
  Tally t;
  std::printf("\n%-14s %-15s %-48s %10s  %s\n", "status", "clause", "", "checks run", "by");
  for (const auto& c : table) {
    std::printf("%-14s %-15s %-48s %10llu  %s\n", std::string(to_string(c.status)).c_str(),
                std::string(memlink::spec::name(c.id)).c_str(), c.title.c_str(),
                static_cast<unsigned long long>(c.cases), joined(c.checks, ",").c_str());
    t.pass += c.status == Verdict::Pass;
    t.fail += c.status == Verdict::Fail;
    t.uncovered += c.status == Verdict::NotCovered;
    t.not_applicable += c.status == Verdict::NotApplicable;
  }
  return t;
}

// Each failure with its counterexample and replay line; its timeline, if
// it has one, written under --artifacts. True when nothing failed.
bool print_failures(std::vector<CheckResult>& results, const Request& q) {
  bool ok = true;
  for (auto& r : results) {
    if (!r.failure) continue;
    ok = false;
    std::printf("\nFAILED check '%s' (%s), clause %s:\n%s", r.name.c_str(), r.scope.c_str(),
                std::string(r.failure->clause.name()).c_str(), failure_text(*r.failure).c_str());
    if (r.picture_html.empty()) continue;
    const std::string path =
        write_picture(q.artifacts, r.name + "-seed" + std::to_string(q.params.seed), r.picture_html);
    std::printf(path.empty() ? "picture: could not write it under %s\n" : "picture: %s\n",
                path.empty() ? q.artifacts.c_str() : path.c_str());
    r.picture_html = path;  // from here on, the file's name
  }
  return ok;
}

// Why clauses are left NOT COVERED or NOT APPLICABLE for this transport.
void print_gaps(const std::vector<ClauseStatus>& table, const Run& run, const Params& params) {
  if (!run.not_reaching.empty() && params.driver.empty())
    std::printf(
        "\nleft out, because they run on the reference (its library, or its driver in process) and not through adapter "
        "'%s': %s.\n"
        "A clause only they exercise is NOT COVERED for this adapter, never PASS.\n",
        params.adapter.c_str(), joined(run.not_reaching, ", ").c_str());
  for (const auto& c : table)
    if (c.status == Verdict::NotApplicable || (c.status == Verdict::NotCovered && !params.driver.empty()))
      std::printf("%s %s: %s\n", std::string(to_string(c.status)).c_str(),
                  std::string(memlink::spec::name(c.id)).c_str(), c.reason.c_str());
}

// The report: table, failures, gaps, verdict line, JUnit and JSON. The
// exit status.
int report(Run& run, const Request& q) {
  const Params& params = q.params;
  const auto table = clause_table(run.results, params.adapter, run.not_reaching, params);
  const Tally t = print_table(table);
  const bool ok = print_failures(run.results, q);
  print_gaps(table, run, params);
  std::printf("\nconformance: %d clauses pass, %d fail, %d not applicable, %d not covered (of %zu); %s%s: %s\n", t.pass,
              t.fail, t.not_applicable, t.uncovered, table.size(), params.driver.empty() ? "adapter " : "",
              params.adapter.c_str(), ok ? "CONFORMS where covered" : "DOES NOT CONFORM");
  if (!q.junit.empty()) write_junit(q.junit, params, table, run.results);
  if (!q.json.empty()) write_json(q.json, params, table, run.results, ok, run.not_run);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace memlink::conformance

namespace memlink::conformance {

int run_main(int argc, char** argv) {
  CLI::App app{
      "memlink-conformance: checks a transport against SPEC.md, clause by clause, with a model\n"
      "as the oracle. Prints PASS / FAIL / NOT COVERED per clause; for a failure, the shrunk\n"
      "counterexample and the command that replays it. Exit status 1 on any failure.",
      "memlink-conformance"};
  Request q;
  add_options(app, q);
  if (const auto status = memlink::cli::parse(app, argc, argv)) return *status;
  q.params.depth = q.depth == "quick" ? Depth::Quick : q.depth == "deep" ? Depth::Deep : Depth::Default;
  q.driver_given = app.count("--driver") > 0;
  q.adapter_given = app.count("--adapter") > 0;
  if (const auto status = print_a_list(q)) return *status;
  if (const auto status = open_transport(q)) return *status;
  if (const auto status = select_checks(q)) return *status;
  std::printf("memlink-conformance: %s%s, seed %llu, depth %s\n", q.params.driver.empty() ? "adapter " : "",
              q.params.adapter.c_str(), static_cast<unsigned long long>(q.params.seed), q.depth.c_str());
  if (!q.params.driver.empty())
    std::printf("driver: %s\nclaims: %s\n", q.params.driver.c_str(), joined(q.params.capabilities, ", ").c_str());
  Run run = run_checks(q);
  return report(run, q);
}

}  // namespace memlink::conformance
