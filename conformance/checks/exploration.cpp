// The exploration check: the real reference code (its test build) run
// under the cooperative scheduler of explore/, over every schedule of tiny
// configurations (bounded preemptions) and over PCT-sampled schedules of
// small ones, with deaths, early timeouts and a hostile peer; every run's
// history is checked (explore/scenarios.hpp: linearizability, each message
// delivered once and intact, T-SEQ, K-CLAIMED and T-BLOCKING timing, K-FENCE,
// and lost wake-ups, which the scheduler sees exactly).
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <unordered_set>

#include "explore/scenarios.hpp"
#include "explore/scheduler.hpp"
#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {
namespace {

using explore::Config;
using explore::Scenario;

// PCT runs at the default depth: about what the old 75 s cap let through
// on a 2-vCPU machine after the exhaustive phase (3,074 in a recorded run
// under load; about 12 ms a run, so some 36 s here).
constexpr std::uint64_t kDefaultPctRuns = 3000;

std::string seconds_text(std::chrono::steady_clock::duration d) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f s", std::chrono::duration<double>(d).count());
  return b;
}

std::string& reproduce_string() {
  static std::string s;
  return s;
}

Config cfg(const char* scenario, int size, int producers, int messages, int slot, int mode, bool weak = false) {
  Config c;
  c.weak = weak;
  c.scenario = scenario;
  c.size = size;
  c.producers = producers;
  c.messages = messages;
  c.slot = slot;
  c.mode = mode;
  return c;
}

// `c` formatted aged (SPEC C-AGE): its counters pass their wraps in the run.
Config aged(Config c, shm::SegmentAge age) {
  c.age = age;
  return c;
}

// The configurations PCT samples, cycled: capacities 1-3 so that every run
// meets a full or nearly full ring, more producers than slots.
std::vector<Config> pct_configs() {
  std::vector<Config> v;
  for (int cap : {1, 2, 3})
    for (int p : {2, 3}) v.push_back(cfg("ring", cap, p, 3 - (p == 3), cap == 2 ? 64 : 40, 0));
  for (int n : {1, 3})
    for (int mode : {0, 1, 2}) v.push_back(cfg("transport", n, mode == 0 ? 3 : 2, 2, 40, mode));
  v.push_back(cfg("transport", 2, 1, 3, 40, 1));
  for (int n : {1, 3}) v.push_back(cfg("takeover", n, n == 1 ? 1 : 2, 3, 40, 0));
  v.push_back(cfg("takeover", 1, 1, 3, 40, 2));
  v.push_back(cfg("takeover", 2, 1, 3, 40, 4));  // a watching successor
  for (int target = 0; target < 6; ++target)     // each field the hostile peer toggles
    v.push_back(cfg("hostile", 1 + target % 2, 1, 3, target % 2 ? 24 : 40, target));
  // Each again with weak memory: loads may read older stores (PCT picks a
  // few of them per run).
  const std::size_t sc = v.size();
  for (std::size_t i = 0; i < sc; ++i) {
    v.push_back(v[i]);
    v.back().weak = true;
  }
  // Some again from aged segments: generations wrap, positions run to
  // their end, the takeover's epoch wraps. At most 2c + 1 messages a ring:
  // position-end leaves no more before the ring is exhausted (Full for good,
  // so a producer that kept trying would never finish).
  for (auto age : {shm::SegmentAge::LapWrap, shm::SegmentAge::PositionEnd}) {
    v.push_back(aged(cfg("ring", 2, 2, 2, 40, 0), age));
    v.push_back(aged(cfg("transport", 1, 1, 3, 40, 1), age));
    v.push_back(aged(cfg("takeover", 1, 1, 3, 40, 0), age));
  }
  return v;
}

