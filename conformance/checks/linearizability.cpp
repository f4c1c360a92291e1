// The linearizability check, through the driver protocol: writers in client
// processes (or threads, in process) and a reader in the daemon's, every
// request timed on the suite's clock; each history checked for
// linearizability against the sequential spec (linearizability.hpp), for
// T-SEQ, and for acknowledged writes that were never delivered.
//
// In process (--adapter reference) the even histories run every endpoint on
// threads of the suite (ThreadSanitizer sees all their accesses) and the odd
// ones in forked processes; through a driver, every endpoint is a process.
// Processes are reused across histories where the driver can reset them.
#include "linearizability.hpp"

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "capabilities.hpp"
#include "driver_cluster.hpp"
#include "memlink/shm/layout.hpp"
#include "memlink/shm/priority.hpp"
#include "memlink/shm/slot.hpp"
#include "rc_runner.hpp"
#include "timeline.hpp"

namespace memlink::conformance {
namespace {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;

constexpr int kWriters = 4;
// Writes per writer per history: 16, halved (to 4 at least) after a history
// the search could not decide within its budget, doubled back after ten it
// could: a transport with deep rings and slow processes gets histories the
// search can still decide, instead of a run of undecided ones.
constexpr int kMostWrites = 16, kFewestWrites = 4;
constexpr std::size_t kMaxEmptyReads = 40;  // recorded; more are run but not recorded (sound)
constexpr std::uint32_t kSlotSize = 16;

// A segment of n slots per direction, as SPEC's geometry lays it out (a
// transport with a floor on segment sizes gets its floor: D-LIMITS).
std::size_t segment_size_for(int n) {
  const std::size_t stride = shm::slot_stride_for(kSlotSize);
  return 4096 + 2 * (3 * shm::RING_HEADER_SIZE + shm::calculate_slot_distribution(n).total() * stride);
}

std::array<std::uint32_t, shm::kPriorityCount> capacities_of(const Reply& created, int n) {
  const auto d = shm::calculate_slot_distribution(n);
  std::array<std::uint32_t, shm::kPriorityCount> cap{d.critical, d.high, d.low};
  if (created.body.contains("capacity"))  // the driver's own (D-CREATE), if it says
    for (std::size_t p = 0; p < shm::kPriorityCount; ++p)
      cap[p] = driver::integer<std::uint32_t>(created.body["capacity"].at(p));
  return cap;
}

// One writer: writes with random priorities, one request at a time.
std::vector<HistoryOp> write_history(DriverProcess& p, int process, std::uint64_t seed, bool priorities,
                                     std::uint32_t slot_size, int writes, std::string& unexpected) {
  std::mt19937_64 rng(seed);
  std::vector<HistoryOp> ops;
  for (int k = 0; k < writes; ++k) {
    HistoryOp op;
    op.kind = HistoryOp::Kind::Write;
    op.process = process;
    op.priority = priorities ? static_cast<shm::Priority>(rng() % 3) : shm::Priority::Low;
    op.id = (std::uint64_t(process) << 32) | std::uint64_t(k);
    const std::size_t length = 8 + rng() % (std::max<std::uint32_t>(slot_size, 8) - 7);
    const Reply r = p.call({{"op", "write"},
                            {"priority", static_cast<int>(op.priority)},
                            {"data", driver::to_hex(message_payload(op.id, length))}});
    op.invoke_ns = r.invoke_ns;
    op.response_ns = r.response_ns;
    op.ok = r.ok();
    if (!r.ok() && r.error().code != shm::ErrorCode::Full) {
      unexpected = p.role() + " write: " + r.error().message();
      break;
    }
    ops.push_back(op);
  }
  return ops;
}

// The daemon reads until the writers are done and its rings are empty.
std::vector<HistoryOp> read_history(DriverProcess& p, const std::atomic<int>& writers_done, std::string& unexpected) {
  std::vector<HistoryOp> ops;
  std::size_t empty_recorded = 0;
  for (;;) {
    const bool finished = writers_done.load() == kWriters;
    const Reply r = p.call({{"op", "read"}});
    HistoryOp op;
    op.kind = HistoryOp::Kind::Read;
    op.process = 0;
    op.invoke_ns = r.invoke_ns;
    op.response_ns = r.response_ns;
    if (r.ok()) {
      const auto data = driver::from_hex(r.body.value("data", std::string()));
      const auto id = data ? message_id(*data) : std::nullopt;
      if (!id) {
        unexpected =
            "the daemon delivered a payload no writer wrote: " + r.body.value("data", std::string()).substr(0, 80);
        return ops;
      }
      op.ok = true;
      op.id = *id;
      op.priority = driver::priority(r.body);
      op.sequence = driver::integer_or<std::uint64_t>(r.body, "sequence", 0);
      ops.push_back(op);
      continue;
    }
    if (r.error().code != shm::ErrorCode::Empty) {
      unexpected = "daemon read: " + r.error().message();
      return ops;
    }
    if (empty_recorded++ < kMaxEmptyReads) ops.push_back(op);  // leaving out a failed read is sound
    if (finished) return ops;
  }
}

// Runs the writers (threads of the suite, each driving its own client) and
// the reader (this thread, driving the daemon); a driver that hung or died
// fails with its DriverFailure.
std::vector<HistoryOp> run_history(Cluster& c, std::uint64_t seed, int writes, std::string& unexpected) {
  std::vector<std::vector<HistoryOp>> per(kWriters + 1);
  std::vector<std::string> odd(kWriters + 1);
  std::atomic<int> done{0};
  FirstException thrown;
  const bool priorities = c.params().claims("priorities");
  const std::uint32_t slot = c.options().slot_size;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      thrown.run(
          [&] { per[w + 1] = write_history(*c.clients[w], w + 1, seed + w, priorities, slot, writes, odd[w + 1]); });
      done.fetch_add(1);
    });
  thrown.run([&] { per[0] = read_history(*c.daemon, done, odd[0]); });
  for (auto& t : threads) t.join();
  thrown.rethrow();  // a driver that hung or died: DriverFailure
  std::vector<HistoryOp> history;
  for (std::size_t k = 0; k < per.size(); ++k) {
    history.insert(history.end(), per[k].begin(), per[k].end());
    if (unexpected.empty()) unexpected = odd[k];
  }
  return history;
}

