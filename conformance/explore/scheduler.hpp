// A cooperative scheduler that runs the real code of ref/ (its test build)
// one thread at a time and decides, before every access to shared memory,
// which thread goes next: schedule exploration, as CHESS, loom and shuttle
// do, on the reference itself.
//
//   thread A ──access──▶ [decide] ──▶ A continues, or A parks and B runs
//                         │
//                         ├─ PCT (Burckhardt et al. 2010): random thread
//                         │  priorities, d-1 random priority drops; a bug of
//                         │  depth d shows with probability >= 1/(n k^(d-1))
//                         ├─ exhaustive: depth-first over every schedule with
//                         │  at most `preemptions` preemptions (stateless: each
//                         │  schedule is a fresh run that replays a prefix)
//                         └─ replay: a recorded decision string (--reproduce)
//
// Every decision is recorded; the decision string identifies the schedule
// (distinct schedules are counted by it) and replays it exactly, because
// everything else the code asks the OS is virtual here (testing_hooks.hpp):
//  - time advances 100 ns per decision and by whole timeouts when every
//    thread sleeps; a sleeper whose timeout fires while nothing else can run
//    and whose condition already holds was never woken: a lost wake-up
//    (SPEC F-WAKE), reported exactly, without timing;
//  - each thread is a process of its own (a virtual pid); a thread may die at
//    a decision point (it never runs again and its pid is dead), so that the
//    survivors' recovery (SPEC K-*) runs against exactly what it left;
//  - futex waits and wakes are virtual, with the kernel's semantics;
//  - with weak memory on (SchedulerOptions::weak_memory), a relaxed or
//    acquire load may read an older store of its word where the C++ memory
//    model lets it (memory_model.hpp): a "stale" decision, bounded like
//    preemptions; plain slot fields are race-checked in every run (S-PUBLISH);
//  - a thread may stall just before it changes shared memory (the OS took
//    its CPU): it stays off for one of kStallNs of virtual time, past the
//    timeouts of the code under test, unless the strategy resumes it
//    earlier. Time-of-check-to-time-of-use windows (a check made
//    before a CAS instead of after it, a slow writer racing its reclaimer)
//    open exactly there.
//
// Contract: run() from one controlling thread; the bodies call only the
// ThreadApi of their own thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "memlink/shm/testing_hooks.hpp"
#include "memory_model.hpp"

