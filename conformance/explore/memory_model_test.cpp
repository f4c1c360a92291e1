// The exploration's memory model (memory_model.hpp) on the litmus tests of
// the C++ memory model: every outcome a test's orders allow shows up in an
// exhaustive search, and no outcome they forbid ever does. Where the model
// is deliberately stricter than C++ (load buffering) the test says so. Then
// its race detector: a plain field handed over without happens-before is a
// race, one handed over by release/acquire (or a release sequence, or a
// fence pair) is not.
#include "memory_model.hpp"

#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <set>
#include <vector>

#include "memlink/shm/shared_atomic.hpp"
#include "scheduler.hpp"

namespace memlink::conformance::explore {
namespace {

using std::memory_order_acquire;
using std::memory_order_relaxed;
using std::memory_order_release;
using std::memory_order_seq_cst;
using Outcome = std::vector<int>;

struct Memory {
  std::array<shm::SharedAtomic<std::uint32_t>, 2> v;  // x, y
  shm::SharedField<std::uint32_t> data;
  shm::SharedAtomic<std::uint32_t> token;  // 0 always: a CAS on it validates, one expecting 1 fails
  Outcome r = Outcome(4, -1);
  Memory() {
    for (auto& a : v) a.raw().store(0);
    token.raw().store(0);
    data = 0;
  }
  // A reader's CAS after its reads: it uses what it read (or, failing,
  // discards it).
  void validate(bool succeed) {
    std::uint32_t expected = succeed ? 0 : 1;
    (void)token.compare_exchange_strong(expected, 0, memory_order_seq_cst, memory_order_seq_cst);
  }
  shm::SharedAtomic<std::uint32_t>& x() { return v[0]; }
  shm::SharedAtomic<std::uint32_t>& y() { return v[1]; }
};

using Program = std::function<std::vector<ThreadSpec>(Memory&)>;

struct Search {
  std::set<Outcome> outcomes;
  std::size_t races = 0;
  int runs = 0;
};

// Every schedule with at most 4 preemptions and `stale` stale reads (with
// `focus`, make_exhaustive's focused search on that thread, a 500 ms stall).
Search explore_all(const Program& program, int stale = 2, int preemptions = 4, int focus = -1) {
  Search s;
  auto dfs = make_exhaustive(preemptions, 0, focus >= 0 ? 1 : 0, focus >= 0 ? 2 : 0, stale, focus);
  do {
    Memory m;
    SchedulerOptions o;
    o.weak_memory = true;
    Scheduler sched(o);
    const Execution e = sched.run(program(m), *dfs);
    EXPECT_TRUE(e.completed);
    s.outcomes.insert(m.r);
    s.races += e.races.size();
    ++s.runs;
  } while (dfs->next() && s.runs < 500000);
  EXPECT_LT(s.runs, 500000) << "the search did not finish";
  return s;
}

ThreadSpec thread(const char* name, std::function<void()> body) {
  return {name, false, [body = std::move(body)](ThreadApi&) { body(); }};
}

// SB: x = 1; r0 = y  ||  y = 1; r1 = x. Both 0 needs a store to wait in a
// store buffer past the other thread's load: allowed unless both sides are
// seq_cst or both have a seq_cst fence between their store and their load.
Program store_buffering(std::memory_order st, std::memory_order ld, bool fence0, bool fence1) {
  return [=](Memory& m) {
    return std::vector<ThreadSpec>{thread("t0",
                                          [&m, st, ld, fence0] {
                                            m.x().store(1, st);
                                            if (fence0) shm::shared_fence(memory_order_seq_cst);
                                            m.r[0] = static_cast<int>(m.y().load(ld));
                                          }),
                                   thread("t1", [&m, st, ld, fence1] {
                                     m.y().store(1, st);
                                     if (fence1) shm::shared_fence(memory_order_seq_cst);
                                     m.r[1] = static_cast<int>(m.x().load(ld));
                                   })};
  };
}
const Outcome kSbWeak = {0, 0, -1, -1};

TEST(MemoryModel, StoreBufferingRelaxedLetsBothLoadsMissBothStores) {
  const Search s = explore_all(store_buffering(memory_order_relaxed, memory_order_relaxed, false, false));
  EXPECT_TRUE(s.outcomes.count(kSbWeak)) << "SB's weak outcome never showed";
  EXPECT_TRUE(s.outcomes.count({1, 1, -1, -1}));
}

TEST(MemoryModel, StoreBufferingReleaseAcquireStillAllowsIt) {
  EXPECT_TRUE(
      explore_all(store_buffering(memory_order_release, memory_order_acquire, false, false)).outcomes.count(kSbWeak));
}

TEST(MemoryModel, StoreBufferingSeqCstForbidsIt) {
  const Search s = explore_all(store_buffering(memory_order_seq_cst, memory_order_seq_cst, false, false));
  EXPECT_FALSE(s.outcomes.count(kSbWeak));
  EXPECT_GE(s.outcomes.size(), 3u) << "the interleavings (0,1), (1,0), (1,1) should all show";
}

TEST(MemoryModel, StoreBufferingWithAFenceOnBothSidesForbidsIt) {
  EXPECT_FALSE(
      explore_all(store_buffering(memory_order_relaxed, memory_order_relaxed, true, true)).outcomes.count(kSbWeak));
}

TEST(MemoryModel, StoreBufferingWithAFenceOnOneSideOnlyAllowsIt) {
  // The F-WAKE pattern with one half's fence removed.
  EXPECT_TRUE(
      explore_all(store_buffering(memory_order_relaxed, memory_order_relaxed, true, false)).outcomes.count(kSbWeak));
  EXPECT_TRUE(
      explore_all(store_buffering(memory_order_relaxed, memory_order_relaxed, false, true)).outcomes.count(kSbWeak));
}

// MP: data = 1; flag = 1  ||  r0 = flag; r1 = data. (1, 0) is a message
// seen without its data: allowed unless flag's store releases and its load
// acquires (or fences stand in for them).
Program message_passing(std::memory_order st, std::memory_order ld, bool release_fence, bool acquire_fence) {
  return [=](Memory& m) {
    return std::vector<ThreadSpec>{thread("writer",
                                          [&m, st, release_fence] {
                                            m.x().store(1, memory_order_relaxed);
                                            if (release_fence) shm::shared_fence(memory_order_release);
                                            m.y().store(1, st);
                                          }),
                                   thread("reader", [&m, ld, acquire_fence] {
                                     m.r[0] = static_cast<int>(m.y().load(ld));
                                     if (acquire_fence) shm::shared_fence(std::memory_order_acquire);
                                     m.r[1] = static_cast<int>(m.x().load(memory_order_relaxed));
                                   })};
  };
}
const Outcome kMpWeak = {1, 0, -1, -1};

TEST(MemoryModel, MessagePassingRelaxedLetsTheFlagOvertakeTheData) {
  EXPECT_TRUE(
      explore_all(message_passing(memory_order_relaxed, memory_order_relaxed, false, false)).outcomes.count(kMpWeak));
}

TEST(MemoryModel, MessagePassingReleaseAcquireForbidsIt) {
  const Search s = explore_all(message_passing(memory_order_release, memory_order_acquire, false, false));
  EXPECT_FALSE(s.outcomes.count(kMpWeak));
  EXPECT_TRUE(s.outcomes.count({0, 0, -1, -1}) && s.outcomes.count({1, 1, -1, -1}));
}

TEST(MemoryModel, MessagePassingNeedsBothHalves) {
  EXPECT_TRUE(
      explore_all(message_passing(memory_order_release, memory_order_relaxed, false, false)).outcomes.count(kMpWeak));
  EXPECT_TRUE(
      explore_all(message_passing(memory_order_relaxed, memory_order_acquire, false, false)).outcomes.count(kMpWeak));
}

TEST(MemoryModel, MessagePassingWithFencesForbidsIt) {
  EXPECT_FALSE(
      explore_all(message_passing(memory_order_relaxed, memory_order_relaxed, true, true)).outcomes.count(kMpWeak));
  EXPECT_FALSE(
      explore_all(message_passing(memory_order_release, memory_order_relaxed, false, true)).outcomes.count(kMpWeak));
  EXPECT_FALSE(
      explore_all(message_passing(memory_order_relaxed, memory_order_acquire, true, false)).outcomes.count(kMpWeak));
}

// LB: r0 = x; y = 1  ||  r1 = y; x = 1 (relaxed). C++ allows (1, 1); this
// model never produces it: a load reads only stores that have run. A bug
// that needs load buffering is out of its reach (none of SPEC's hand-offs
// is one: every load it orders is followed by a store it guards with a
// CAS, which reads the newest value).
TEST(MemoryModel, LoadBufferingIsNotProducedAsDocumented) {
  const Search s = explore_all([](Memory& m) {
    return std::vector<ThreadSpec>{thread("t0",
                                          [&m] {
                                            m.r[0] = static_cast<int>(m.x().load(memory_order_relaxed));
                                            m.y().store(1, memory_order_relaxed);
                                          }),
                                   thread("t1", [&m] {
                                     m.r[1] = static_cast<int>(m.y().load(memory_order_relaxed));
                                     m.x().store(1, memory_order_relaxed);
                                   })};
  });
  EXPECT_FALSE(s.outcomes.count({1, 1, -1, -1}));
  EXPECT_TRUE(s.outcomes.count({0, 0, -1, -1}) && s.outcomes.count({0, 1, -1, -1}) && s.outcomes.count({1, 0, -1, -1}));
}

// IRIW: x = 1 || y = 1 || r0 = x; r1 = y || r2 = y; r3 = x. The readers
// disagreeing on the order of the two writes, (1, 0, 1, 0), is allowed with
// acquire loads and forbidden with seq_cst ones.
Program iriw(std::memory_order ld) {
  return [=](Memory& m) {
    return std::vector<ThreadSpec>{thread("wx", [&m] { m.x().store(1, memory_order_release); }),
                                   thread("wy", [&m] { m.y().store(1, memory_order_release); }),
                                   thread("r01",
                                          [&m, ld] {
                                            m.r[0] = static_cast<int>(m.x().load(ld));
                                            m.r[1] = static_cast<int>(m.y().load(ld));
                                          }),
                                   thread("r23", [&m, ld] {
                                     m.r[2] = static_cast<int>(m.y().load(ld));
                                     m.r[3] = static_cast<int>(m.x().load(ld));
                                   })};
  };
}

TEST(MemoryModel, IriwAcquireLetsReadersDisagree) {
  // Each thread runs to its end: the writers first, then the readers.
  EXPECT_TRUE(explore_all(iriw(memory_order_acquire), 2, 0).outcomes.count({1, 0, 1, 0}));
}

TEST(MemoryModel, IriwSeqCstMakesThemAgree) {
  EXPECT_FALSE(explore_all(iriw(memory_order_seq_cst), 2, 1).outcomes.count({1, 0, 1, 0}));
}

// CoRR: x = 1; x = 2 || r0 = x; r1 = x. Reading 2 then 1 breaks coherence
// (one order of the stores to one word for everybody): never.
TEST(MemoryModel, ReadsOfOneWordNeverGoBackInTime) {
  const Search s = explore_all([](Memory& m) {
    return std::vector<ThreadSpec>{thread("w",
                                          [&m] {
                                            m.x().store(1, memory_order_relaxed);
                                            m.x().store(2, memory_order_relaxed);
                                          }),
                                   thread("r", [&m] {
                                     m.r[0] = static_cast<int>(m.x().load(memory_order_relaxed));
                                     m.r[1] = static_cast<int>(m.x().load(memory_order_relaxed));
                                   })};
  });
  EXPECT_FALSE(s.outcomes.count({2, 1, -1, -1}));
  EXPECT_FALSE(s.outcomes.count({2, 0, -1, -1}));
  EXPECT_FALSE(s.outcomes.count({1, 0, -1, -1}));
  EXPECT_TRUE(s.outcomes.count({0, 2, -1, -1})) << "a stale first read followed by the newest should show";
}

// A read-modify-write reads the newest value, whatever its order.
TEST(MemoryModel, ReadModifyWritesNeverReadStale) {
  const Search s = explore_all([](Memory& m) {
    return std::vector<ThreadSpec>{
        thread("a", [&m] { m.r[0] = static_cast<int>(m.x().fetch_add(1, memory_order_relaxed)); }),
        thread("b", [&m] { m.r[1] = static_cast<int>(m.x().fetch_add(1, memory_order_relaxed)); })};
  });
  for (const Outcome& o : s.outcomes) EXPECT_NE(o[0], o[1]) << "two increments read the same value";
}

// ----------------------------------------------------------- data races

// The writer fills `data` (a plain field) and raises y; the reader reads
// data once it sees y == 1, and uses it (its CAS succeeds) or, when
// `discard`, drops it (its CAS fails).
Program hand_off(std::memory_order st, std::memory_order ld, bool discard = false) {
  return [=](Memory& m) {
    return std::vector<ThreadSpec>{thread("writer",
                                          [&m, st] {
                                            m.data = 7;
                                            m.y().store(1, st);
                                          }),
                                   thread("reader", [&m, ld, discard] {
                                     if (m.y().load(ld) == 1)
                                       m.r[0] = static_cast<int>(static_cast<std::uint32_t>(m.data));
                                     m.validate(!discard);
                                   })};
  };
}

TEST(MemoryModel, APlainFieldHandedOverRelaxedIsARace) {
  EXPECT_GT(explore_all(hand_off(memory_order_relaxed, memory_order_acquire)).races, 0u);
  EXPECT_GT(explore_all(hand_off(memory_order_release, memory_order_relaxed)).races, 0u);
}

// A seqlock-style reader: it reads optimistically and a failed CAS tells it
// the slot changed under it. Nothing it read was used: not a finding.
TEST(MemoryModel, ARacingReadThatItsCasThenDiscardsIsNotAFinding) {
  EXPECT_EQ(explore_all(hand_off(memory_order_relaxed, memory_order_acquire, true)).races, 0u);
}

TEST(MemoryModel, APlainFieldHandedOverByReleaseAcquireIsNot) {
  const Search s = explore_all(hand_off(memory_order_release, memory_order_acquire));
  EXPECT_EQ(s.races, 0u);
  EXPECT_TRUE(s.outcomes.count({7, -1, -1, -1}));
}

// A release sequence: the writer releases y = 1, a third thread's relaxed
// increment continues the sequence, the reader acquires 2: still ordered.
TEST(MemoryModel, AReleaseSequenceThroughAnotherThreadsIncrementOrders) {
  const Search s = explore_all(
      [](Memory& m) {
        return std::vector<ThreadSpec>{thread("writer",
                                              [&m] {
                                                m.data = 7;
                                                m.y().store(1, memory_order_release);
                                              }),
                                       thread("bump",
                                              [&m] {
                                                std::uint32_t one = 1;
                                                (void)m.y().compare_exchange_strong(one, 2, memory_order_relaxed,
                                                                                    memory_order_relaxed);
                                              }),
                                       thread("reader", [&m] {
                                         if (m.y().load(memory_order_acquire) == 2)
                                           m.r[0] = static_cast<int>(static_cast<std::uint32_t>(m.data));
                                         m.validate(true);
                                       })};
      },
      2, 3);
  EXPECT_EQ(s.races, 0u);
  EXPECT_TRUE(s.outcomes.count({7, -1, -1, -1}));
}

// The reader's plain read, then its release of the slot; the writer's
// relaxed CAS takes the slot and writes the field: the read and the write
// are unordered (a consumer may still be reading what the next lap's writer
// overwrites). With an acquire CAS they are ordered.
Program slot_reuse(std::memory_order cas) {
  return [=](Memory& m) {
    return std::vector<ThreadSpec>{thread("consumer",
                                          [&m] {
                                            m.r[0] = static_cast<int>(static_cast<std::uint32_t>(m.data));
                                            m.x().store(1, memory_order_release);  // Empty
                                            m.validate(true);                      // its next take
                                          }),
                                   thread("producer", [&m, cas] {
                                     std::uint32_t empty = 1;
                                     if (m.x().compare_exchange_strong(empty, 2, cas, memory_order_relaxed)) m.data = 9;
                                   })};
  };
}

TEST(MemoryModel, AClaimByARelaxedCasRacesWithThePreviousLapsReader) {
  EXPECT_GT(explore_all(slot_reuse(memory_order_relaxed)).races, 0u);
  EXPECT_EQ(explore_all(slot_reuse(memory_order_acquire)).races, 0u);
}

// K-FENCE's shape: a consumer takes the slot by a seq_cst CAS, then checks
// the epoch; a successor bumps the epoch by a seq_cst read-modify-write, then
// looks at the slot (and goes on working). The consumer was descheduled just
// before its CAS and resumed while the bump was still in flight. With the
// check relaxed both may miss each other (r0 = 0: old epoch, r1 = 0: the slot
// still free); seq_cst on both sides forbids it. The focused search reaches
// it in a few dozen schedules.
Program check_after_cas(std::memory_order check) {
  return [=](Memory& m) {
    return std::vector<ThreadSpec>{thread("consumer",
                                          [&m, check] {
                                            std::uint32_t free = 0;
                                            (void)m.x().compare_exchange_strong(free, 1, memory_order_seq_cst,
                                                                                memory_order_seq_cst);
                                            m.r[0] = static_cast<int>(m.y().load(check));
                                          }),
                                   {"successor", false, [&m](ThreadApi& api) {
                                      (void)m.y().fetch_add(1, memory_order_seq_cst);
                                      m.r[1] = static_cast<int>(m.x().load(memory_order_seq_cst));
                                      api.yield();  // it works on: a point to resume the consumer at
                                    }}};
  };
}
// The focused search (make_exhaustive): thread 0 stalls before any of its
// effects and is resumed at any later step of the other, one stale read.
Search explore_focused(const Program& program) {
  Search s = explore_all(program, 1, 1, /*focus=*/0);
  EXPECT_LT(s.runs, 100) << "the focused search is meant to be small";
  return s;
}

TEST(MemoryModel, FocusedSearchFindsACheckAfterACasThatMissesTheSuccessor) {
  EXPECT_TRUE(explore_focused(check_after_cas(memory_order_relaxed)).outcomes.count(kSbWeak));
  EXPECT_TRUE(explore_focused(check_after_cas(memory_order_acquire)).outcomes.count(kSbWeak));
  const Search sc = explore_focused(check_after_cas(memory_order_seq_cst));
  EXPECT_FALSE(sc.outcomes.count(kSbWeak));
  EXPECT_TRUE(sc.outcomes.count({1, 0, -1, -1})) << "the consumer resumed after the successor's look: it sees the bump";
}

// Without weak memory on, no load reads an older store (the exploration's
// schedules and their decision strings are as before).
TEST(MemoryModel, OffByDefault) {
  auto dfs = make_exhaustive(4, 0, 0, 0, 2);
  int runs = 0;
  do {
    Memory m;
    Scheduler sched;
    const Execution e = sched.run(store_buffering(memory_order_relaxed, memory_order_relaxed, false, false)(m), *dfs);
    EXPECT_EQ(e.stale_reads, 0u);
    EXPECT_NE(m.r, kSbWeak);
    ++runs;
  } while (dfs->next() && runs < 10000);
}

}  // namespace
}  // namespace memlink::conformance::explore
