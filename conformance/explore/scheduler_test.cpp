// The exploration scheduler on toy programs whose bugs are known: it must
// find them (exhaustively and by PCT), replay them exactly, see a lost
// wake-up as one, and stay deterministic.
#include "scheduler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>

#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/futex.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/recovery.hpp"
#include "memlink/shm/shared_atomic.hpp"

namespace memlink::conformance::explore {
namespace {

// Two threads increment a shared counter with a load and a store: one
// preemption between them loses an update.
struct LostUpdate {
  shm::SharedAtomic<std::uint32_t> counter;
  LostUpdate() { counter.raw().store(0); }
  std::vector<ThreadSpec> threads() {
    auto inc = [this](ThreadApi&) {
      const std::uint32_t v = counter.load(std::memory_order_relaxed);
      counter.store(v + 1, std::memory_order_relaxed);
    };
    return {{"a", false, inc}, {"b", false, inc}};
  }
};

TEST(Scheduler, ExhaustiveSearchFindsTheLostUpdateAndCountsItsSchedules) {
  auto dfs = make_exhaustive(/*preemptions=*/1, /*deaths=*/0);
  int runs = 0, lost = 0;
  std::set<std::string> distinct;
  do {
    LostUpdate p;
    Scheduler s;
    const Execution e = s.run(p.threads(), *dfs);
    ++runs;
    distinct.insert(encode_decisions(e.decisions));
    EXPECT_TRUE(e.completed);
    lost += p.counter.raw().load() == 1;
  } while (dfs->next() && runs < 1000);
  EXPECT_GT(lost, 0) << "no schedule with one preemption lost the update";
  EXPECT_LT(lost, runs) << "every schedule lost it";
  EXPECT_EQ(static_cast<int>(distinct.size()), runs) << "the search repeated a schedule";
}

TEST(Scheduler, WithoutPreemptionsTheUpdateIsNeverLost) {
  auto dfs = make_exhaustive(0, 0);
  int runs = 0;
  do {
    LostUpdate p;
    Scheduler s;
    (void)s.run(p.threads(), *dfs);
    EXPECT_EQ(p.counter.raw().load(), 2u);
    ++runs;
  } while (dfs->next() && runs < 100);
  EXPECT_GE(runs, 2);  // either thread may go first
}

TEST(Scheduler, PctFindsTheLostUpdateAndTheDecisionsReplayIt) {
  std::optional<std::vector<Decision>> failing;
  for (std::uint64_t seed = 0; seed < 200 && !failing; ++seed) {
    LostUpdate p;
    Scheduler s;
    auto pct = make_pct(seed, 2, 20);
    const Execution e = s.run(p.threads(), *pct);
    if (p.counter.raw().load() == 1) failing = e.decisions;
  }
  ASSERT_TRUE(failing.has_value()) << "PCT with depth 2 did not find a depth-2 bug in 200 runs";
  const auto decoded = decode_decisions(encode_decisions(*failing));
  ASSERT_TRUE(decoded.has_value());
  for (int again = 0; again < 3; ++again) {
    LostUpdate p;
    Scheduler s;
    auto replay = make_replay(*decoded);
    (void)s.run(p.threads(), *replay);
    EXPECT_EQ(p.counter.raw().load(), 1u) << "the replayed schedule did not lose the update again";
    EXPECT_FALSE(replay->diverged_at().has_value()) << "a faithful replay was called diverged";
  }
}

// A polling thread: it waits (spinning) until the flag is set by the other.
struct SpinUntilSet {
  shm::SharedAtomic<std::uint32_t> flag;
  int extra_steps = 0;  // more accesses before the setter sets the flag: "other code"
  SpinUntilSet() { flag.raw().store(0); }
  std::vector<ThreadSpec> threads() {
    return {{"poller", false,
             [this](ThreadApi& api) {
               while (flag.load(std::memory_order_acquire) == 0 && !api.tearing_down()) api.spin();
             }},
            {"setter", false, [this](ThreadApi&) {
               for (int i = 0; i < extra_steps; ++i) (void)flag.load(std::memory_order_relaxed);
               flag.store(1, std::memory_order_release);
             }}};
  }
};

// A record replayed on other code: where the record runs out the replay
// says so (diverged_at) and runs fairly, so the poller's wait ends instead
// of turning into an invented livelock; a decision naming a thread that
// cannot run there is a divergence at that decision.
TEST(Scheduler, AReplayOnOtherCodeSaysWhereItDivergedAndInventsNoLivelock) {
  std::vector<Decision> record;
  {
    SpinUntilSet p;
    Scheduler s;
    auto dfs = make_exhaustive(0, 0);
    const Execution e = s.run(p.threads(), *dfs);
    ASSERT_TRUE(e.completed);
    record = e.decisions;
  }
  {
    SpinUntilSet p;  // the same code: the record fits to its end
    Scheduler s;
    auto replay = make_replay(record);
    EXPECT_TRUE(s.run(p.threads(), *replay).completed);
    EXPECT_FALSE(replay->diverged_at().has_value());
  }
  {
    SpinUntilSet p;
    p.extra_steps = 50;  // the setter takes longer than the record knows
    Scheduler s;
    auto replay = make_replay(record);
    const Execution e = s.run(p.threads(), *replay);
    EXPECT_TRUE(e.completed) << "off the record, the replay let the poller spin forever";
    EXPECT_TRUE(e.violations.empty()) << e.violations.front();
    ASSERT_TRUE(replay->diverged_at().has_value());
    EXPECT_EQ(*replay->diverged_at(), record.size());
  }
  {
    SpinUntilSet p;
    Scheduler s;
    std::vector<Decision> bad = record;
    bad.insert(bad.begin() + 1, Decision{Decision::Run, 9});  // there is no thread 9
    auto replay = make_replay(bad);
    EXPECT_TRUE(s.run(p.threads(), *replay).completed);
    ASSERT_TRUE(replay->diverged_at().has_value());
    EXPECT_EQ(*replay->diverged_at(), 1u);
  }
}

TEST(Scheduler, PctIsDeterministicForASeed) {
  auto once = [](std::uint64_t seed) {
    LostUpdate p;
    Scheduler s;
    auto pct = make_pct(seed, 3, 20);
    return encode_decisions(s.run(p.threads(), *pct).decisions);
  };
  for (std::uint64_t seed : {1u, 7u, 42u}) EXPECT_EQ(once(seed), once(seed));
}

TEST(Scheduler, DecisionStringsRejectGarbage) {
  EXPECT_FALSE(decode_decisions("!!").has_value());
  EXPECT_TRUE(decode_decisions("").has_value());
}

// A check made before the CAS it guards (time of check to time of use):
// the old holder checks the epoch, then takes the slot; a successor that
// needs a while (it watches for silence) bumps the epoch in between only
// if the old holder is off its CPU that long. Fixed: CAS, then check.
struct CheckThenCas {
  shm::SharedAtomic<std::uint32_t> epoch, slot;
  bool check_after = false;
  bool took_in_new_epoch = false;
  CheckThenCas() {
    epoch.raw().store(0);
    slot.raw().store(0);
  }
  std::vector<ThreadSpec> threads() {
    return {{"old", false,
             [this](ThreadApi&) {
               std::uint32_t free = 0;
               if (!check_after) {
                 if (epoch.load() != 0) return;
                 if (slot.compare_exchange_strong(free, 1)) took_in_new_epoch = epoch.raw().load() != 0;
                 return;
               }
               if (!slot.compare_exchange_strong(free, 1)) return;
               if (epoch.load() != 0) {
                 slot.store(0);  // fenced: give it back
                 return;
               }
               took_in_new_epoch = epoch.raw().load() != 0;
             }},
            {"new", false, [this](ThreadApi&) {
               shm::platform::sleep_for(std::chrono::milliseconds(1));  // watching the old one's heartbeat
               epoch.store(1);
               shm::platform::sleep_for(std::chrono::seconds(1));       // slow to start serving
             }}};
  }
};

int check_then_cas_failures(bool check_after, int stalls) {
  auto dfs = make_exhaustive(/*preemptions=*/1, /*deaths=*/0, stalls, /*stall_kind=*/0);
  int failures = 0, runs = 0;
  do {
    CheckThenCas p;
    p.check_after = check_after;
    Scheduler s;
    const Execution e = s.run(p.threads(), *dfs);
    EXPECT_TRUE(e.violations.empty()) << e.violations.front();
    failures += p.took_in_new_epoch;
    ++runs;
  } while (dfs->next() && runs < 5000);
  EXPECT_LT(runs, 5000);
  return failures;
}

TEST(Scheduler, OnlyAStallOpensTheWindowBetweenACheckAndItsCas) {
  EXPECT_EQ(check_then_cas_failures(false, 0), 0) << "preemptions alone cannot outlast the successor's sleep";
  EXPECT_GT(check_then_cas_failures(false, 1), 0) << "a stall before the CAS did not let the successor in";
  EXPECT_EQ(check_then_cas_failures(true, 1), 0) << "the fixed order (CAS, then check) failed";
}

TEST(Scheduler, StallDecisionsReplay) {
  std::optional<std::vector<Decision>> failing;
  auto dfs = make_exhaustive(1, 0, 1, 0);
  do {
    CheckThenCas p;
    Scheduler s;
    const Execution e = s.run(p.threads(), *dfs);
    if (p.took_in_new_epoch) failing = e.decisions;
  } while (!failing && dfs->next());
  ASSERT_TRUE(failing.has_value());
  EXPECT_TRUE(std::any_of(failing->begin(), failing->end(), [](const Decision& d) { return d.kind == Decision::Stall; }));
  const auto decoded = decode_decisions(encode_decisions(*failing));
  ASSERT_TRUE(decoded.has_value());
  CheckThenCas p;
  Scheduler s;
  auto replay = make_replay(*decoded);
  const Execution e = s.run(p.threads(), *replay);
  EXPECT_TRUE(p.took_in_new_epoch) << "the replayed schedule did not reopen the window";
  EXPECT_FALSE(replay->diverged_at().has_value());
  EXPECT_EQ(e.stalls, 1);
  EXPECT_GE(e.stalled_ns[0], 1'000'000u) << "the stall did not outlast the successor's watch";
}

// A sleeper waits on a futex word for a flag; the waker sets the flag and
// (unless broken) bumps the word and wakes it.
struct WakeProgram {
  shm::SharedAtomic<std::uint32_t> flag, word;
  bool wake = true;
  WakeProgram() {
    flag.raw().store(0);
    word.raw().store(0);
  }
  std::vector<ThreadSpec> threads() {
    return {{"sleeper", false,
             [this](ThreadApi& api) {
               shm::Futex fx(&word.raw(), "toy");
               for (;;) {
                 const std::uint32_t seen = word.load();
                 if (flag.load() != 0) return;
                 api.expect_wake([this] { return flag.raw().load() != 0; }, "the flag");
                 (void)fx.wait(seen, std::chrono::milliseconds(100));
                 api.clear_wake();
                 if (api.tearing_down()) return;
               }
             }},
            {"waker", false, [this](ThreadApi&) {
               flag.store(1);
               if (wake) {
                 word.fetch_add(1);
                 shm::Futex fx(&word.raw(), "toy");
                 (void)fx.wake(1);
               }
             }}};
  }
};

// F-WAKE's protocol in small: the sleeper registers in `waiters`, fences,
// rechecks, sleeps, unregisters; the waker publishes twice (two operations),
// fences and wakes only when it sees a sleeper. `leak`: the recheck path
// returns without unregistering (the catalog's sleeper-count-leaks).
struct CountedWake {
  shm::SharedAtomic<std::uint32_t> flag, word, waiters;
  bool leak = false;
  CountedWake() {
    flag.raw().store(0);
    word.raw().store(0);
    waiters.raw().store(0);
  }
  void publish(ThreadApi& api, std::uint32_t value) {
    api.begin_operation();
    flag.store(value, std::memory_order_relaxed);
    shm::shared_fence(std::memory_order_seq_cst);
    if (waiters.load(std::memory_order_relaxed) == 0) return;
    word.fetch_add(1, std::memory_order_release);
    shm::Futex fx(&word.raw(), "toy");
    (void)fx.wake(1);
  }
  std::vector<ThreadSpec> threads() {
    return {{"sleeper", false,
             [this](ThreadApi& api) {
               shm::Futex fx(&word.raw(), "toy");
               api.begin_operation();
               api.expect_wake([this] { return flag.raw().load() != 0; }, "the flag");
               while (flag.load(std::memory_order_relaxed) == 0 && !api.tearing_down()) {
                 waiters.fetch_add(1, std::memory_order_relaxed);
                 shm::shared_fence(std::memory_order_seq_cst);
                 const std::uint32_t seen = word.load(std::memory_order_relaxed);
                 if (flag.load(std::memory_order_relaxed) != 0) {
                   if (!leak) waiters.fetch_sub(1, std::memory_order_relaxed);
                   break;
                 }
                 (void)fx.wait(seen, std::chrono::milliseconds(100));
                 waiters.fetch_sub(1, std::memory_order_relaxed);
               }
               api.clear_wake();
             }},
            {"waker", false, [this](ThreadApi& api) {
               publish(api, 1);
               for (int i = 0; i < 3; ++i) api.spin();  // long after: nobody is in a call that sleeps
               publish(api, 2);
             }}};
  }
};

std::uint64_t idle_wakes_in_every_schedule(bool leak, bool weak) {
  auto dfs = make_exhaustive(2, 0, 0, 0, weak ? 1 : 0);
  std::uint64_t idle = 0;
  int runs = 0;
  do {
    CountedWake p;
    p.leak = leak;
    SchedulerOptions o;
    o.weak_memory = weak;
    Scheduler s(o);
    const Execution e = s.run(p.threads(), *dfs);
    EXPECT_TRUE(e.lost_wakeups.empty()) << e.lost_wakeups.front();
    idle += e.idle_wake_count;
    ++runs;
  } while (dfs->next() && runs < 20000);
  EXPECT_LT(runs, 20000) << "the search did not finish";
  return idle;
}

TEST(Scheduler, AWakerThatSeesASleeperIsNeverChargedForAnIdleWake) {
  EXPECT_EQ(idle_wakes_in_every_schedule(false, false), 0u);
  EXPECT_EQ(idle_wakes_in_every_schedule(false, true), 0u) << "a stale read of the count is the waker's right";
}

TEST(Scheduler, ALeakedSleeperCountMakesIdleWakesThatAreCounted) {
  EXPECT_GT(idle_wakes_in_every_schedule(true, false), 0u);
}

TEST(Scheduler, ALostWakeUpIsReportedExactly) {
  auto dfs = make_exhaustive(1, 0);
  int runs = 0, reported = 0;
  do {
    WakeProgram p;
    p.wake = false;
    Scheduler s;
    const Execution e = s.run(p.threads(), *dfs);
    reported += static_cast<int>(e.lost_wakeups.size());
    ++runs;
  } while (dfs->next() && runs < 1000);
  EXPECT_GT(reported, 0) << "a waker that never wakes went unnoticed in all " << runs << " schedules";
}

TEST(Scheduler, ACorrectWakeUpIsNeverReportedLost) {
  auto dfs = make_exhaustive(2, 0);
  int runs = 0;
  do {
    WakeProgram p;
    Scheduler s;
    const Execution e = s.run(p.threads(), *dfs);
    EXPECT_TRUE(e.violations.empty()) << e.violations.front() << "\n" << e.schedule_text;
    EXPECT_TRUE(e.completed);
    EXPECT_TRUE(e.lost_wakeups.empty()) << e.lost_wakeups.front() << "\n" << e.schedule_text;
    ++runs;
  } while (dfs->next() && runs < 5000);
  EXPECT_GT(runs, 3);
}

TEST(Scheduler, AStalledWakerIsNotALostWakeUp) {
  // The waker may stall (500 ms) just before it bumps the word: the sleeper's
  // 100 ms sleeps time out with the flag set and nobody able to wake it, but
  // the waker was off its CPU, not forgetful.
  auto dfs = make_exhaustive(1, 0, 1, 2);
  int runs = 0, stalled = 0;
  do {
    WakeProgram p;
    Scheduler s;
    const Execution e = s.run(p.threads(), *dfs);
    EXPECT_TRUE(e.violations.empty()) << e.violations.front();
    stalled += e.stalls;
    EXPECT_TRUE(e.lost_wakeups.empty()) << e.lost_wakeups.front();
    ++runs;
  } while (dfs->next() && runs < 20000);
  EXPECT_GT(stalled, 0);
}

TEST(Scheduler, AWaitLoopEnteredDuringTeardownEnds) {
  // The run ends (here: its step limit) while a thread is in the middle of
  // its body; teardown runs it on alone, and it enters a loop that waits
  // for a deadline read from the clock. Time must pass for it.
  shm::SharedAtomic<std::uint32_t> word;
  word.raw().store(0);
  SchedulerOptions o;
  o.max_steps = 5;
  Scheduler s(o);
  bool looped = false;
  auto dfs = make_exhaustive(0, 0);
  const Execution e = s.run({{"waiter", false, [&](ThreadApi&) {
                                for (int i = 0; i < 10; ++i) (void)word.load();
                                const std::uint64_t deadline = shm::platform::monotonic_ns() + 10'000'000;
                                while (shm::platform::monotonic_ns() < deadline)
                                  shm::platform::sleep_for(std::chrono::milliseconds(1));
                                looped = true;
                              }}},
                            *dfs);
  EXPECT_FALSE(e.violations.empty()) << "the step limit ends the run";
  EXPECT_TRUE(looped);
}

TEST(Scheduler, VirtualTimeOnlyMovesForwardAndSleepsCostTheirLength) {
  Scheduler s;
  std::uint64_t before = 0, after = 0;
  std::vector<ThreadSpec> t = {{"sleeper", false, [&](ThreadApi& api) {
                                  before = api.now();
                                  shm::platform::sleep_for(std::chrono::milliseconds(5));
                                  after = api.now();
                                }}};
  auto pct = make_pct(1, 1, 10);
  const Execution e = s.run(std::move(t), *pct);
  EXPECT_TRUE(e.completed);
  EXPECT_GE(after - before, 5'000'000u);
  EXPECT_LT(after - before, 6'000'000u);
}

TEST(Scheduler, AThreadKilledAtACrashPointIsDeadToTheOthers) {
  std::uint32_t victim_pid = 0;
  bool seen_dead = false;
  auto dfs = make_exhaustive(0, 1);
  bool any_death = false;
  do {
    Scheduler s;
    std::vector<ThreadSpec> t = {{"victim", true,
                                  [&](ThreadApi& api) {
                                    victim_pid = shm::platform::current_pid();
                                    shm::crash_point("write.after-claim");
                                    (void)api;
                                  }},
                                 {"observer", false, [&](ThreadApi& api) {
                                    for (int i = 0; i < 4 && !api.tearing_down(); ++i) api.spin();
                                    if (victim_pid != 0) seen_dead = !shm::owner_process_alive(victim_pid);
                                  }}};
    const Execution e = s.run(std::move(t), *dfs);
    if (!e.died.empty()) {
      any_death = true;
      EXPECT_EQ(e.died.front(), 0);
      EXPECT_TRUE(seen_dead) << "the survivor still saw the killed thread's pid alive";
    }
    seen_dead = false;
    victim_pid = 0;
  } while (dfs->next());
  EXPECT_TRUE(any_death) << "the exhaustive search never tried the death at the named point";
}

}  // namespace
}  // namespace memlink::conformance::explore
