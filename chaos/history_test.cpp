// The chaos checker on hand-made histories: a correct one passes, and each
// kind of violation (lost, phantom, corrupt, unexplained duplicate, FIFO,
// priority, fence) is caught. The runner's own proof that it catches a
// broken recovery is the ctest chaos-catches-broken-* pair.
#include "history.hpp"
#include "picture.hpp"

#include <gtest/gtest.h>

#include <deque>

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