// Tiny configurations explored exhaustively (every schedule with at most
// `preemptions` preemptions and, where writers may die, one death at any
// named point).
struct Exhaustive {
  Config config;
  int preemptions;
  int deaths;
  int stalls = 0;
  int stall_kind = 0;   // kStallNs
  int stale_reads = 0;  // weak memory: loads that may read an older store
  int focus = -1;       // make_exhaustive's focused search on this thread
};
// K-FENCE under weak memory (a focused search, make_exhaustive): the old
// daemon stalls just before any of its stores or CASes for longer than its
// successor's heartbeat watch, the successor takes over and then starts
// slowly (mode bit 1), and the old daemon is resumed at any of the
// successor's steps with one of its loads reading an older store. Its
// check of the epoch after the take CAS must see the bump, or the
// successor's look at the slot must see Reading: the store-buffering pair
// that x86's locked CAS hides and ARM does not. 1,141 schedules.
const Exhaustive kFencedDaemonResumes{cfg("takeover", 1, 1, 1, 40, 2, true), 1, 0, 1, 2, 1, /*focus: daemon A*/ 1};

// A fenced daemon's unfinished hand-off raced by a successor that serves
// (a focused search, make_exhaustive): the old daemon stalls just before
// any of its stores or CASes, past the heartbeat timeout; a watching
// successor (mode bit 2) takes over and serves the rest, finishes
// included; then the old daemon resumes where it stopped. Whatever the
// two write to the same word (the slot's, the tail, daemon_tail: the
// fenced daemon may still finish what it took, K-FENCE), nothing may be
// lost, delivered twice or miscounted. `messages` 2: one the old daemon
// takes, one its successor does.
Exhaustive fenced_daemon_races_its_successor(Config c) {
  return {c, 0, 0, 1, 2, c.weak ? 1 : 0, /*focus: daemon A*/ 1};
}

// A hostile peer at a full ring with a producer waiting for the next lap
// (a focused search on the consumer, thread 2): the peer attacks the slot,
// gives way to the consumer once at any of its steps, and the consumer,
// dropping the slot, stalls before any of its stores and is resumed at any
// step of the others; the producer claims the next lap meanwhile. The
// oracle excuses no writer error there (the peer never touches a word,
// head or tail). `field` is the config's mode: the field the peer toggles.
Exhaustive hostile_at_a_full_ring(int field) { return {cfg("hostile", 1, 1, 2, 40, field), 1, 0, 1, 0, 0, 2}; }

