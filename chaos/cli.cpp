// memlink-chaos's command line: its options, the driver's hello, the work
// directory; then the run (runner.hpp).
#include "cli.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli_support.hpp"
#include "memlink/shm/crash_point.hpp"
#include "runner.hpp"

namespace memlink::chaos {
namespace {

void add_options(CLI::App& app, Options& o, std::string& age) {
  // Durations with CLI11's unit support: 90, 90s, 1.5m, 2h, 500ms (seconds when bare).
  const std::map<std::string, double> seconds_units{{"ms", 0.001}, {"s", 1}, {"m", 60}, {"min", 60}, {"h", 3600}};
  o.duration_s = 60;
  app.add_option("--duration", o.duration_s, "How long to attack (e.g. 60s, 10m, 1h; bare numbers are seconds)")
      ->transform(CLI::AsNumberWithUnit(seconds_units, CLI::AsNumberWithUnit::CASE_SENSITIVE, "UNIT"))
      ->check(CLI::Range(0.001, 30.0 * 86400))
      ->default_str("60s");
  app.add_option("--seed", o.seed, "Seed of the fault schedule and the traffic")->capture_default_str();
  app.add_option("--clients", o.clients, "Writing client processes")->capture_default_str()->check(CLI::Range(1, 16));
  app.add_option("--rate", o.process.rate, "Messages per second per writer, between bursts")->capture_default_str();
  app.add_option("--json", o.json_path, "Write the summary as JSON to FILE");
  app.add_option("--junit", o.junit_path, "Write a JUnit XML report to FILE");
  app.add_flag("--crash-walk", o.crash_walk,
               "Instead of random faults, hit every crash point once, in order, then "
               "stop and replace the daemon once (deterministic, a few seconds)");
  app.add_option("--heartbeat-ms", o.process.heartbeat_ms, "Daemon heartbeat interval")->capture_default_str();
  app.add_option("--heartbeat-timeout-ms", o.process.heartbeat_timeout_ms, "Silence after which a daemon is replaced")
      ->capture_default_str();
  app.add_option("--hang-timeout", o.hang_timeout_s, "Time without progress that counts as a hang (e.g. 30s, 2m)")
      ->transform(CLI::AsNumberWithUnit(seconds_units, CLI::AsNumberWithUnit::CASE_SENSITIVE, "UNIT"))
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  app.add_option("--work-dir", o.work_dir, "Where the process logs go (default: a new directory in /tmp)");
  app.add_flag("--keep-logs", o.keep_logs, "Keep the logs of a passing run");
  app.add_flag("--quiet", o.quiet, "Print only a failure");
  app.add_option("--driver", o.driver,
                 "Attack the transport this command drives (conformance/DRIVER.md, workload mode) instead of the "
                 "reference, e.g. --driver build/release/memlink-shm-driver");
  app.add_option("--age", age,
                 "Format the segment aged (SPEC C-AGE): lap-wrap starts every ring's generation 2 messages before "
                 "its wrap and the epoch at 2^64 - 1, so that the run crosses both")
      ->check(CLI::IsMember({"fresh", "lap-wrap"}))
      ->capture_default_str();
  memlink::cli::add_version_flag(app, "memlink-chaos");
}

// --driver: what the driver said in its hello, and that it claims what
// chaos needs. An exit status when it cannot be used.
std::optional<int> open_driver(Options& o) {
  if (o.crash_walk) {
    std::fprintf(stderr, "memlink-chaos: --crash-walk attacks the reference; not with --driver\n");
    return 2;
  }
  try {
    o.hello = memlink::conformance::driver::DriverProcess::start(o.driver, "probe")->hello();
  } catch (const memlink::conformance::driver::DriverFailure& e) {
    std::fprintf(stderr, "memlink-chaos: cannot start the driver: %s\n", e.what());
    return 2;
  }
  std::string missing;
  std::vector<const char*> needs = {"workload", "crash_recovery"};
  if (o.process.age != memlink::shm::SegmentAge::Fresh) needs.push_back("aged");
  for (const char* needed : needs)
    if (!o.hello.has(needed)) missing += std::string(missing.empty() ? "" : "' and '") + needed;
  if (!missing.empty()) {
    std::fprintf(stderr,
                 "memlink-chaos: the driver '%s' does not claim capability '%s', which chaos needs "
                 "(conformance/DRIVER.md D-CAPS, D-WORKLOAD)\n",
                 o.hello.name.c_str(), missing.c_str());
    return 2;
  }
  if (o.process.slot_size < kMinPayload) {
    std::fprintf(stderr, "memlink-chaos: slot size %u is below the %zu bytes of a workload message\n",
                 o.process.slot_size, kMinPayload);
    return 2;
  }
  return std::nullopt;
}

// The work directory: --work-dir, made if missing, or a new one in /tmp.
std::optional<int> make_work_dir(Options& o) {
  if (o.work_dir.empty()) {
    char tmpl[] = "/tmp/memlink-chaos.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      std::perror("memlink-chaos: mkdtemp");
      return 2;
    }
    o.work_dir = tmpl;
  } else {
    std::filesystem::create_directories(o.work_dir);
  }
  return std::nullopt;
}

}  // namespace

int run_main(int argc, char** argv) {
  CLI::App app{
      "memlink-chaos: kill, stop and crash the daemon and clients of one segment, then check that nothing\n"
      "acknowledged was lost, nothing corrupt or unwritten was delivered, duplicates came only from\n"
      "consumers killed mid-read, order held, a replaced daemon stopped, and nothing hung.",
      "memlink-chaos"};
  Options o;
  std::string age = "fresh";
  add_options(app, o, age);
  if (const auto status = memlink::cli::parse(app, argc, argv)) return *status;
  o.process.age = *memlink::shm::parse_segment_age(age);
  if (!o.driver.empty())
    if (const auto status = open_driver(o)) return *status;
  if (o.driver.empty() && !memlink::shm::crash_points_compiled_in()) {
    std::fprintf(stderr, "memlink-chaos: built without crash points (link memlink_shm_testing)\n");
    return 2;
  }
  if (const auto status = make_work_dir(o)) return *status;
  o.process.seed = o.seed;
  o.process.segment = "/dev/shm/memlink-chaos-" + std::to_string(::getpid());
  Runner runner(o);
  return runner.run();
}

}  // namespace memlink::chaos