namespace memlink::conformance::explore {

using shm::hooks::Access;
using shm::hooks::WaitResult;

// One choice the scheduler made, as it is recorded and replayed.
struct Decision {
  enum Kind : std::uint8_t { Run = 0, Kill = 1, Timeout = 2, Stall = 3, Stale = 4 };
  Kind kind = Run;
  // Run: who runs next (a stalled thread: it resumes); Kill: the current
  // thread; Stall: the current thread, for kStallNs[thread]; Stale: the
  // load reads the thread-th older store of its word (1..15)
  std::uint8_t thread = 0;
};

// How long a stall lasts: past the claim timeout the scenarios use (1 ms),
// past a writer's patience with a held slot (20 ms) and a blocking write's
// timeout, past a successor's watch of a silent heartbeat (200 ms).
inline constexpr std::uint64_t kStallNs[] = {2'000'000, 30'000'000, 500'000'000};
inline constexpr int kStallKinds = 3;

// What a strategy chooses from at one decision point.
struct DecisionPoint {
  std::uint64_t step = 0;
  int current = -1;                 // the thread that reached the point, -1 if it blocked or ended
  bool current_spinning = false;    // it polls without progress (ThreadApi::spin)
  bool at_named_point = false;      // a crash point (kCrashPoints) rather than an access
  bool current_mortal = false;      // the current thread may die here
  bool current_hostile = false;     // the current thread is a hostile peer (ThreadSpec::hostile)
  bool before_effect = false;       // the current thread is about to store, CAS or read-modify-write
  bool timeout_pending = false;     // some sleeper has a finite timeout
  std::vector<int> runnable;        // ascending, the current thread included if runnable
  std::vector<bool> spinning;       // by thread: its last step was a spin (it polls, waiting for others)
  std::vector<int> stalled;         // threads in a stall, which a Run decision may resume early
  // > 0: not a scheduling point but a load's value: Run(current) reads the
  // newest store, Stale(k) the k-th older one, 1 <= k <= stale_options.
  int stale_options = 0;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual void begin(int threads) = 0;
  virtual Decision choose(const DecisionPoint& p) = 0;
  // After the run: false when this strategy has no further schedule to try.
  virtual bool next() { return true; }
  // A replay's first recorded decision that did not fit the run (a thread
  // that could not run there, a death or stall where none can happen), or
  // the record's length if the run wanted more decisions than it holds: the
  // schedule was recorded on other code, and the replay stopped following
  // it there. nullopt for every other strategy, and for a replay that fits.
  virtual std::optional<std::size_t> diverged_at() const { return std::nullopt; }
};

// PCT with depth d over an estimated k steps, plus deaths, stalls and early
// timeouts: with probability 1/2 one mortal thread dies at the first named
// point (kCrashPoints, SPEC K-CRASH) it reaches after a random step; with
// probability 1/2 the thread about to change shared memory first after a
// random step stalls, and half of those resume at a random later step;
// some runs fire a sleeper's timeout early at a few random steps.
std::unique_ptr<Strategy> make_pct(std::uint64_t seed, int depth, std::uint64_t steps_estimate);
// Depth-first over all schedules with at most `preemptions` preemptions,
// at most `deaths` deaths (only at named points) and at most `stalls`
// stalls (only just before a store, CAS or read-modify-write); resuming a
// stalled thread before its stall ends costs a preemption; at most
// `stale_reads` loads read an older store than the newest (weak memory).
// `stall_kind` indexes kStallNs.
//
// With `focus` >= 0 the search is about one thread descheduled in a window
// and resumed while the others' stores are still in flight: the threads run
// in a fixed fair order (each until it blocks or polls), except that a
// hostile peer may give way to `focus` once, at any of its steps (the
// consumer reads a slot the peer has half-attacked), only `focus` may
// stall and read older stores, and the preemption budget is spent only on
// resuming it early. Every stall point of that thread times every resume
// point times every stale read: a store-buffering race of a check after a
// CAS (SPEC K-FENCE), which the unfocused bounds reach only among millions.
std::unique_ptr<Strategy> make_exhaustive(int preemptions, int deaths, int stalls = 0, int stall_kind = 0,
                                          int stale_reads = 0, int focus = -1);
// Follows `decisions` while each fits the run (see diverged_at); off the
// record it keeps the current thread running until it polls, then passes
// to the next runnable one.
std::unique_ptr<Strategy> make_replay(std::vector<Decision> decisions);

// What happened in one run.
struct Execution {
  std::vector<Decision> decisions;
  std::uint64_t steps = 0;
  std::vector<std::string> violations;  // found by the scheduler itself: lost wake-ups, deadlocks, livelocks
  std::vector<std::string> races;       // data races on plain slot fields (S-PUBLISH), the first few
  std::vector<std::string> lost_wakeups;  // sleepers only their timeout woke, with the condition true (F-WAKE)
  std::uint64_t stale_reads = 0;          // loads that read an older store than the newest
  // Futex wakes made while no other thread was in a call that sleeps (SPEC
  // F-WAKE: a waker pays no system call when nobody sleeps), the first few.
  std::vector<std::string> idle_wakes;
  std::uint64_t idle_wake_count = 0;
  std::vector<int> died;                // threads that died
  int stalls = 0;                       // stalls taken
  struct Event {
    int thread = 0;
    std::uint64_t step = 0;
    bool death = false;  // else a stall
  };
  std::vector<Event> events;            // deaths and stalls, in order
  std::vector<std::uint64_t> stalled_ns;  // by thread: virtual time spent stalled
  bool completed = false;               // every thread finished or died
  std::string schedule_text;            // the decisions that switched threads, for a counterexample
};

std::string encode_decisions(const std::vector<Decision>& d);
std::optional<std::vector<Decision>> decode_decisions(const std::string& s);

class Scheduler;

// What a thread body may ask of the scheduler about itself.
class ThreadApi {
 public:
  int id() const { return id_; }
  std::uint32_t pid() const;
  std::uint64_t now() const;   // virtual ns
  std::uint64_t step() const;  // decisions so far: a total order of events
  // Polls without progress: time passes (spin_ns) and others get to run.
  void spin();
  // A plain decision point (a hostile peer's step, for instance).
  void yield();
  // While set, a sleep of this thread that ends by its timeout while nothing
  // else could run, with `condition` true, is a lost wake-up naming `what`.
  void expect_wake(std::function<bool()> condition, std::string what);
  void clear_wake();
  // The thread begins an operation of the scenario (a write, a read, a
  // wait): a futex wake it makes is judged against the sleepers since then.
  void begin_operation();
  // When the state named by this thread's last visit to a named point arose
  // (the time its last store, CAS or read-modify-write before the point
  // ran), or 0 if it never reached the point.
  std::uint64_t point_time(const std::string& point) const;
  bool is_dead(int thread) const;
  bool finished(int thread) const;
  bool tearing_down() const;

 private:
  friend class Scheduler;
  Scheduler* s_ = nullptr;
  int id_ = 0;
};

struct ThreadSpec {
  std::string name;
  bool mortal = false;  // may die (producers); the consumer and hostile peers do not
  std::function<void(ThreadApi&)> body;
  bool hostile = false;  // scribbles on shared memory on purpose: its races are not findings
};

struct SchedulerOptions {
  std::uint64_t max_steps = 200000;      // more: a livelock
  std::uint64_t step_ns = 100;
  std::uint64_t spin_ns = 200'000;       // what one spin() costs in virtual time
  std::uint64_t start_ns = 1'000'000'000'000ULL;
  bool weak_memory = false;  // loads may read older stores (memory_model.hpp)
};

class Scheduler final : public shm::hooks::Interposer {
 public:
  // MEMLINK_EXPLORE_TRACE=1 prints every access and point of every run to stderr.
  explicit Scheduler(SchedulerOptions o = {}) : o_(o), trace_(std::getenv("MEMLINK_EXPLORE_TRACE") != nullptr) {}
  // Runs the threads to the end; `at_end` runs on the calling thread when
  // the run ends, before the teardown (a snapshot of the final state).
  Execution run(std::vector<ThreadSpec> threads, Strategy& strategy, const std::function<void()>& at_end = {});

