// Each named check of an exploration run, on hand-made records: silent on a
// correct run, and naming its clause on a run broken the way it looks for.
#include "run_checks.hpp"

#include <gtest/gtest.h>

namespace memlink::conformance::explore {
namespace {

using Result = WriteRecord::Result;
using shm::Priority;

WriteRecord write(int thread, std::uint64_t id, Priority p, std::uint64_t invoke, std::uint64_t response,
                  Result result = Result::Ok) {
  WriteRecord w;
  w.thread = thread;
  w.id = id;
  w.priority = p;
  w.length = 16;
  w.result = result;
  w.invoke = invoke;
  w.response = response;
  return w;
}

ReadRecord read(int thread, std::uint64_t id, Priority p, std::uint64_t sequence, std::uint64_t invoke,
                std::uint64_t response) {
  ReadRecord r;
  r.thread = thread;
  r.ok = true;
  r.id = id;
  r.priority = p;
  r.sequence = sequence;
  r.length = 16;
  r.invoke = invoke;
  r.response = response;
  return r;
}

// Writer t0 writes #1 and #2 (High) one after the other; the daemon t1
// reads them in order, sequence numbers 0 and 1; counters agree.
RunRecord correct_run() {
  RunRecord r;
  r.transport = true;
  r.capacity = {2, 2, 2};
  r.writes = {write(0, 1, Priority::High, 0, 10), write(0, 2, Priority::High, 11, 20)};
  r.reads = {read(1, 1, Priority::High, 0, 30, 40), read(1, 2, Priority::High, 1, 41, 50)};
  r.client_head = 2;
  r.daemon_tail = 2;
  r.waiters = std::array<std::uint32_t, 4>{};
  r.c2d_positions = std::array<std::array<std::uint64_t, 2>, shm::kPriorityCount>{};
  (*r.c2d_positions)[static_cast<std::size_t>(Priority::High)] = {2, 2};  // head, tail
  return r;
}

Execution completed() {
  Execution e;
  e.completed = true;
  return e;
}

bool names(const std::vector<Violation>& v, ClauseId c, const std::string& text) {
  for (const Violation& x : v)
    if (x.clause.is(c) && x.text.find(text) != std::string::npos) return true;
  return false;
}

TEST(RunChecks, ACorrectRunHasNoViolation) {
  Config c;
  c.scenario = "transport";
  EXPECT_TRUE(check_run(c, correct_run(), completed()).empty());
}

TEST(RunChecks, CountersCatchALostDaemonTailIncrement) {
  RunRecord r = correct_run();
  r.daemon_tail = 1;  // a fenced daemon's load-and-store lost its successor's count
  std::vector<Violation> v;
  check_counters(r, v);
  EXPECT_TRUE(names(v, ClauseId::T_COUNTERS, "daemon_tail is 1 after 2 deliveries")) << v.size();
  r.daemon_tail = 2;
  r.client_head = 3;  // a refused write counted
  v.clear();
  check_counters(r, v);
  EXPECT_TRUE(names(v, ClauseId::T_COUNTERS, "client_head is 3 after 2 acknowledged writes"));
}

TEST(RunChecks, PositionsCatchATailMovedBackOverADeliveredMessage) {
  RunRecord r = correct_run();
  std::vector<Violation> v;
  check_positions_at_end(r, v);
  EXPECT_TRUE(v.empty());
  // A fenced daemon's late tail store (tail-stored-not-advanced): both
  // messages were delivered, yet one position is still between the two.
  (*r.c2d_positions)[static_cast<std::size_t>(Priority::High)] = {2, 1};
  check_positions_at_end(r, v);
  EXPECT_TRUE(names(v, ClauseId::R_POSITIONS, "1 positions between them, but 0 acknowledged messages"));
  v.clear();
  (*r.c2d_positions)[static_cast<std::size_t>(Priority::High)] = {2, 3};
  check_positions_at_end(r, v);
  EXPECT_TRUE(names(v, ClauseId::R_POSITIONS, "the tail is past the head"));
}

TEST(RunChecks, PositionsExcuseAClaimWhoseWriterDied) {
  RunRecord r = correct_run();
  r.writes.push_back(write(0, 3, Priority::High, 21, 0, WriteRecord::Result::Pending));
  (*r.c2d_positions)[static_cast<std::size_t>(Priority::High)] = {3, 2};
  std::vector<Violation> v;
  check_positions_at_end(r, v);
  EXPECT_TRUE(v.empty());
  r.reads.pop_back();  // #2 acknowledged, never read, yet the tail moved past it
  (*r.c2d_positions)[static_cast<std::size_t>(Priority::High)] = {3, 3};
  check_positions_at_end(r, v);
  EXPECT_TRUE(names(v, ClauseId::R_POSITIONS, "0 positions between them, but 1 acknowledged"));
}

TEST(RunChecks, SequenceNumbersCatchADuplicateAndAGap) {
  RunRecord r = correct_run();
  r.reads[1].sequence = 0;
  std::vector<Violation> v;
  check_sequence_numbers(r, v);
  EXPECT_TRUE(names(v, ClauseId::T_SEQ, "both carry sequence number 0"));
  r.reads[1].sequence = 2;  // one writer, every write delivered: 0, 2 skips 1
  v.clear();
  check_sequence_numbers(r, v);
  EXPECT_TRUE(names(v, ClauseId::T_SEQ, "a number was skipped"));
}

TEST(RunChecks, FenceCatchesATakeByTheReplacedDaemonAfterTheNewEpoch) {
  RunRecord r = correct_run();
  r.takeover_thread = 2;
  r.fenced_thread = 1;
  r.takeover_ns = 1000;
  r.reads[0].take_ns = 900;  // before the epoch: allowed
  r.reads[1].take_ns = 1500;
  std::vector<Violation> v;
  check_fence(r, v);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(names(v, ClauseId::K_FENCE, "took message #2"));
}

TEST(RunChecks, WritesCatchALossADuplicateAndAWriterError) {
  RunRecord r = correct_run();
  r.reads.pop_back();  // #2 acknowledged, never delivered
  std::vector<Violation> v;
  check_writes(r, completed(), v);
  EXPECT_TRUE(names(v, ClauseId::S_PUBLISH, "#2 was acknowledged"));
  r = correct_run();
  r.reads.push_back(r.reads[0]);  // #1 twice, nobody died
  v.clear();
  check_writes(r, completed(), v);
  EXPECT_TRUE(names(v, ClauseId::K_READING, "delivered 2 times"));
  r = correct_run();
  r.corruption = true;  // a hostile peer excuses no writer's error
  r.writes[1].result = Result::Error;
  r.writes[1].error = "CorruptSegment";
  v.clear();
  check_writes(r, completed(), v);
  EXPECT_TRUE(names(v, ClauseId::R_RELEASE, "nothing a writer reads"));
}

TEST(RunChecks, DeliveriesCatchAPhantomATornMessageAndAWrongPriority) {
  RunRecord r = correct_run();
  r.reads[0].id = 99;
  r.reads[1].intact = false;
  std::vector<Violation> v;
  check_deliveries(r, v);
  EXPECT_TRUE(names(v, ClauseId::V_SLOT, "nobody wrote (id 99"));
  EXPECT_TRUE(names(v, ClauseId::S_PUBLISH, "#2 differs from what was written"));
  r = correct_run();
  r.reads[0].priority = Priority::Critical;
  v.clear();
  check_deliveries(r, v);
  EXPECT_TRUE(names(v, ClauseId::R_ORDER, "written high and delivered critical"));
}

TEST(RunChecks, SleepersCatchALeakedCountOnlyWhenEveryThreadReturned) {
  RunRecord r = correct_run();
  r.waiters = std::array<std::uint32_t, 4>{0, 1, 0, 0};
  std::vector<Violation> v;
  check_sleepers_at_end(r, completed(), v);
  EXPECT_TRUE(names(v, ClauseId::F_WAKE, "client_futex.waiters is 1"));
  Execution died = completed();
  died.died = {0};  // a thread that died asleep leaves its count: no finding
  v.clear();
  check_sleepers_at_end(r, died, v);
  EXPECT_TRUE(v.empty());
}

TEST(RunChecks, SchedulerFindingsKeepTheirClauses) {
  Execution e = completed();
  e.lost_wakeups = {"t1 slept out its slice"};
  e.races = {"a race on slot[0].length"};
  e.violations = {"livelock"};
  std::vector<Violation> v;
  check_scheduler_findings(e, v);
  EXPECT_TRUE(names(v, ClauseId::F_WAKE, "slept out"));
  EXPECT_TRUE(names(v, ClauseId::S_PUBLISH, "race"));
  EXPECT_TRUE(names(v, ClauseId::T_WAIT, "livelock"));
  e.died = {0};
  v.clear();
  check_scheduler_findings(e, v);
  EXPECT_TRUE(names(v, ClauseId::K_STALE, "livelock"));
}

TEST(RunChecks, TheHistoryCheckCatchesMessagesDeliveredOutOfOrder) {
  RunRecord r = correct_run();
  std::swap(r.reads[0].id, r.reads[1].id);  // #2 before #1, written one after the other
  Config c;
  c.scenario = "transport";
  std::vector<Violation> v;
  check_linearizable_history(c, r, v);
  EXPECT_TRUE(names(v, ClauseId::R_FIFO, "not linearizable"));
}

}  // namespace
}  // namespace memlink::conformance::explore