struct Tally {
  std::size_t histories = 0, ops = 0, full = 0, empty = 0, largest = 0, forked = 0, undecided = 0, aged = 0;
  int started_before = 0, reused_before = 0;  // the launcher's counts when the check began
  std::string note(const driver::Launcher& l, bool in_process) const {
    return std::to_string(histories) + " histories of " + std::to_string(kWriters) +
           " writers (4 to 16 writes each) and a reader" +
           (in_process ? " (" + std::to_string(forked) + " in forked processes, the rest on threads)"
                       : " in processes") +
           ", " + std::to_string(ops) + " operations (" + std::to_string(full) + " Full, " + std::to_string(empty) +
           " Empty), largest " + std::to_string(largest) + "; " + std::to_string(aged) +
           " from an aged segment (C-AGE); " + std::to_string(l.started() - started_before) + " processes started, " +
           std::to_string(l.reused() - reused_before) + " reused" +
           (undecided == 0 ? std::string()
                           : "; " + std::to_string(undecided) +
                                 " histories undecided (the search met its budget): they count for no clause");
  }
};

// What the histories of one run share: the check's parameters and result, the
// tally, and the writes per writer the next history gets (kMostWrites).
struct LinearizabilityRun {
  const Params& params;
  CheckResult& result;
  bool in_process;
  Tally tally;
  int writes, decided_in_a_row;
};

// The cluster options of a history on a segment of n slots per direction.
Cluster::Options history_options(int n) {
  Cluster::Options o;
  o.segment_size = segment_size_for(n);
  o.slot_size = kSlotSize;
  o.heartbeat_timeout_ms = 60000;
  o.daemon_timeout_ms = 60000;
  return o;
}

// G-FIT: the driver could not create a segment of `requested` bytes (or of what c's options fitted it to).
Failure creation_failure(const Params& params, const Cluster& c, std::size_t requested, const Reply& created) {
  return Failure::of(
      Violation{ClauseId::G_FIT, "the driver could not create a segment of " + std::to_string(requested) +
                                     " bytes (fitted to its limits: " + std::to_string(c.options().segment_size) +
                                     "), slot size " + std::to_string(c.options().slot_size) + ": " +
                                     created.error().message()},
      c.steps(), driver_replay(params, "linearizability"));
}

// Starts the history's writers, a client each; false (the failure in the result) if one could not be added.
bool add_writers(LinearizabilityRun& run, Cluster& c, Placement placement) {
  try {
    for (int w = 1; w <= kWriters; ++w) c.add_client("writer " + std::to_string(w), placement);
  } catch (const ScenarioFailure& f) {
    run.result.failure = failure_of(f, c.steps(), driver_replay(run.params, "linearizability"));
    return false;
  }
  return true;
}

// Counts a history, its Full writes and Empty reads, into the tally and the result.
void count_history(LinearizabilityRun& run, Cluster& c, const std::vector<HistoryOp>& history) {
  for (const auto& op : history) {
    run.tally.full += op.kind == HistoryOp::Kind::Write && !op.ok;
    run.tally.empty += op.kind == HistoryOp::Kind::Read && !op.ok;
  }
  ++run.result.cases;
  ++run.tally.histories;
  run.tally.ops += history.size();
  run.tally.largest = std::max(run.tally.largest, history.size());
  run.result.notes = run.tally.note(c.launcher(), run.in_process);
}

