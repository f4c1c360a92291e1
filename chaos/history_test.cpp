// The chaos checker on hand-made histories: a correct one passes, and each
// kind of violation (lost, phantom, corrupt, unexplained duplicate, FIFO,
// priority, fence) is caught. The runner's own proof that it catches a
// broken recovery is the ctest chaos-catches-broken-* pair.
#include "history.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>
#include <string>

#include "picture.hpp"

namespace memlink::chaos {
namespace {

// A deque, so that references to earlier processes stay valid.
struct Builder {
  std::deque<ProcessLog> procs;
  ProcessLog& proc(Role role, std::uint32_t instance, bool killed = false) {
    procs.push_back(ProcessLog{role, instance, killed, {}});
    return procs.back();
  }
  std::vector<ProcessLog> logs() const { return {procs.begin(), procs.end()}; }
};

// A delivery carries the sequence number its write took: unique in its
// stream, growing with each writer's messages (T-SEQ).
std::uint64_t sequence_of(MessageId id) { return id.writer * 100000ULL + id.n * 4 + id.priority; }

Record make(RecordType t, MessageId id, std::uint64_t t_ns = 0, std::uint64_t position = 0, std::uint64_t epoch = 0) {
  Record r = Record::of(t, id, t_ns);
  r.position = position;
  r.epoch = epoch;
  if (t == RecordType::Deliver) r.sequence = sequence_of(id);
  return r;
}

MessageId c2d(std::uint32_t w, std::uint8_t p, std::uint64_t n) { return {Stream::C2D, w, p, n}; }

void write_ok(ProcessLog& w, MessageId id, std::uint64_t t, std::uint64_t pos) {
  w.records.push_back(make(RecordType::Intent, id, t));
  w.records.push_back(make(RecordType::Ack, id, t + 1, pos));
}

TEST(Payload, RoundTripsAndCatchesAnyChange) {
  const MessageId id{Stream::D2C, 7, 2, 123456};
  auto p = encode_payload(id, 100);
  MessageId got;
  ASSERT_TRUE(decode_payload(p, got));
  EXPECT_EQ(got, id);
  for (std::size_t i = 0; i < p.size(); ++i) {
    auto q = p;
    q[i] ^= std::byte{0x10};
    EXPECT_FALSE(decode_payload(q, got)) << i;
  }
  EXPECT_FALSE(decode_payload(std::span(p).first(10), got));
}

TEST(Checker, ACorrectHistoryPasses) {
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  ProcessLog& d = b.proc(Role::Daemon, 0);
  write_ok(w, c2d(0, 1, 0), 10, 0);
  write_ok(w, c2d(0, 1, 1), 20, 1);
  w.records.push_back(make(RecordType::Intent, c2d(0, 1, 2), 30));  // writer died mid-write
  d.records.push_back(make(RecordType::Deliver, c2d(0, 1, 0), 15, 0, 1));
  d.records.push_back(make(RecordType::Deliver, c2d(0, 1, 1), 25, 1, 1));
  const Verdict v = check_history(b.logs());
  EXPECT_TRUE(v.ok()) << (v.violations.empty() ? "" : v.violations[0]);
  EXPECT_EQ(v.acknowledged, 2u);
  EXPECT_EQ(v.delivered, 2u);
  EXPECT_EQ(v.indeterminate, 1u);
}

TEST(Checker, LostIsAnAcknowledgedMessageNeverDelivered) {
  Builder b;
  write_ok(b.proc(Role::Writer, 0), c2d(0, 0, 0), 10, 0);
  b.proc(Role::Daemon, 0);
  const Verdict v = check_history(b.logs());
  EXPECT_EQ(v.lost, 1u);
  EXPECT_FALSE(v.ok());
}

TEST(Checker, PhantomAndCorruptAreCaught) {
  Builder b;
  ProcessLog& d = b.proc(Role::Daemon, 0);
  d.records.push_back(make(RecordType::Deliver, c2d(9, 0, 0), 5, 0, 1));
  d.records.push_back(make(RecordType::Corrupt, {}, 6));
  const Verdict v = check_history(b.logs());
  EXPECT_EQ(v.phantom, 1u);
  EXPECT_EQ(v.corrupt, 1u);
  EXPECT_FALSE(v.ok());
}

TEST(Checker, ADuplicateIsExcusedOnlyByItsConsumersDeathRightAfterRecordingIt) {
  for (bool killed : {true, false}) {
    Builder b;
    ProcessLog& w = b.proc(Role::Writer, 0);
    write_ok(w, c2d(0, 2, 0), 10, 0);
    write_ok(w, c2d(0, 2, 1), 11, 1);
    ProcessLog& d1 = b.proc(Role::Daemon, 0, killed);
    d1.records.push_back(make(RecordType::Deliver, c2d(0, 2, 0), 20, 0, 1));
    ProcessLog& d2 = b.proc(Role::Daemon, 1);
    d2.records.push_back(make(RecordType::Deliver, c2d(0, 2, 0), 30, 0, 2));
    d2.records.push_back(make(RecordType::Deliver, c2d(0, 2, 1), 31, 1, 2));
    const Verdict v = check_history(b.logs());
    EXPECT_EQ(v.duplicated, 1u);
    EXPECT_EQ(v.duplicates_unexplained, killed ? 0u : 1u);
    EXPECT_EQ(v.ok(), killed);
  }
  // Killed, but it went on to deliver something else after: not excused.
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  write_ok(w, c2d(0, 2, 0), 10, 0);
  write_ok(w, c2d(0, 2, 1), 11, 1);
  ProcessLog& d1 = b.proc(Role::Daemon, 0, true);
  d1.records.push_back(make(RecordType::Deliver, c2d(0, 2, 0), 20, 0, 1));
  d1.records.push_back(make(RecordType::Deliver, c2d(0, 2, 1), 21, 1, 1));
  ProcessLog& d2 = b.proc(Role::Daemon, 1);
  d2.records.push_back(make(RecordType::Deliver, c2d(0, 2, 0), 30, 0, 2));
  EXPECT_EQ(check_history(b.logs()).duplicates_unexplained, 1u);
}

TEST(Checker, FifoPerWriterAndPriority) {
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  write_ok(w, c2d(0, 1, 0), 10, 0);
  write_ok(w, c2d(0, 1, 1), 11, 1);
  ProcessLog& d = b.proc(Role::Daemon, 0);
  d.records.push_back(make(RecordType::Deliver, c2d(0, 1, 1), 20, 1, 1));
  d.records.push_back(make(RecordType::Deliver, c2d(0, 1, 0), 21, 0, 1));
  EXPECT_EQ(check_history(b.logs()).fifo_violations, 1u);
}

TEST(Checker, PriorityWhenTheConsumerHadAChoice) {
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  write_ok(w, c2d(0, 2, 0), 10, 0);  // low, position 0
  write_ok(w, c2d(0, 0, 0), 12, 0);  // critical, position 0, acknowledged at 13
  ProcessLog& d = b.proc(Role::Daemon, 0);
  d.records.push_back(make(RecordType::Deliver, c2d(0, 2, 0), 20, 0, 1));  // low first, at 20 > 13
  d.records.push_back(make(RecordType::Deliver, c2d(0, 0, 0), 21, 0, 1));
  const Verdict v = check_history(b.logs());
  EXPECT_EQ(v.priority_violations, 1u);
  // Had the critical message been acknowledged after the take began, no choice existed.
  Builder c;
  ProcessLog& w2 = c.proc(Role::Writer, 0);
  write_ok(w2, c2d(0, 2, 0), 10, 0);
  write_ok(w2, c2d(0, 0, 0), 25, 0);
  ProcessLog& d2 = c.proc(Role::Daemon, 0);
  d2.records.push_back(make(RecordType::Deliver, c2d(0, 2, 0), 20, 0, 1));
  d2.records.push_back(make(RecordType::Deliver, c2d(0, 0, 0), 30, 0, 1));
  EXPECT_EQ(check_history(c.logs()).priority_violations, 0u);
}

TEST(Checker, AFencedDaemonTakingALaterPositionIsCaught) {
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  write_ok(w, c2d(0, 1, 0), 10, 0);
  write_ok(w, c2d(0, 1, 1), 11, 1);
  ProcessLog& old_daemon = b.proc(Role::Daemon, 0);
  ProcessLog& new_daemon = b.proc(Role::Daemon, 1);
  new_daemon.records.push_back(make(RecordType::Deliver, c2d(0, 1, 0), 20, 0, 2));
  old_daemon.records.push_back(make(RecordType::Deliver, c2d(0, 1, 1), 21, 1, 1));  // after its epoch ended
  EXPECT_GE(check_history(b.logs()).fence_violations, 1u);
}

TEST(Checker, TwoMessagesWithOneSequenceNumberAreCaught) {
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  ProcessLog& d = b.proc(Role::Daemon, 0);
  write_ok(w, c2d(0, 1, 0), 10, 0);
  write_ok(w, c2d(0, 1, 1), 20, 1);
  d.records.push_back(make(RecordType::Deliver, c2d(0, 1, 0), 15, 0, 1));
  Record second = make(RecordType::Deliver, c2d(0, 1, 1), 25, 1, 1);
  second.sequence = sequence_of(c2d(0, 1, 0));
  d.records.push_back(second);
  const Verdict v = check_history(b.logs());
  EXPECT_FALSE(v.ok());
  EXPECT_GE(v.sequence_violations, 1u);  // one number for two messages (and a writer's number did not grow)
  bool named = false;
  for (const auto& s : v.violations) named |= s.find("carry the same sequence number") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST(Checker, TwoRingsMayGiveTheSameSequenceNumber) {
  // T-SEQ numbers a message by its position in its ring: the first message
  // of each priority is number 0.
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  ProcessLog& d = b.proc(Role::Daemon, 0);
  write_ok(w, c2d(0, 1, 0), 10, 0);
  write_ok(w, c2d(0, 2, 0), 20, 0);
  Record first = make(RecordType::Deliver, c2d(0, 1, 0), 15, 0, 1);
  first.sequence = 0;
  Record second = make(RecordType::Deliver, c2d(0, 2, 0), 25, 0, 1);
  second.sequence = 0;
  d.records.push_back(first);
  d.records.push_back(second);
  const Verdict v = check_history(b.logs());
  EXPECT_EQ(v.sequence_violations, 0u);
  EXPECT_TRUE(v.ok()) << (v.violations.empty() ? "" : v.violations.front());
}

TEST(Checker, AWritersSequenceNumbersMustGrow) {
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  ProcessLog& d = b.proc(Role::Daemon, 0);
  write_ok(w, c2d(0, 1, 0), 10, 0);
  write_ok(w, c2d(0, 1, 1), 20, 1);
  Record first = make(RecordType::Deliver, c2d(0, 1, 0), 15, 0, 1);
  first.sequence = 50;
  Record second = make(RecordType::Deliver, c2d(0, 1, 1), 25, 1, 1);
  second.sequence = 40;
  d.records.push_back(first);
  d.records.push_back(second);
  EXPECT_EQ(check_history(b.logs()).sequence_violations, 1u);
}

TEST(Checker, AMessageWhoseWriteFailedMustNotBeDelivered) {
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  ProcessLog& d = b.proc(Role::Daemon, 0);
  w.records.push_back(make(RecordType::Intent, c2d(0, 2, 0), 10));
  w.records.push_back(make(RecordType::Fail, c2d(0, 2, 0), 11));  // "not sent" (K-CLAIMED)
  d.records.push_back(make(RecordType::Deliver, c2d(0, 2, 0), 15, 0, 1));
  const Verdict v = check_history(b.logs());
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.refused_delivered, 1u);
}

// The named checks, one at a time (history.hpp): each on an index of a
// small history, alone on a fresh Verdict, once passing and once catching.

using CheckFn = void (*)(const HistoryIndex&, const CheckOptions&, Verdict&);

Verdict run_alone(CheckFn check, const std::vector<ProcessLog>& logs, const CheckOptions& options = {}) {
  const HistoryIndex h = index_history(logs);
  Verdict v;
  check(h, options, v);
  return v;
}

// Writer 0 writes two normal messages (c2d priority 1, positions 0 and 1)
// and a critical one (priority 0, position 0, acknowledged at 31); daemon 0
// (epoch 1) takes them in order, each after its write was acknowledged.
Builder clean_history() {
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  write_ok(w, c2d(0, 1, 0), 10, 0);
  write_ok(w, c2d(0, 1, 1), 20, 1);
  write_ok(w, c2d(0, 0, 0), 30, 0);
  ProcessLog& d = b.proc(Role::Daemon, 0);
  d.records.push_back(make(RecordType::Deliver, c2d(0, 1, 0), 15, 0, 1));
  d.records.push_back(make(RecordType::Deliver, c2d(0, 1, 1), 25, 1, 1));
  d.records.push_back(make(RecordType::Deliver, c2d(0, 0, 0), 35, 0, 1));
  return b;
}

// Every counter of a Verdict, by name, to see which ones a check touched.
const std::vector<std::pair<std::string, std::uint64_t Verdict::*>>& verdict_counters() {
  static const std::vector<std::pair<std::string, std::uint64_t Verdict::*>> all = {
      {"intended", &Verdict::intended},
      {"acknowledged", &Verdict::acknowledged},
      {"refused", &Verdict::refused},
      {"delivered", &Verdict::delivered},
      {"deliveries", &Verdict::deliveries},
      {"lost", &Verdict::lost},
      {"lost_to_killed_consumers", &Verdict::lost_to_killed_consumers},
      {"duplicated", &Verdict::duplicated},
      {"duplicates_unexplained", &Verdict::duplicates_unexplained},
      {"corrupt", &Verdict::corrupt},
      {"phantom", &Verdict::phantom},
      {"indeterminate", &Verdict::indeterminate},
      {"indeterminate_delivered", &Verdict::indeterminate_delivered},
      {"fifo_violations", &Verdict::fifo_violations},
      {"priority_violations", &Verdict::priority_violations},
      {"priority_checked", &Verdict::priority_checked},
      {"fence_violations", &Verdict::fence_violations},
      {"refused_delivered", &Verdict::refused_delivered},
      {"sequence_violations", &Verdict::sequence_violations}};
  return all;
}

TEST(Checks, EveryNamedCheckPassesACorrectHistory) {
  const auto logs = clean_history().logs();
  std::set<std::string> names;
  for (const HistoryCheck& c : history_checks()) {
    EXPECT_TRUE(names.insert(c.name).second) << c.name;
    const Verdict v = run_alone(c.run, logs);
    EXPECT_TRUE(v.ok()) << c.name;
    EXPECT_TRUE(v.violations.empty()) << c.name << ": " << v.violations.front();
  }
  EXPECT_EQ(names.size(), 12u);
}

// A history with a violation of every kind; each check alone touches only
// its own counters, and check_history is all of them run in order.
TEST(Checks, EachFillsOnlyItsOwnPartAndCheckHistoryComposesThem) {
  Builder b = clean_history();
  ProcessLog& w = b.procs.front();
  ProcessLog& d = b.procs.back();
  write_ok(w, c2d(0, 2, 0), 40, 5);                                 // acknowledged, never delivered
  w.records.push_back(make(RecordType::Intent, c2d(0, 2, 1), 50));  // indeterminate
  w.records.push_back(make(RecordType::Intent, c2d(0, 2, 2), 60));
  w.records.push_back(make(RecordType::Fail, c2d(0, 2, 2), 61));           // refused ...
  d.records.push_back(make(RecordType::Deliver, c2d(0, 2, 2), 62, 6, 1));  // ... yet delivered
  d.records.push_back(make(RecordType::Deliver, c2d(5, 3, 0), 63, 0, 1));  // phantom
  d.records.push_back(make(RecordType::Deliver, c2d(0, 1, 0), 64, 0, 1));  // unexplained duplicate
  d.records.push_back(make(RecordType::Corrupt, c2d(0, 1, 0), 65));
  const std::map<std::string, std::set<std::string>> owns = {
      {"tally", {"intended", "acknowledged", "refused", "deliveries", "delivered"}},
      {"no-corruption", {"corrupt"}},
      {"acknowledged-delivered", {"lost", "lost_to_killed_consumers"}},
      {"indeterminate", {"indeterminate", "indeterminate_delivered"}},
      {"refused-not-delivered", {"refused_delivered"}},
      {"sequence-unique-per-ring", {"sequence_violations"}},
      {"sequence-grows-per-writer", {"sequence_violations"}},
      {"no-phantom", {"phantom"}},
      {"duplicates-explained", {"duplicated", "duplicates_unexplained"}},
      {"fifo-per-writer-priority", {"fifo_violations"}},
      {"priority-order", {"priority_checked", "priority_violations"}},
      {"fence", {"fence_violations"}}};
  const auto logs = b.logs();
  Verdict composed;
  const HistoryIndex h = index_history(logs);
  for (const HistoryCheck& c : history_checks()) {
    ASSERT_TRUE(owns.count(c.name)) << c.name;
    const Verdict alone = run_alone(c.run, logs);
    for (const auto& [field, member] : verdict_counters()) {
      if (!owns.at(c.name).count(field)) {
        EXPECT_EQ(alone.*member, 0u) << c.name << " touched " << field;
      }
    }
    if (std::string(c.name) != "tally") {
      EXPECT_TRUE(alone.per_stream_delivered.empty()) << c.name;
    }
    c.run(h, {}, composed);
  }
  const Verdict v = check_history(logs);
  for (const auto& [field, member] : verdict_counters()) EXPECT_EQ(v.*member, composed.*member) << field;
  EXPECT_EQ(v.per_stream_delivered, composed.per_stream_delivered);
  EXPECT_EQ(v.violations, composed.violations);
  EXPECT_FALSE(v.ok());
  for (std::uint64_t Verdict::*field : {&Verdict::lost, &Verdict::indeterminate, &Verdict::refused_delivered,
                                        &Verdict::phantom, &Verdict::duplicates_unexplained, &Verdict::corrupt})
    EXPECT_EQ(v.*field, 1u);
}

TEST(Checks, TallyCountsRecordsAndDistinctMessages) {
  Builder b = clean_history();
  b.procs.front().records.push_back(make(RecordType::Fail, c2d(0, 3, 0), 40));
  b.procs.back().records.push_back(make(RecordType::Deliver, c2d(0, 1, 1), 45, 1, 1));  // again
  const Verdict v = run_alone(check_tally, b.logs());
  EXPECT_EQ(v.intended, 3u);
  EXPECT_EQ(v.acknowledged, 3u);
  EXPECT_EQ(v.refused, 1u);
  EXPECT_EQ(v.deliveries, 4u);
  EXPECT_EQ(v.delivered, 3u);
  EXPECT_EQ(v.per_stream_delivered.at("c2d"), 3u);
  EXPECT_TRUE(v.violations.empty());
}

TEST(Checks, NoCorruption) {
  EXPECT_EQ(run_alone(check_no_corruption, clean_history().logs()).corrupt, 0u);
  Builder b = clean_history();
  b.procs.back().records.push_back(make(RecordType::Corrupt, c2d(0, 1, 0), 40));
  const Verdict v = run_alone(check_no_corruption, b.logs());
  EXPECT_EQ(v.corrupt, 1u);
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_EQ(v.violations[0], "daemon 0 received a corrupt message (c2d, priority 1)");
}

TEST(Checks, AcknowledgedDelivered) {
  EXPECT_EQ(run_alone(check_acknowledged_delivered, clean_history().logs()).lost, 0u);
  Builder b = clean_history();
  write_ok(b.procs.front(), c2d(0, 2, 0), 40, 0);  // never delivered
  Verdict v = run_alone(check_acknowledged_delivered, b.logs());
  EXPECT_EQ(v.lost, 1u);
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("lost: c2d client 0 priority 2 #0"), std::string::npos);
  // A destructive read (no two_step) may lose what a killed consumer held.
  b.procs.back().killed = true;
  CheckOptions destructive;
  destructive.consumer_kill_may_lose = true;
  v = run_alone(check_acknowledged_delivered, b.logs(), destructive);
  EXPECT_EQ(v.lost, 0u);
  EXPECT_EQ(v.lost_to_killed_consumers, 1u);
}

TEST(Checks, IndeterminateIsCountedNeverAViolation) {
  Verdict v = run_alone(check_indeterminate, clean_history().logs());
  EXPECT_EQ(v.indeterminate + v.indeterminate_delivered, 0u);
  Builder b = clean_history();
  b.procs.front().records.push_back(make(RecordType::Intent, c2d(0, 2, 0), 40));  // writer died mid-write
  b.procs.front().records.push_back(make(RecordType::Intent, c2d(0, 2, 1), 50));  // same, but it had published
  b.procs.back().records.push_back(make(RecordType::Deliver, c2d(0, 2, 1), 55, 0, 1));
  v = run_alone(check_indeterminate, b.logs());
  EXPECT_EQ(v.indeterminate, 1u);
  EXPECT_EQ(v.indeterminate_delivered, 1u);
  EXPECT_TRUE(v.ok());
  EXPECT_TRUE(v.violations.empty());
}

TEST(Checks, RefusedNotDelivered) {
  Builder b = clean_history();
  b.procs.front().records.push_back(make(RecordType::Intent, c2d(0, 2, 0), 40));
  b.procs.front().records.push_back(make(RecordType::Fail, c2d(0, 2, 0), 41));
  EXPECT_EQ(run_alone(check_refused_not_delivered, b.logs()).refused_delivered, 0u);
  b.procs.back().records.push_back(make(RecordType::Deliver, c2d(0, 2, 0), 45, 0, 1));
  const Verdict v = run_alone(check_refused_not_delivered, b.logs());
  EXPECT_EQ(v.refused_delivered, 1u);
  EXPECT_FALSE(v.ok());
}

TEST(Checks, SequenceUniquePerRing) {
  EXPECT_EQ(run_alone(check_sequence_unique_per_ring, clean_history().logs()).sequence_violations, 0u);
  // Two messages of one ring with one number.
  Builder b = clean_history();
  b.procs.back().records[1].sequence = b.procs.back().records[0].sequence;
  Verdict v = run_alone(check_sequence_unique_per_ring, b.logs());
  EXPECT_EQ(v.sequence_violations, 1u);
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("carry the same sequence number"), std::string::npos);
  // A redelivery under another number.
  Builder c = clean_history();
  Record again = make(RecordType::Deliver, c2d(0, 1, 0), 40, 0, 1);
  again.sequence += 1000;
  c.procs.back().records.push_back(again);
  v = run_alone(check_sequence_unique_per_ring, c.logs());
  EXPECT_EQ(v.sequence_violations, 1u);
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("was delivered with sequence numbers"), std::string::npos);
  // A transport without T-SEQ numbers is not judged on them.
  CheckOptions no_sequences;
  no_sequences.sequences = false;
  EXPECT_EQ(run_alone(check_sequence_unique_per_ring, b.logs(), no_sequences).sequence_violations, 0u);
}