  // shm::hooks::Interposer
  void on_access(Access kind, const void* address, bool after) noexcept override;
  void on_point(std::string_view name) noexcept override;
  // In teardown time is far in the future and moves a second per reading,
  // so that a wait loop entered during teardown (its deadline computed from
  // a reading) also sees it pass and returns.
  std::uint64_t now_ns() noexcept override { return teardown_ ? kFarFuture + 1'000'000'000ULL * ++teardown_reads_ : now_; }
  std::uint32_t pid() noexcept override;
  bool alive(std::uint32_t pid) noexcept override;
  void sleep(std::chrono::nanoseconds d) noexcept override;
  WaitResult futex_wait(std::string_view key, const void* word, std::uint32_t expected,
                        std::optional<std::chrono::nanoseconds> timeout) noexcept override;
  int futex_wake(std::string_view key, std::uint32_t count) noexcept override;
  std::uint64_t on_load_value(const void* address, std::uint64_t bits, std::memory_order mo,
                              bool newest_only) noexcept override;
  void on_store_value(const void* address, std::uint64_t before, std::uint64_t bits, std::memory_order mo,
                      bool rmw) noexcept override;
  void on_fence(std::memory_order mo) noexcept override;
  void on_plain(const void* address, bool write) noexcept override;

  static constexpr std::uint32_t kFirstPid = 70001;

 private:
  friend class ThreadApi;
  enum class State : std::uint8_t { Runnable, Blocked, Finished, Dead };
  struct Thread {
    std::string name;
    bool mortal = false;
    bool hostile = false;
    std::function<void(ThreadApi&)> body;
    ThreadApi api;
    std::binary_semaphore go{0};
    State state = State::Runnable;
    bool spinning = false;
    bool stalled = false;  // Blocked in a stall (no key) until `deadline` or a resume
    // Blocked: in a futex wait on `key` (empty: a plain sleep) until `deadline`.
    std::string key;
    std::uint64_t deadline = 0;
    WaitResult result = WaitResult::Woken;
    std::function<bool()> wake_condition;
    std::uint64_t episode_end = 0;      // the step its last expect_wake ... clear_wake ended at
    std::uint64_t episode_end_ns = 0;   // and the virtual time
    std::uint64_t operation_begin = 0;  // the step its current operation began at (begin_operation)
    std::string wake_what;
    std::map<std::string, std::uint64_t, std::less<>> points;  // named point -> when its state arose
    std::uint64_t last_effect_ns = 0;  // when this thread's last store, CAS or RMW ran
    // Races with this thread's reads, until it validates them: a reader that
    // reads a slot optimistically and then fails its CAS used nothing it read
    // (a replaced daemon's look at a slot that was recycled meanwhile); one
    // whose CAS succeeds did.
    std::vector<std::string> unvalidated_races;
    bool cas_failed = false;  // its last CAS failed (on_load_value with newest_only)
    std::thread os;
  };
  static constexpr std::uint64_t kFarFuture = 1ULL << 62;

  void decide(bool named_point, bool before_effect = false);  // a decision by the running thread
  // decide's steps: the point the running thread decides from, and what a
  // Kill (it dies, another runs) or a Stall (it is off its CPU a while) does.
  DecisionPoint current_point(bool named_point, bool before_effect);
  void kill_current();
  void stall_current(const Decision& d);
  int apply_run(const Decision& d);              // the thread a Run decision names, resumed if stalled
  DecisionPoint point_for(int current) const;
  void block_current(std::string key, std::optional<std::uint64_t> deadline);
  void switch_to(int next);                      // hand the baton over; returns when we run again
  bool fire_timeouts(bool quiescent);            // wakes the earliest sleepers
  void note_idle_wake(std::string_view key);     // a wake with nobody in a call that sleeps (F-WAKE)
  void wake_expired();                           // wakes sleepers whose deadline has passed
  void end_run(const std::string& violation = {});
  void thread_main(int id);
  std::vector<int> runnable() const;
  std::vector<bool> spinning() const;
  Thread& cur() { return *threads_[static_cast<std::size_t>(current_)]; }
  bool modelling() const;  // the running thread's accesses are the model's (not teardown, probes, ...)

  SchedulerOptions o_;
  bool trace_ = false;
  MemoryModel memory_;
  std::vector<std::unique_ptr<Thread>> threads_;
  Strategy* strategy_ = nullptr;
  Execution exec_;
  int current_ = -1;
  std::uint64_t now_ = 0;
  std::uint64_t start_ns_ = 0;
  int suppress_ = 0;          // > 0: hooks pass through (the scheduler's own probes)
  bool teardown_ = false;
  std::uint64_t teardown_reads_ = 0;
  bool ended_ = false;
  std::binary_semaphore end_{0};
};

}  // namespace memlink::conformance::explore