std::vector<Exhaustive> exhaustive_configs(Depth d) {
  // Weak memory (the last field: stale reads): every hand-off of one
  // message, and the wake protocol, with up to two loads reading an older
  // store than the newest.
  if (d == Depth::Quick)
    return {{cfg("ring", 1, 2, 1, 40, 0), 1, 0},
            {cfg("transport", 1, 1, 2, 40, 1), 1, 0},
            {cfg("ring", 1, 1, 2, 40, 0, true), 0, 0, 0, 0, 1},
            {aged(cfg("ring", 1, 2, 1, 40, 0), shm::SegmentAge::LapWrap), 1, 0},
            kFencedDaemonResumes,
            fenced_daemon_races_its_successor(cfg("takeover", 1, 1, 2, 40, 4)),
            fenced_daemon_races_its_successor(cfg("takeover", 1, 1, 3, 40, 12)),
            hostile_at_a_full_ring(0)};
  std::vector<Exhaustive> v = {
      {cfg("ring", 1, 2, 1, 40, 0), 1, 1},
      {cfg("ring", 2, 2, 2, 40, 0), 1, 1},
      {cfg("transport", 1, 2, 1, 40, 0), 1, 0},
      {cfg("transport", 1, 2, 1, 40, 1), 1, 0},
      {cfg("takeover", 1, 1, 2, 40, 0), 1, 0},
      {cfg("hostile", 1, 1, 2, 40, 4), 1, 0},
      {cfg("hostile", 1, 1, 2, 40, 0), 1, 0},
      // Two preemptions around one read: the peer acts between the
      // take and the copy, and again before the check (V-ONCE).
      {cfg("hostile", 1, 1, 1, 40, 4), 2, 0},
      // A stall just before any store or CAS, with one preemption (an
      // early resume counts as one): the windows between a check and
      // the CAS it guards.
      {cfg("takeover", 1, 1, 1, 40, 2), 0, 0, 1, 2},
      {cfg("ring", 1, 1, 1, 40, 0), 1, 0, 1, 0},
      {cfg("ring", 1, 1, 2, 40, 0, true), 1, 0, 0, 0, 2},
      {cfg("transport", 1, 1, 1, 40, 1, true), 1, 0, 0, 0, 2},
      {cfg("takeover", 1, 1, 1, 40, 0, true), 1, 0, 0, 0, 1},
      // Every hand-off across the generation's wrap and into the
      // positions' end, and a takeover across the epoch's wrap.
      {aged(cfg("ring", 2, 2, 2, 40, 0), shm::SegmentAge::LapWrap), 1, 1},
      {aged(cfg("ring", 2, 2, 2, 40, 0), shm::SegmentAge::PositionEnd), 1, 0},
      {aged(cfg("transport", 1, 2, 1, 40, 1), shm::SegmentAge::LapWrap), 1, 0},
      {aged(cfg("takeover", 1, 1, 2, 40, 0), shm::SegmentAge::LapWrap), 1, 0},
      kFencedDaemonResumes,
      {cfg("takeover", 1, 1, 2, 40, 2, true), 1, 0, 1, 2, 1, /*focus: daemon A*/ 1},
      // Every message on one ring (mode bit 3), three of them: while the
      // old daemon is stalled between its release of position p and its
      // tail step, its successor moves the tail over p (K-DONE), reads p+1,
      // and the producer claims p+2; the late tail step lands after all of
      // that (a store there would move the tail back: "head 3 and tail 1").
      fenced_daemon_races_its_successor(cfg("takeover", 1, 1, 3, 40, 12)),
      fenced_daemon_races_its_successor(cfg("takeover", 1, 1, 2, 40, 4)),
      fenced_daemon_races_its_successor(cfg("takeover", 1, 1, 2, 40, 4, true)),
      fenced_daemon_races_its_successor(cfg("takeover", 2, 1, 3, 40, 4)),
      fenced_daemon_races_its_successor(cfg("takeover", 1, 1, 2, 40, 5)),
      fenced_daemon_races_its_successor(aged(cfg("takeover", 1, 1, 2, 40, 4), shm::SegmentAge::LapWrap)),
      hostile_at_a_full_ring(0),   // length
      hostile_at_a_full_ring(3),   // position
      hostile_at_a_full_ring(4)};  // a payload byte
  if (d == Depth::Deep) {
    v.push_back({cfg("ring", 1, 2, 1, 40, 0), 2, 1});
    v.push_back({cfg("ring", 2, 2, 1, 40, 0), 2, 0});
    v.push_back({cfg("transport", 1, 2, 1, 40, 0), 2, 0});
    v.push_back({cfg("takeover", 1, 1, 1, 40, 0), 2, 0});
    v.push_back({cfg("hostile", 1, 1, 2, 40, 4), 2, 0});
    v.push_back({cfg("hostile", 1, 1, 2, 40, 0), 2, 0});
  }
  return v;
}

struct Explorer {
  const Params& params;
  CheckResult& result;
  std::unordered_set<std::size_t> distinct;
  std::uint64_t runs = 0, deaths = 0, max_steps = 0, lost_wake_checks = 0;
  std::map<std::string, std::uint64_t> per_scenario;