TEST(Checks, SequenceGrowsPerWriter) {
  EXPECT_EQ(run_alone(check_sequence_grows_per_writer, clean_history().logs()).sequence_violations, 0u);
  Builder b = clean_history();
  std::swap(b.procs.back().records[0].sequence, b.procs.back().records[1].sequence);  // #1 below #0
  const Verdict v = run_alone(check_sequence_grows_per_writer, b.logs());
  EXPECT_EQ(v.sequence_violations, 1u);
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("writer 0 priority 1 message #1"), std::string::npos);
  CheckOptions no_sequences;
  no_sequences.sequences = false;
  EXPECT_EQ(run_alone(check_sequence_grows_per_writer, b.logs(), no_sequences).sequence_violations, 0u);
}

TEST(Checks, NoPhantom) {
  EXPECT_EQ(run_alone(check_no_phantom, clean_history().logs()).phantom, 0u);
  Builder b = clean_history();
  b.procs.back().records.push_back(make(RecordType::Deliver, c2d(9, 1, 0), 40, 2, 1));
  const Verdict v = run_alone(check_no_phantom, b.logs());
  EXPECT_EQ(v.phantom, 1u);
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("phantom: c2d client 9"), std::string::npos);
}

TEST(Checks, DuplicatesExplained) {
  // Daemon 0 recorded #1 last and was killed; daemon 1 delivers it again.
  for (bool killed : {true, false}) {
    Builder b = clean_history();
    b.procs.back().records.pop_back();  // daemon 0 ends on c2d(0, 1, 1)
    b.procs.back().killed = killed;
    ProcessLog& d1 = b.proc(Role::Daemon, 1);
    d1.records.push_back(make(RecordType::Deliver, c2d(0, 1, 1), 40, 1, 2));
    d1.records.push_back(make(RecordType::Deliver, c2d(0, 0, 0), 41, 0, 2));
    const Verdict v = run_alone(check_duplicates_explained, b.logs());
    EXPECT_EQ(v.duplicated, 1u);
    EXPECT_EQ(v.duplicates_unexplained, killed ? 0u : 1u);
    EXPECT_EQ(v.violations.size(), killed ? 0u : 1u);
  }
}

