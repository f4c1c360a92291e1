// The end of a run: its figures gathered once, the verdict, the text
// summary, JSON, JUnit and the picture of a failing run.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "junit.hpp"
#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/percentile.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/recovery.hpp"
#include "picture.hpp"
#include "runner.hpp"

namespace memlink::chaos {

using namespace std::chrono_literals;
using shm::platform::monotonic_ns;

std::string ms(double ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", ns / 1e6);
  return b;
}

// What report() works from: every figure of the finished run, gathered once.
struct Runner::Figures {
  std::vector<ProcessLog> logs;
  std::vector<ProcessLife> lives;
  std::map<std::uint32_t, std::uint64_t> serving_at;  // daemon instance -> when it started serving
  CheckOptions check;
  Verdict verdict;
  std::vector<double> recovery_ns;       // kill to the next daemon serving, sorted
  std::vector<double> stop_takeover_ns;  // stop to the next daemon serving, sorted
  std::uint64_t kills = 0;
  double duration_s = 0;
  std::vector<std::string> violations;  // the runner's, then the checker's
  bool ok = false;
  std::string replay;
  std::string picture;  // a failing run's timeline, once drawn
};

double max_of(const std::vector<double>& sorted) { return sorted.empty() ? 0.0 : sorted.back(); }
std::uint64_t per_stream(const Verdict& v, const char* stream) {
  const auto it = v.per_stream_delivered.find(stream);
  return it == v.per_stream_delivered.end() ? 0 : it->second;
}

// Every process's log, how it ended, and when each daemon began serving.
void Runner::read_logs(Figures& f) const {
  for (const Proc& p : procs_) {
    ProcessLife life;
    life.started_ns = p.started_ns;
    life.ended_ns = p.ended_ns;
    if (p.hit_crash_point())
      life.death = "killed at crash point " + p.arm.point;
    else if (p.died_by_sigkill())
      life.death = "killed (SIGKILL) by the runner";
    else if (p.done && WIFSIGNALED(p.status))
      life.death = "died of signal " + std::to_string(WTERMSIG(p.status));
    f.lives.push_back(std::move(life));
    ProcessLog l;
    l.role = p.role;
    l.instance = p.instance;
    l.killed = p.died_by_sigkill();
    l.records = read_log(p.log_path);
    if (p.role == Role::Daemon)
      for (const Record& r : l.records)
        if (r.type == RecordType::Serving) f.serving_at[p.instance] = r.t_ns;
    f.logs.push_back(std::move(l));
  }
}

// What the transport promises: everything for the reference, what a
// driver claims (DRIVER.md D-CAPS) for another.
CheckOptions Runner::check_options() const {
  CheckOptions check;
  if (through_driver()) {
    check.sequences = o_.hello.has("sequences");
    check.positions = o_.hello.has("spec_layout");
    check.consumer_kill_may_lose = !o_.hello.has("two_step");
  }
  check.first_epoch = shm::first_epoch(o_.process.age);
  return check;
}

// Recovery time: from the kill (or stop) to the next daemon that served.
void Runner::measure_recoveries(Figures& f) const {
  for (const Recovery& r : recoveries_)
    for (std::uint32_t i = r.next_daemon; i < next_instance_[0]; ++i)
      if (auto it = f.serving_at.find(i); it != f.serving_at.end() && it->second >= r.t_fault) {
        (r.stop ? f.stop_takeover_ns : f.recovery_ns).push_back(static_cast<double>(it->second - r.t_fault));
        break;
      }
  std::sort(f.recovery_ns.begin(), f.recovery_ns.end());
  std::sort(f.stop_takeover_ns.begin(), f.stop_takeover_ns.end());
}

// The command that runs this schedule again.
std::string Runner::replay_command() const {
  char duration[32];
  const double whole = std::floor(o_.duration_s);
  if (whole == o_.duration_s)
    std::snprintf(duration, sizeof duration, "%.0fs", whole);
  else
    std::snprintf(duration, sizeof duration, "%.3fs", o_.duration_s);
  return "scripts/chaos " + (through_driver() ? "--driver '" + o_.driver + "' " : std::string()) + "--seed " +
         std::to_string(o_.seed) + " --clients " + std::to_string(o_.clients) +
         (o_.crash_walk ? std::string(" --crash-walk") : " --duration " + std::string(duration));
}

Runner::Figures Runner::gather_figures() const {
  Figures f;
  read_logs(f);
  f.check = check_options();
  f.verdict = check_history(f.logs, f.check);
  measure_recoveries(f);
  for (auto& [k, n] : kills_) f.kills += n;
  f.duration_s = static_cast<double>(monotonic_ns() - start_ns_) / 1e9;
  f.violations = runner_violations_;
  f.violations.insert(f.violations.end(), f.verdict.violations.begin(), f.verdict.violations.end());
  f.ok = f.verdict.ok() && runner_violations_.empty();
  f.replay = replay_command();
  return f;
}

void Runner::print_faults(const Figures& f) const {
  std::printf("memlink-chaos: seed %" PRIu64 ", %.1f s, %u writers + 1 reader, %u daemons started%s\n", o_.seed,
              f.duration_s, o_.clients, next_instance_[0],
              through_driver() ? (", driver " + o_.hello.name).c_str() : "");
  std::printf("  faults      %" PRIu64 " in all:", f.kills);
  for (auto& [k, n] : kills_) std::printf("  %s %" PRIu64, k.c_str(), n);
  std::printf("\n  crash points hit:");
  for (auto& [k, n] : crash_hits_) std::printf(" %s=%" PRIu64, k.c_str(), n);
  if (!pause_holds_.empty()) {
    std::printf("\n  pause points held:");
    for (auto& [k, n] : pause_holds_) std::printf(" %s=%" PRIu64, k.c_str(), n);
  }
  std::printf("\n");
}

void Runner::print_verdict(const Figures& f) const {
  const Verdict& v = f.verdict;
  std::printf("  messages    intended %" PRIu64 ", acknowledged %" PRIu64 ", refused %" PRIu64 ", delivered %" PRIu64
              " (c2d %" PRIu64 ", d2c %" PRIu64 ")\n",
              v.intended, v.acknowledged, v.refused, v.delivered, per_stream(v, "c2d"), per_stream(v, "d2c"));
  if (v.lost_to_killed_consumers > 0)
    std::printf("  excused     %" PRIu64
                " acknowledged messages not delivered, at most one per consumer killed inside a\n"
                "              read (the driver does not claim two_step: its read is destructive, SPEC K-TWO-STEP)\n",
                v.lost_to_killed_consumers);
  std::printf("  verdict     lost %" PRIu64 ", corrupt %" PRIu64 ", phantom %" PRIu64 ", duplicated %" PRIu64
              " (unexplained %" PRIu64 "), indeterminate %" PRIu64 " (+%" PRIu64 " delivered)\n",
              v.lost, v.corrupt, v.phantom, v.duplicated, v.duplicates_unexplained, v.indeterminate,
              v.indeterminate_delivered);
  std::printf("  order       FIFO violations %" PRIu64 ", priority violations %" PRIu64 " (of %" PRIu64
              " decidable checks), fence violations %" PRIu64 ", sequence violations %" PRIu64
              ", refused but delivered %" PRIu64 "\n",
              v.fifo_violations, v.priority_violations, v.priority_checked, v.fence_violations, v.sequence_violations,
              v.refused_delivered);
}

// Percentiles by nearest rank (memlink/shm/percentile.hpp), as every report here.
void Runner::print_recovery(const Figures& f) const {
  const auto& rec = f.recovery_ns;
  const auto& stop = f.stop_takeover_ns;
  std::printf("  recovery    kill to new daemon serving: p50 %s ms, p99 %s ms, max %s ms (%zu takeovers)\n",
              ms(shm::nearest_rank(rec, 0.5)).c_str(), ms(shm::nearest_rank(rec, 0.99)).c_str(),
              ms(max_of(rec)).c_str(), rec.size());
  std::printf(
      "              stop to new daemon serving (heartbeat timeout %u ms): p50 %s ms, max %s ms (%zu takeovers)\n",
      o_.process.heartbeat_timeout_ms, ms(shm::nearest_rank(stop, 0.5)).c_str(), ms(max_of(stop)).c_str(), stop.size());
}

void Runner::print_summary(const Figures& f) const {
  print_faults(f);
  print_verdict(f);
  print_recovery(f);
  for (const auto& s : f.violations) std::printf("  VIOLATION   %s\n", s.c_str());
  std::printf("%s\n", f.ok ? "memlink-chaos: PASS" : ("memlink-chaos: FAIL; replay with: " + f.replay).c_str());
}

// A failing run's timeline, around its first violation; its path.
std::string Runner::draw_picture(const Figures& f) const {
  const std::string path = o_.work_dir + "/timeline.html";
  std::ofstream(path) << conformance::render_timeline_html(
      chaos_timeline(f.logs, f.lives, f.violations.front(), f.replay));
  std::printf("memlink-chaos: picture of the run: %s\n", path.c_str());
  return path;
}

void Runner::write_json(const Figures& f) const {
  const Verdict& v = f.verdict;
  const auto& rec = f.recovery_ns;
  const auto& stop = f.stop_takeover_ns;
  nlohmann::json j{{"ok", f.ok},
                   {"seed", o_.seed},
                   {"duration_s", f.duration_s},
                   {"clients", o_.clients},
                   {"crash_walk", o_.crash_walk},
                   {"kills", f.kills},
                   {"kills_by_kind", kills_},
                   {"crash_points_hit", crash_hits_},
                   {"pause_points_held", pause_holds_},
                   {"daemons_started", next_instance_[0]},
                   {"intended", v.intended},
                   {"acknowledged", v.acknowledged},
                   {"refused", v.refused},
                   {"delivered", v.delivered},
                   {"deliveries", v.deliveries},
                   {"lost", v.lost},
                   {"duplicated", v.duplicated},
                   {"duplicates_unexplained", v.duplicates_unexplained},
                   {"corrupt", v.corrupt},
                   {"phantom", v.phantom},
                   {"indeterminate", v.indeterminate},
                   {"indeterminate_delivered", v.indeterminate_delivered},
                   {"fifo_violations", v.fifo_violations},
                   {"priority_violations", v.priority_violations},
                   {"priority_checked", v.priority_checked},
                   {"fence_violations", v.fence_violations},
                   {"sequence_violations", v.sequence_violations},
                   {"refused_delivered", v.refused_delivered},
                   {"recovery_ms",
                    {{"count", rec.size()},
                     {"p50", shm::nearest_rank(rec, 0.5) / 1e6},
                     {"p99", shm::nearest_rank(rec, 0.99) / 1e6},
                     {"max", max_of(rec) / 1e6}}},
                   {"stop_takeover_ms",
                    {{"count", stop.size()}, {"p50", shm::nearest_rank(stop, 0.5) / 1e6}, {"max", max_of(stop) / 1e6}}},
                   {"violations", f.violations},
                   {"replay", f.replay},
                   {"lost_to_killed_consumers", v.lost_to_killed_consumers}};
  if (through_driver()) {
    j["driver"] = o_.driver;
    j["driver_name"] = o_.hello.name;
    j["capabilities"] = o_.hello.capabilities;
    j["checks_skipped"] = {{"sequences", !f.check.sequences}, {"positions", !f.check.positions}};
  }
  if (!f.picture.empty()) j["picture"] = f.picture;
  std::ofstream(o_.json_path) << j.dump(2) << "\n";
}

// One test case for the run (harness/junit.hpp): a failure lists every
// violation; system-out has the replay command (and the picture).
void Runner::write_junit(const Figures& f) const {
  conformance::junit::TestCase tc{"chaos seed " + std::to_string(o_.seed),
                                  "memlink-chaos",
                                  f.duration_s,
                                  {},
                                  std::nullopt,
                                  "replay: " + f.replay + "\n"};
  if (!f.picture.empty()) tc.system_out += "picture: " + f.picture + "\n";
  if (!f.ok) {
    std::string text;
    for (const auto& s : f.violations) text += s + "\n";
    tc.failures.push_back({std::to_string(f.violations.size()) + " violations", text + "replay: " + f.replay});
  }
  if (!conformance::junit::write(o_.junit_path, {"memlink-chaos", f.duration_s, {tc}}))
    std::fprintf(stderr, "memlink-chaos: could not write %s\n", o_.junit_path.c_str());
}

// The segment's leftovers (through the driver, if it cleans up), the
// drivers' pipes, and the logs of a passing run.
void Runner::clean_up(bool ok) {
  if (!through_driver()) {
    (void)shm::RecoveryManager(o_.process.segment).cleanup_orphaned_shm();
  } else if (o_.hello.has("cleanup")) {
    try {
      (void)conformance::driver::DriverProcess::start(o_.driver, "cleanup")
          ->call({{"op", "cleanup"}, {"segment", o_.process.segment}});
    } catch (const conformance::driver::DriverFailure&) {
    }
  }
  drivers_.clear();
  if (!o_.keep_logs && ok)
    std::filesystem::remove_all(o_.work_dir);
  else if (!ok)
    std::printf("memlink-chaos: logs kept in %s\n", o_.work_dir.c_str());
}

int Runner::report() {
  Figures f = gather_figures();
  if (!o_.quiet || !f.ok) print_summary(f);
  if (!f.ok) f.picture = draw_picture(f);
  if (!o_.json_path.empty()) write_json(f);
  if (!o_.junit_path.empty()) write_junit(f);
  clean_up(f.ok);
  return f.ok ? 0 : 1;
}

}  // namespace memlink::chaos