  // One run of `c` under `strategy`; false (and the failure filled in) if a
  // clause broke.
  bool run_once(const Config& c, explore::Strategy& strategy) {
    auto scenario = explore::make_scenario(c);
    if (!scenario) {
      result.failure =
          Failure{{}, "exploration: cannot set up " + c.text() + ": " + scenario.error().message(), {}, ""};
      return false;
    }
    explore::SchedulerOptions options;
    options.weak_memory = c.weak;
    explore::Scheduler sched(options);
    Scenario& sc = **scenario;
    auto specs = sc.threads();
    std::vector<std::string> names;
    for (const auto& s : specs) names.push_back(s.name);
    const explore::Execution e = sched.run(std::move(specs), strategy, [&sc] {
      sc.record.final_state = sc.snapshot();
      sc.at_end();
    });
    (*scenario)->cleanup();
    ++runs;
    ++per_scenario[c.scenario];
    deaths += e.died.size();
    max_steps = std::max(max_steps, e.steps);
    const std::string decisions = explore::encode_decisions(e.decisions);
    distinct.insert(std::hash<std::string>{}(c.text() + "@" + decisions));
    for (const ClauseId clause : explore::clauses_of(c)) params.record(clause);
    const auto violations = explore::check_run(c, (*scenario)->record, e);
    if (violations.empty()) return true;
    const Violation& first = violations.front();
    Failure f = Failure::of(first);
    f.description += " (exploration run " + std::to_string(runs) + ", scenario " + c.text() + ")";
    for (std::size_t i = 1; i < violations.size() && i < 6; ++i)
      f.counterexample.push_back("also: " + violations[i].describe());
    for (auto& line : explore::describe_run(c, (*scenario)->record)) f.counterexample.push_back(line);
    f.counterexample.push_back("schedule (thread switches, deaths, timeouts):");
    std::size_t start = 0, lines = 0;
    for (std::size_t nl; (nl = e.schedule_text.find('\n', start)) != std::string::npos && lines < 80;
         start = nl + 1, ++lines)
      f.counterexample.push_back(e.schedule_text.substr(start, nl - start));
    f.replay = "scripts/conformance --only exploration --reproduce '" + c.text() + "@" + decisions + "'";
    result.picture_html =
        render_timeline_html(explore::run_timeline(c, (*scenario)->record, e, names, first, f.replay));
    result.failure = std::move(f);
    return false;
  }
};

// Replays the --reproduce schedule once, and says where it stopped fitting
// this build, if it did.
void replay_reproduce(Explorer& x) {
  CheckResult& result = x.result;
  const std::string& s = reproduce_string();
  const auto at = s.find('@');
  const auto c = Config::parse(s.substr(0, at));
  const auto d = explore::decode_decisions(s.substr(at + 1));
  auto replay = explore::make_replay(*d);
  x.run_once(*c, *replay);
  result.cases = 1;
  result.notes = "replayed one schedule of " + c->text();
  if (const auto at = replay->diverged_at()) {
    // Say so beside any failure: what the run found after this point is
    // not what the recorded run found.
    const std::string where = *at < d->size()
                                  ? "decision " + std::to_string(*at + 1) + " of " + std::to_string(d->size()) +
                                        " names a step this run cannot take there"
                                  : "the run went on past the record's " + std::to_string(d->size()) + " decisions";
    const std::string why = "the schedule does not fit this build: " + where +
                            " (was it recorded on other code?); the replay followed it up to there, then ran fairly";
    result.notes += "; " + why;
    if (result.failure) result.failure->description = "[replay diverged] " + why + ". " + result.failure->description;
  }
}

// How one tiny configuration was explored, for the notes: its `n` schedules and their bounds.
std::string exhaustive_text(const Exhaustive& ex, std::uint64_t n) {
  return ex.config.text() + " all " + std::to_string(n) + " (<=" + std::to_string(ex.preemptions) + " preemptions" +
         (ex.deaths ? ", a death" : "") +
         (ex.stalls ? ", a " + std::to_string(explore::kStallNs[ex.stall_kind] / 1000000) + " ms stall"
                    : std::string()) +
         (ex.stale_reads ? ", <=" + std::to_string(ex.stale_reads) + " stale reads" : std::string()) +
         (ex.focus >= 0 ? ", focused on thread " + std::to_string(ex.focus) : std::string()) + ")";
}