TEST(Checks, FifoPerWriterAndPriority) {
  EXPECT_EQ(run_alone(check_fifo_per_writer_priority, clean_history().logs()).fifo_violations, 0u);
  Builder b = clean_history();
  std::swap(b.procs.back().records[0], b.procs.back().records[1]);  // #1 taken before #0
  const Verdict v = run_alone(check_fifo_per_writer_priority, b.logs());
  EXPECT_EQ(v.fifo_violations, 1u);
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("FIFO: c2d client 0 priority 1 #0 delivered after #1"), std::string::npos);
}

TEST(Checks, PriorityOrder) {
  const Verdict pass = run_alone(check_priority_order, clean_history().logs());
  EXPECT_GT(pass.priority_checked, 0u);
  EXPECT_EQ(pass.priority_violations, 0u);
  // The critical message acknowledged at 31, a normal one taken at 33.
  Builder b = clean_history();
  b.procs.back().records[1].t_ns = 33;
  const Verdict v = run_alone(check_priority_order, b.logs());
  EXPECT_EQ(v.priority_violations, 1u);
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("while priority 0 position 0 was acknowledged"), std::string::npos);
  // Without ring positions the check cannot decide.
  CheckOptions no_positions;
  no_positions.positions = false;
  const Verdict blind = run_alone(check_priority_order, b.logs(), no_positions);
  EXPECT_EQ(blind.priority_checked + blind.priority_violations, 0u);
}

