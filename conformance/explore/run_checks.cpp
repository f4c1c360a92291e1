// The checks of one exploration run (explore/scenarios.hpp), each on its
// own: small named checks composed into check_run's verdict.
#include "run_checks.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "linearizability.hpp"
#include "memory_model.hpp"

namespace memlink::conformance::explore {
namespace {

using shm::Priority;
using Result = WriteRecord::Result;

std::map<std::uint64_t, const WriteRecord*> writes_by_id(const RunRecord& r) {
  std::map<std::uint64_t, const WriteRecord*> by_id;
  for (const WriteRecord& w : r.writes) by_id[w.id] = &w;
  return by_id;
}

// How many times each message id was delivered.
std::map<std::uint64_t, int> delivery_counts(const RunRecord& r) {
  std::map<std::uint64_t, int> delivered;
  for (const ReadRecord& rd : r.reads)
    if (rd.ok) ++delivered[rd.id];
  return delivered;
}

}  // namespace

void check_scheduler_findings(const Execution& e, std::vector<Violation>& v) {
  // The scheduler's own findings (a run that never ends, a thread that
  // never returns): with a death in the run, recovery's; else a wait's.
  const bool deaths = !e.died.empty();
  for (const std::string& s : e.violations) v.push_back(Violation{deaths ? ClauseId::K_STALE : ClauseId::T_WAIT, s});
  for (const std::string& s : e.races) v.push_back(Violation{ClauseId::S_PUBLISH, s});  // memory_model.hpp
  for (const std::string& s : e.lost_wakeups) v.push_back(Violation{ClauseId::F_WAKE, s});
  for (const std::string& s : e.idle_wakes)
    v.push_back(Violation{ClauseId::F_WAKE, s +
                                                (e.idle_wake_count > 1 ? " (" + std::to_string(e.idle_wake_count) +
                                                                             " such wakes in the run)"
                                                                       : std::string()) +
                                                ": a waker pays no system call when nobody sleeps"});
}

// Cost as a property: when every thread ended (none died mid-wait), no
// sleeper is counted.
void check_sleepers_at_end(const RunRecord& r, const Execution& e, std::vector<Violation>& v) {
  if (!r.waiters || !e.completed || !e.died.empty()) return;
  static constexpr const char* kWords[] = {"daemon_futex", "client_futex", "c2d_space_futex", "d2c_space_futex"};
  for (std::size_t i = 0; i < 4; ++i)
    if ((*r.waiters)[i] != 0)
      v.push_back(Violation{ClauseId::F_WAKE, std::string(kWords[i]) + ".waiters is " +
                                                  std::to_string((*r.waiters)[i]) +
                                                  " as the run ended, though every thread has returned and nobody "
                                                  "sleeps: a sleeper count leaked, and every later publish pays a "
                                                  "wake system call for nobody"});
}

// Each delivery against the write it claims to be.
void check_deliveries(const RunRecord& r, std::vector<Violation>& v) {
  const auto by_id = writes_by_id(r);
  for (const ReadRecord& rd : r.reads) {
    if (!rd.ok) {
      if (!rd.error.empty() && !r.corruption)
        // A slot a healthy writer published whose length or checksum does not
        // hold was published before it was filled (S-PUBLISH); another field
        // refused is the reader's validation gone wrong (V-SLOT). The field
        // is the one CorruptSegment names (SPEC E-CODES).
        v.push_back(Violation{
            rd.corrupt_field == "checksum" || rd.corrupt_field == "length" ? ClauseId::S_PUBLISH : ClauseId::V_SLOT,
            "a read on a healthy ring failed: " + rd.error});
      continue;
    }
    auto it = by_id.find(rd.id);
    if (it == by_id.end()) {
      v.push_back(Violation{ClauseId::V_SLOT, "delivered a message nobody wrote (id " + std::to_string(rd.id) + ", " +
                                                  std::to_string(rd.length) + " bytes)"});
      continue;
    }
    const WriteRecord& w = *it->second;
    if (!rd.intact || rd.length != w.length)
      v.push_back(Violation{r.corruption ? ClauseId::V_ONCE : ClauseId::S_PUBLISH,
                            "delivered message #" + std::to_string(rd.id) + " differs from what was written (" +
                                std::to_string(rd.length) + " bytes delivered, " + std::to_string(w.length) +
                                " written" + (rd.intact ? "" : ", payload bytes differ") + ")"});
    if (rd.priority != w.priority)
      v.push_back(Violation{ClauseId::R_ORDER, "message #" + std::to_string(rd.id) + " was written " +
                                                   std::string(shm::to_string(w.priority)) + " and delivered " +
                                                   std::string(shm::to_string(rd.priority))});
    if (w.result != Result::Ok && w.result != Result::Pending)
      v.push_back(Violation{
          w.result == Result::NotSent ? ClauseId::K_CLAIMED : ClauseId::R_CAPACITY,
          "message #" + std::to_string(rd.id) + " was delivered although its write returned " + result_name(w.result)});
  }
}

// Each write against its deliveries and its timing.
void check_writes(const RunRecord& r, const Execution& e, std::vector<Violation>& v) {
  const auto delivered = delivery_counts(r);
  for (const WriteRecord& w : r.writes) {
    const int n = delivered.count(w.id) ? delivered.at(w.id) : 0;
    if (n > 1)
      v.push_back(Violation{ClauseId::K_READING, "message #" + std::to_string(w.id) + " was delivered " +
                                                     std::to_string(n) +
                                                     " times; no consumer died, so once is the most"});
    if (w.result == Result::Ok && n == 0 && !r.corruption)
      v.push_back(Violation{ClauseId::S_PUBLISH, "message #" + std::to_string(w.id) + " was acknowledged (" +
                                                     std::string(shm::to_string(w.priority)) + ", step " +
                                                     std::to_string(w.response) + ") and never delivered"});
    // No hostility excuses a writer's error: the hostile peer changes slot
    // header fields and payload bytes only, never a slot word or a ring's
    // head or tail, which are all a writer reads (a dropped message is its
    // doing; a writer's CorruptSegment is not).
    if (w.result == Result::Error)
      v.push_back(Violation{w.error_code == shm::ErrorCode::Disconnected ? ClauseId::K_FENCE : ClauseId::R_RELEASE,
                            (r.corruption ? "a write failed where a peer corrupted only slot headers and payloads "
                                            "(nothing a writer reads): "
                                          : "a write on a healthy segment failed: ") +
                                w.error});
    if (w.result == Result::NotSent && w.response_ns - w.claim_ns < r.claim_timeout_ns)
      v.push_back(Violation{ClauseId::K_CLAIMED, "write #" + std::to_string(w.id) +
                                                     " was told its position was reclaimed after it stalled " +
                                                     std::to_string((w.response_ns - w.claim_ns) / 1000) +
                                                     " us, less than the claim timeout of " +
                                                     std::to_string(r.claim_timeout_ns / 1000) + " us"});
    if (w.result == Result::Timeout) {
      const std::uint64_t took = w.response_ns - w.invoke_ns;
      const std::uint64_t stalled = e.stalled_ns[static_cast<std::size_t>(w.thread)];  // off its CPU
      if (took < r.blocking_timeout_ns || took > r.blocking_timeout_ns + 2 * r.sleep_slice_ns + stalled)
        v.push_back(Violation{ClauseId::T_BLOCKING,
                              "write_blocking with a " + std::to_string(r.blocking_timeout_ns / 1000) +
                                  " us timeout returned Timeout after " + std::to_string(took / 1000) + " us"});
    }
  }
}

// T-SEQ: a message's number is its position in its ring: unique per
// ring, increasing per writer and ring; dense when every attempt either
// claimed no position or was delivered.
void check_sequence_numbers(const RunRecord& r, std::vector<Violation>& v) {
  if (!r.transport) return;
  const auto by_id = writes_by_id(r);
  std::map<std::pair<shm::Priority, std::uint64_t>, std::uint64_t> seq_owner;  // (ring, sequence) -> id
  std::map<std::pair<int, shm::Priority>, std::vector<std::pair<std::uint64_t, std::uint64_t>>>
      per_writer;  // invoke, sequence
  for (const ReadRecord& rd : r.reads) {
    if (!rd.ok || !by_id.count(rd.id)) continue;
    auto [it, fresh] = seq_owner.emplace(std::pair{rd.priority, rd.sequence}, rd.id);
    if (!fresh && it->second != rd.id)
      v.push_back(Violation{ClauseId::T_SEQ, "messages #" + std::to_string(it->second) + " and #" +
                                                 std::to_string(rd.id) + " both carry sequence number " +
                                                 std::to_string(rd.sequence) + " in the " +
                                                 std::string(shm::to_string(rd.priority)) + " ring"});
    const WriteRecord& w = *by_id.at(rd.id);
    per_writer[{w.thread, rd.priority}].push_back({w.invoke, rd.sequence});
  }
  for (auto& [writer_ring, seqs] : per_writer) {
    const int writer = writer_ring.first;
    std::sort(seqs.begin(), seqs.end());
    for (std::size_t i = 1; i < seqs.size(); ++i)
      if (seqs[i].second <= seqs[i - 1].second)
        v.push_back(Violation{ClauseId::T_SEQ, "writer-" + std::to_string(writer) +
                                                   "'s sequence numbers do not increase in its write order (" +
                                                   std::to_string(seqs[i - 1].second) + " then " +
                                                   std::to_string(seqs[i].second) + ")"});
  }
  // Dense only for a single writer: another writer may fill the ring
  // between one writer's Full check and its claim (T-SEQ).
  const bool single = std::set<int>([&] {
                        std::set<int> s;
                        for (const WriteRecord& w : r.writes) s.insert(w.thread);
                        return s;
                      }())
                          .size() == 1;
  const bool clean = single && std::all_of(r.writes.begin(), r.writes.end(), [](const WriteRecord& w) {
                       return w.result == Result::Ok || w.result == Result::Full || w.result == Result::Timeout;
                     });
  std::map<shm::Priority, std::pair<std::uint64_t, std::uint64_t>> per_ring;  // count, highest
  for (const auto& [ring_seq, id] : seq_owner) {
    auto& [count, highest] = per_ring[ring_seq.first];
    ++count;
    highest = std::max(highest, ring_seq.second);
  }
  for (const auto& [p, count_highest] : per_ring)
    if (clean && count_highest.second + 1 - r.first_position[static_cast<std::size_t>(p)] != count_highest.first)
      v.push_back(Violation{ClauseId::T_SEQ, "" + std::to_string(count_highest.first) +
                                                 " messages were delivered from the " + std::string(shm::to_string(p)) +
                                                 " ring but their sequence numbers run from " +
                                                 std::to_string(r.first_position[static_cast<std::size_t>(p)]) +
                                                 " up to " + std::to_string(count_highest.second) +
                                                 ": a refused write took a number, or a number was skipped"});
}

// T-COUNTERS: client_head counts the c2d messages published (a write that
// died may or may not have counted), daemon_tail those delivered.
void check_counters(const RunRecord& r, std::vector<Violation>& v) {
  if (!r.client_head) return;
  std::uint64_t ok = 0, pending = 0, reads = 0;
  for (const WriteRecord& w : r.writes) {
    ok += w.result == Result::Ok;
    pending += w.result == Result::Pending;
  }
  for (const ReadRecord& rd : r.reads) reads += rd.ok;
  if (*r.client_head < ok || *r.client_head > ok + pending)
    v.push_back(Violation{ClauseId::T_COUNTERS, "client_head is " + std::to_string(*r.client_head) + " after " +
                                                    std::to_string(ok) + " acknowledged writes (and " +
                                                    std::to_string(pending) + " that died)"});
  if (r.daemon_tail && *r.daemon_tail != reads)
    v.push_back(Violation{ClauseId::T_COUNTERS, "daemon_tail is " + std::to_string(*r.daemon_tail) + " after " +
                                                    std::to_string(reads) + " deliveries to the daemon"});
}

void check_positions_at_end(const RunRecord& r, std::vector<Violation>& v) {
  if (!r.c2d_positions || r.corruption) return;  // a hostile peer may drop or wedge messages
  for (Priority p : shm::kAllPriorities) {
    const auto [head, tail] = (*r.c2d_positions)[static_cast<std::size_t>(p)];
    const std::string ring = "c2d " + std::string(shm::to_string(p)) + " ring: head " + std::to_string(head) +
                             ", tail " + std::to_string(tail);
    if (tail > head) {
      v.push_back(Violation{ClauseId::R_POSITIONS, ring + ": the tail is past the head"});
      continue;
    }
    std::set<std::uint64_t> delivered;
    for (const ReadRecord& rd : r.reads)
      if (rd.ok && rd.priority == p) delivered.insert(rd.id);
    std::uint64_t undelivered = 0, maybe = 0;  // acknowledged and never read; claims that may still hold a position
    for (const WriteRecord& w : r.writes) {
      if (w.priority != p) continue;
      if (w.result == Result::Ok) undelivered += !delivered.count(w.id);
      maybe += w.result == Result::Pending || w.result == Result::NotSent || w.result == Result::Error;
    }
    const std::uint64_t held = head - tail;
    if (held < undelivered || held > undelivered + maybe)
      v.push_back(Violation{ClauseId::R_POSITIONS,
                            ring + ": " + std::to_string(held) + " positions between them, but " +
                                std::to_string(undelivered) + " acknowledged messages were never delivered" +
                                (maybe ? " (and " + std::to_string(maybe) + " writes died, timed out or failed)" : "") +
                                ": the tail moved back over delivered messages, or past undelivered ones"});
  }
}

// K-FENCE: the replaced daemon took nothing after the new epoch began.
void check_fence(const RunRecord& r, std::vector<Violation>& v) {
  if (r.takeover_thread >= 0 && r.takeover_ns > 0)
    for (const ReadRecord& rd : r.reads)
      if (rd.ok && rd.thread == r.fenced_thread && rd.take_ns > r.takeover_ns)
        v.push_back(Violation{ClauseId::K_FENCE, "the replaced daemon took message #" + std::to_string(rd.id) + " " +
                                                     std::to_string((rd.take_ns - r.takeover_ns) / 1000) +
                                                     " us after its successor began a new epoch"});
}

namespace {

// The run's operations whose outcome is known, as a history for the
// linearizability checker.
std::vector<HistoryOp> history_of(const Config& c, const RunRecord& r) {
  const auto delivered = delivery_counts(r);
  // Under weak memory a store reaches the other threads up to the model's
  // visibility window after it ran (memory_model.hpp, rule 2): an
  // operation begun that soon after another ended need not see it, so
  // real-time order starts only past the window.
  const std::uint64_t slack = c.weak ? kVisibilityWindowNs / SchedulerOptions{}.step_ns : 0;
  std::vector<HistoryOp> h;
  for (const WriteRecord& w : r.writes) {
    const bool seen = delivered.count(w.id) > 0;
    // A died or not-sent write that was never delivered may have held a
    // position for a while (a ghost); Timeout and errors took none.
    const bool ghost = !seen && (w.result == Result::Pending || w.result == Result::NotSent);
    if (w.result == Result::Ok || (w.result == Result::Full && !w.blocking) || w.result == Result::Pending || ghost) {
      HistoryOp op;
      op.kind = HistoryOp::Kind::Write;
      op.process = w.thread;
      op.priority = w.priority;
      op.id = w.id;
      op.ok = w.result != Result::Full;
      op.ghost = ghost;
      op.invoke_ns = w.invoke;
      op.response_ns = w.result == Result::Pending ? ~0ULL : w.response + slack;
      h.push_back(op);
    }
  }
  for (const ReadRecord& rd : r.reads) {
    if (!rd.ok && !rd.error.empty()) continue;
    HistoryOp op;
    op.kind = HistoryOp::Kind::Read;
    op.process = rd.thread;
    op.priority = rd.priority;
    op.id = rd.id;
    op.ok = rd.ok;
    op.invoke_ns = rd.invoke;
    op.response_ns = rd.response + slack;
    h.push_back(op);
  }
  return h;
}

// A replaced daemon that was still reading when its successor began
// (stalled mid-read: K-FENCE leaves the slot to it) holds its ring's tail
// meanwhile, and the successor serves the other rings: priority order
// across rings (R-ORDER) and Empty answers are not defined during that
// overlap.
bool replaced_daemon_read_overlapped(const RunRecord& r) {
  if (r.takeover_thread < 0) return false;
  for (const ReadRecord& a : r.reads)
    for (const ReadRecord& b : r.reads)
      if (a.ok && a.thread == r.fenced_thread && b.thread == r.takeover_thread && b.invoke < a.response) return true;
  return false;
}

}  // namespace

// Linearizability against the queue specification (R-FIFO, R-ORDER,
// R-CAPACITY, R-VISIBLE), over the operations whose outcome is known;
// ring by ring, without Empties, while a replaced daemon's read overlapped
// its successor's.
void check_linearizable_history(const Config& c, const RunRecord& r, std::vector<Violation>& v) {
  const std::vector<HistoryOp> h = history_of(c, r);
  if (!replaced_daemon_read_overlapped(r)) {
    const auto lin = check_linearizable(h, r.capacity);
    if (lin.decided && !lin.linearizable)
      v.push_back(Violation{
          ClauseId::R_FIFO,
          "the history is not linearizable against R-CAPACITY, R-FIFO, R-ORDER and R-VISIBLE: " + lin.explanation});
    return;
  }
  for (Priority p : shm::kAllPriorities) {
    std::vector<HistoryOp> ring;
    for (const HistoryOp& op : h)
      if (op.priority == p && (op.kind == HistoryOp::Kind::Write || op.ok)) ring.push_back(op);
    const auto lin = check_linearizable(ring, r.capacity);
    if (lin.decided && !lin.linearizable)
      v.push_back(
          Violation{ClauseId::R_FIFO, "the " + std::string(shm::to_string(p)) +
                                          " ring's history (a replaced daemon's read overlapped its successor's) is "
                                          "not linearizable against R-CAPACITY, R-FIFO and R-VISIBLE: " +
                                          lin.explanation});
  }
}

std::vector<Violation> check_run(const Config& c, const RunRecord& r, const Execution& e) {
  std::vector<Violation> v;
  // First the rings' positions: a tail moved back or past a message breaks
  // every step after it (a livelock, a daemon that finds the ring corrupt),
  // and the first violation is the clause the report names.
  check_positions_at_end(r, v);
  check_scheduler_findings(e, v);
  check_sleepers_at_end(r, e, v);
  v.insert(v.end(), r.violations.begin(), r.violations.end());
  check_deliveries(r, v);
  check_writes(r, e, v);
  check_sequence_numbers(r, v);
  check_counters(r, v);
  check_fence(r, v);
  // Only a history whose every message is accounted for is worth a search.
  if (!r.corruption && v.empty()) check_linearizable_history(c, r, v);
  return v;
}

}  // namespace memlink::conformance::explore