// Records the clauses a history the search decided, without a violation, showed.
void record_clauses(const Params& params, const std::vector<HistoryOp>& history, bool sequences, bool aged) {
  for (const ClauseId clause : clauses_seen(history, sequences)) params.record(clause);
  if (aged) params.record(ClauseId::C_AGE);
}

// Halves the writes per history after one the search could not decide, doubles them back after ten it could.
void adapt_writes(LinearizabilityRun& run, bool decided) {
  if (!decided) {
    ++run.tally.undecided;
    run.writes = std::max(kFewestWrites, run.writes / 2);
    run.decided_in_a_row = 0;
  } else if (++run.decided_in_a_row >= 10) {
    run.writes = std::min(kMostWrites, run.writes * 2);
    run.decided_in_a_row = 0;
  }
}

// The failure a violating history's verdict gives.
Failure history_failure(const Params& params, const HistoryVerdict& verdict) {
  return Failure::of(*verdict.violation, verdict.lines,
                     driver_replay(params, "linearizability") +
                         " (the same seed gives the same operations, not the same timing; the exploration check "
                         "replays schedules exactly)");
}

// The failing history as a timeline (timeline.hpp), for the result's picture.
std::string timeline_html(const std::vector<HistoryOp>& history, const LinearizabilityResult& lin,
                          const std::string& where, const Failure& f) {
  Timeline picture = history_timeline(history, lin, "memlink-conformance: linearizability, " + where,
                                      std::string(f.clause.name()), f.replay);
  picture.explanation = f.description;
  return render_timeline_html(picture);
}

// History i, from `seed`: runs it on a cluster of its own and judges it; false once the check failed (the
// failure is in the result).
bool check_history(LinearizabilityRun& run, int i, std::uint64_t seed) {
  // 1-3 slots per direction: capacities of 1 to 2 per priority, so that
  // producers meet a full or nearly full ring (the claim/release edge)
  // on most writes.
  const int n = 1 + static_cast<int>(seed % 3);
  Cluster::Options o = history_options(n);
  // C-AGE: every third history starts each ring 2 messages before its
  // laps' counter wraps (not at the position end, where a ring is Full
  // for good, which the queue specification does not model).
  const bool aged = run.params.claims("aged") && (seed >> 8) % 3 == 0;
  if (aged) o.age = shm::SegmentAge::LapWrap;
  run.tally.aged += aged;
  Cluster c(run.params, "lin", o);
  // In process, every other history crosses processes (not under TSan).
  const Placement placement = run.in_process && i % 2 == 1 && c.launcher().can_place(Placement::OwnProcess)
                                  ? Placement::OwnProcess
                                  : Placement::Any;
  run.tally.forked += placement == Placement::OwnProcess;
  const Reply created = c.start_daemon(c.daemon, "daemon", placement);
  if (!created.ok()) {
    run.result.failure = creation_failure(run.params, c, o.segment_size, created);
    return false;
  }
  if (!add_writers(run, c, placement)) return false;
  std::string unexpected;
  const std::vector<HistoryOp> history = run_history(c, seed, run.writes, unexpected);
  count_history(run, c, history);
  const bool sequences = run.params.claims("sequences");
  const std::string seq = sequences ? sequence_violation(history) : "";
  const auto lin = check_linearizable(history, capacities_of(created, n));
  const std::string where = "history " + std::to_string(i) +
                            (placement == Placement::OwnProcess || !run.in_process ? " (processes)" : " (threads)");
  const HistoryVerdict verdict = judge_history(history, lin, where, unexpected, seq);
  if (!verdict.violation) {
    if (lin.decided) record_clauses(run.params, history, sequences, aged);
    adapt_writes(run, lin.decided);
    run.result.notes = run.tally.note(c.launcher(), run.in_process);
    return true;
  }
  Failure f = history_failure(run.params, verdict);
  run.result.picture_html = timeline_html(history, lin, where, f);
  run.result.failure = std::move(f);
  return false;
}

}  // namespace

Gates linearizability_gates() {
  return {{"writes at all three priorities (else priority 2 only)", {"priorities"}},
          {"T-SEQ over every history", {"sequences"}},
          {"C-AGE: every third history from a segment aged to its laps' wrap", {"aged"}}};
}

CheckResult run_linearizability(const Params& params) {
  CheckResult result;
  result.name = "linearizability";
  const int histories = depth_budget(params, 60, 1000, 10000);
  const bool in_process = params.driver.empty();
  std::mt19937_64 rng(params.seed ^ 0x5EED);
  LinearizabilityRun run{params, result, in_process, {}, kMostWrites, 0};
  if (const auto l = launcher_for(params)) {
    run.tally.started_before = l->started();
    run.tally.reused_before = l->reused();
  }
  for (int i = 0; i < histories; ++i)
    if (!check_history(run, i, rng())) return result;
  return result;
}

}  // namespace memlink::conformance