TEST(Checks, Fence) {
  EXPECT_EQ(run_alone(check_fence, clean_history().logs()).fence_violations, 0u);
  // A new daemon (epoch 2) took position 0, then the old one (epoch 1) position 1.
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  write_ok(w, c2d(0, 1, 0), 10, 0);
  write_ok(w, c2d(0, 1, 1), 11, 1);
  ProcessLog& old_daemon = b.proc(Role::Daemon, 0);
  b.proc(Role::Daemon, 1).records.push_back(make(RecordType::Deliver, c2d(0, 1, 0), 20, 0, 2));
  old_daemon.records.push_back(make(RecordType::Deliver, c2d(0, 1, 1), 21, 1, 1));
  const Verdict v = run_alone(check_fence, b.logs());
  EXPECT_EQ(v.fence_violations, 1u);
  ASSERT_EQ(v.violations.size(), 1u);
  EXPECT_NE(v.violations[0].find("fence: c2d priority 1 position 1 was taken in epoch 1"), std::string::npos);
  CheckOptions no_positions;
  no_positions.positions = false;
  EXPECT_EQ(run_alone(check_fence, b.logs(), no_positions).fence_violations, 0u);
}

// The picture of a failing run: a lane per process, the killed one crossed
// out with how it died, and the message the violation names drawn where it
// was written and where it was delivered.
TEST(Picture, ShowsTheProcessesTheKillAndTheNamedMessage) {
  Builder b;
  ProcessLog& w = b.proc(Role::Writer, 0);
  ProcessLog& d = b.proc(Role::Daemon, 0, true);
  ProcessLog& d1 = b.proc(Role::Daemon, 1);
  write_ok(w, c2d(0, 1, 0), 1000, 0);
  write_ok(w, c2d(0, 1, 1), 2000, 1);
  Record serving = make(RecordType::Serving, c2d(0, 0, 0), 500);
  serving.n = 1;
  d.records.push_back(serving);
  d.records.push_back(make(RecordType::Deliver, c2d(0, 1, 0), 1500, 0, 1));
  d1.records.push_back(make(RecordType::Deliver, c2d(0, 1, 0), 3000, 0, 2));
  const Verdict v = check_history(b.logs());
  ASSERT_FALSE(v.ok());
  const std::string violation = v.violations.front();
  ASSERT_NE(violation.find("#1"), std::string::npos) << violation;
  const auto t = chaos_timeline(b.logs(), {{100, 0, ""}, {400, 0, "killed at crash point read.after-take"}, {2500, 0, ""}},
                                violation, "scripts/chaos --seed 1");
  EXPECT_EQ(t.lanes, (std::vector<std::string>{"writer 0", "daemon 0", "daemon 1"}));
  ASSERT_EQ(t.marks.size(), 2u);  // daemon 0: killed; serving
  int kills = 0;
  for (const auto& m : t.marks)
    if (m.kill) {
      ++kills;
      EXPECT_EQ(m.lane, 1);
      EXPECT_EQ(m.label, "killed at crash point read.after-take");
    }
  EXPECT_EQ(kills, 1);
  int named = 0;
  for (const auto& bar : t.bars)
    if (bar.look == conformance::Timeline::Bar::Look::Broke) {
      ++named;
      EXPECT_EQ(bar.lane, 0) << "the lost message was written by writer 0 and delivered nowhere";
      EXPECT_EQ(bar.start, 2000u);
      EXPECT_EQ(bar.end, 2001u);
    }
  EXPECT_EQ(named, 1) << violation;
  const std::string page = conformance::render_timeline_html(t);
  EXPECT_NE(page.find("read.after-take"), std::string::npos);
  EXPECT_NE(page.find("scripts/chaos --seed 1"), std::string::npos);
}

}  // namespace
}  // namespace memlink::chaos