// Every schedule of each tiny configuration; false as soon as a run fails.
// `note` gets what was explored.
bool explore_exhaustive(Explorer& x, std::string& note) {
  for (const auto& ex : exhaustive_configs(x.params.depth)) {
    auto dfs = explore::make_exhaustive(ex.preemptions, ex.deaths, ex.stalls, ex.stall_kind, ex.stale_reads, ex.focus);
    std::uint64_t n = 0;
    do {
      ++n;
      if (!x.run_once(ex.config, *dfs)) return false;
    } while (dfs->next() && n < (x.params.depth == Depth::Deep ? 5'000'000u : 200'000u));
    note += (note.empty() ? "" : ", ") + exhaustive_text(ex, n);
  }
  return true;
}

// The PCT phase's runs, and when it began.
struct PctPhase {
  std::uint64_t runs = 0;
  std::chrono::steady_clock::time_point started;
};

// PCT over small configurations, seeded from --seed, until the budget is
// spent or a run fails.
PctPhase explore_pct(Explorer& x) {
  // A number of runs, not a time: the same seed runs the same schedules on
  // any machine, under any load and any sanitizer (a clock cap gave a loaded
  // machine fewer schedules, and a mutant a chance to survive there that it
  // had not here).
  const std::uint64_t budget = x.params.depth == Depth::Quick     ? 400
                               : x.params.depth == Depth::Default ? kDefaultPctRuns
                                                                  : 100000;
  const auto configs = pct_configs();
  std::mt19937_64 rng(x.params.seed ^ 0xE4B10E);
  PctPhase pct;
  pct.started = std::chrono::steady_clock::now();
  for (; pct.runs < budget; ++pct.runs) {
    const Config& c = configs[pct.runs % configs.size()];
    const int depth = 1 + static_cast<int>((pct.runs / configs.size()) % 3);
    auto strategy = explore::make_pct(rng(), depth, 400);
    if (!x.run_once(c, *strategy)) break;
  }
  return pct;
}

// The check's notes: what ran, by scenario and by phase, and how long it took.
std::string exploration_notes(const Explorer& x, const std::string& exhaustive_note, const PctPhase& pct,
                              std::chrono::steady_clock::time_point started) {
  std::string by;
  for (const auto& [s, n] : x.per_scenario) by += (by.empty() ? "" : ", ") + s + " " + std::to_string(n);
  return std::to_string(x.runs) + " schedules (" + std::to_string(x.distinct.size()) + " distinct; " + by + "), " +
         std::to_string(x.deaths) + " deaths, longest " + std::to_string(x.max_steps) +
         " steps; exhaustive: " + exhaustive_note + "; PCT: " + std::to_string(pct.runs) + " runs in " +
         seconds_text(std::chrono::steady_clock::now() - pct.started) + " (of " +
         seconds_text(std::chrono::steady_clock::now() - started) + ")";
}

}  // namespace

void set_exploration_reproduce(const std::string& s) { reproduce_string() = s; }

bool valid_exploration_reproduce(const std::string& s) {
  const auto at = s.find('@');
  return at != std::string::npos && Config::parse(s.substr(0, at)) && explore::decode_decisions(s.substr(at + 1));
}

CheckResult run_exploration(const Params& params) {
  CheckResult result;
  result.name = "exploration";
  Explorer x{params, result, {}, 0, 0, 0, 0, {}};
  const auto started = std::chrono::steady_clock::now();

  if (!reproduce_string().empty()) {
    replay_reproduce(x);
    return result;
  }

  // 1. Every schedule of the tiny configurations.
  std::string exhaustive_note;
  if (!explore_exhaustive(x, exhaustive_note)) {
    result.cases = static_cast<int>(x.runs);
    return result;
  }

  // 2. PCT over small configurations, seeded from --seed: a number of runs,
  // not a time (explore_pct says why).
  const PctPhase pct = explore_pct(x);
  result.cases = static_cast<int>(x.runs);
  result.notes = exploration_notes(x, exhaustive_note, pct, started);
  return result;
}

}  // namespace memlink::conformance
