#include "scheduler.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>

#include "memlink/shm/platform.hpp"

namespace memlink::conformance::explore {
namespace {

thread_local int t_self = -1;  // this OS thread's index in the run, -1 outside

const char* access_name(Access a) {
  switch (a) {
    case Access::Load: return "load";
    case Access::Store: return "store";
    case Access::Exchange: return "exchange";
    case Access::Cas: return "CAS";
    case Access::Rmw: return "rmw";
    case Access::PlainRead: return "plain-read";
    case Access::PlainWrite: return "plain-write";
  }
  return "access";
}

// ------------------------------------------------------------------ PCT

class Pct final : public Strategy {
 public:
  Pct(std::uint64_t seed, int depth, std::uint64_t k) : rng_(seed), depth_(std::max(1, depth)), k_(std::max<std::uint64_t>(k, 16)) {}

  void begin(int n) override {
    priority_.resize(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) priority_[static_cast<std::size_t>(i)] = depth_ + i;
    std::shuffle(priority_.begin(), priority_.end(), rng_);
    lowest_ = 0;
    change_.clear();
    std::uniform_int_distribution<std::uint64_t> step(1, k_);
    for (int i = 1; i < depth_; ++i) change_.push_back(step(rng_));
    std::sort(change_.begin(), change_.end());
    next_change_ = 0;
    death_step_ = rng_() % 2 == 0 ? step(rng_) : ~0ULL;
    timeouts_.clear();
    if (rng_() % 3 == 0)
      for (int i = 0, m = 1 + static_cast<int>(rng_() % 3); i < m; ++i) timeouts_.push_back(step(rng_));
    std::sort(timeouts_.begin(), timeouts_.end());
    next_timeout_ = 0;
    patience_ = std::array<int, 4>{1, 2, 4, 16}[rng_() % 4];
    stall_step_ = rng_() % 2 == 0 ? step(rng_) : ~0ULL;
    resume_after_ = rng_() % 2 == 0 ? step(rng_) : ~0ULL;
    stall_kind_ = static_cast<std::uint8_t>(rng_() % kStallKinds);
    resume_step_ = ~0ULL;
    spins_.assign(static_cast<std::size_t>(n), 0);
    stale_budget_ = static_cast<int>(rng_() % 3);
  }

  Decision choose(const DecisionPoint& p) override {
    if (p.stale_options > 0) {  // a load's value: now and then an older store
      if (stale_budget_ > 0 && rng_() % 4 == 0) {
        --stale_budget_;
        return {Decision::Stale, static_cast<std::uint8_t>(1 + rng_() % static_cast<std::uint64_t>(p.stale_options))};
      }
      return {Decision::Run, static_cast<std::uint8_t>(p.current)};
    }
    k_ = std::max(k_, p.step);
    if (p.current >= 0) {
      const auto c = static_cast<std::size_t>(p.current);
      if (p.current_mortal && p.at_named_point && p.step >= death_step_) {
        death_step_ = ~0ULL;
        return {Decision::Kill, static_cast<std::uint8_t>(p.current)};
      }
      if (p.before_effect && p.step >= stall_step_) {
        stall_step_ = ~0ULL;
        stalled_ = p.current;
        if (resume_after_ != ~0ULL) resume_step_ = p.step + resume_after_;
        return {Decision::Stall, stall_kind_};
      }
      while (next_change_ < change_.size() && p.step >= change_[next_change_]) {
        priority_[c] = --lowest_;  // a PCT change point: the running thread drops below all
        ++next_change_;
      }
      // A thread that polls gives way after `patience` polls (not counting
      // the steps of each poll): it waits for others, who must get to run.
      if (p.current_spinning && ++spins_[c] >= patience_) {
        priority_[c] = --lowest_;
        spins_[c] = 0;
      }
    }
    if (p.step >= resume_step_) {
      resume_step_ = ~0ULL;
      if (std::find(p.stalled.begin(), p.stalled.end(), stalled_) != p.stalled.end())
        return {Decision::Run, static_cast<std::uint8_t>(stalled_)};  // the OS gives its CPU back early
    }
    if (p.timeout_pending && next_timeout_ < timeouts_.size() && p.step >= timeouts_[next_timeout_]) {
      ++next_timeout_;
      return {Decision::Timeout, 0};
    }
    int best = p.runnable.front();
    for (int t : p.runnable)
      if (priority_[static_cast<std::size_t>(t)] > priority_[static_cast<std::size_t>(best)]) best = t;
    return {Decision::Run, static_cast<std::uint8_t>(best)};
  }

 private:
  std::mt19937_64 rng_;
  int depth_;
  std::uint64_t k_;
  std::vector<int> priority_;
  int lowest_ = 0;
  std::vector<std::uint64_t> change_, timeouts_;
  std::size_t next_change_ = 0, next_timeout_ = 0;
  std::uint64_t death_step_ = ~0ULL;
  std::uint64_t stall_step_ = ~0ULL, resume_after_ = ~0ULL, resume_step_ = ~0ULL;
  int stalled_ = -1;
  std::uint8_t stall_kind_ = 0;
  int patience_ = 1;
  std::vector<int> spins_;
  int stale_budget_ = 0;
};

// ------------------------------------------------------------ exhaustive

class Exhaustive final : public Strategy {
 public:
  Exhaustive(int preemptions, int deaths, int stalls, int stall_kind, int stale_reads, int focus)
      : bound_(preemptions),
        death_bound_(deaths),
        stall_bound_(stalls),
        stale_bound_(stale_reads),
        stall_kind_(static_cast<std::uint8_t>(stall_kind)),
        focus_(focus) {}

  void begin(int) override {
    pos_ = 0;
    preemptions_ = 0;
    deaths_ = 0;
    stalls_ = 0;
    stales_ = 0;
    gave_way_ = 0;
  }

  Decision choose(const DecisionPoint& p) override {
    if (focus_ >= 0 && p.stale_options == 0) return choose_focused(p);
    std::vector<Decision> options;
    auto run = [](int t) { return Decision{Decision::Run, static_cast<std::uint8_t>(t)}; };
    if (p.stale_options > 0) {  // a load's value: the newest, or (within the bound) each older one
      options.push_back(run(p.current));
      if (stales_ < stale_bound_ && (focus_ < 0 || p.current == focus_))
        for (int k = 1; k <= p.stale_options; ++k) options.push_back({Decision::Stale, static_cast<std::uint8_t>(k)});
      const Decision d = take(options);
      if (d.kind == Decision::Stale) ++stales_;
      return d;
    }
    const bool cur_runnable =
        p.current >= 0 && std::find(p.runnable.begin(), p.runnable.end(), p.current) != p.runnable.end();
    if (!cur_runnable) {
      for (int t : p.runnable) options.push_back(run(t));
    } else if (p.current_spinning) {
      // A spinning thread gives way for free to any thread that is not
      // spinning too; when all spin, to the next one round-robin (no choice:
      // spinners wait for time to pass, not for each other). Spinning on
      // while others could run costs a preemption.
      for (int t : p.runnable)
        if (t != p.current && !p.spinning[static_cast<std::size_t>(t)]) options.push_back(run(t));
      if (options.empty()) options.push_back(run(next_round_robin(p)));
      if (preemptions_ < bound_ && options.front().thread != p.current) options.push_back(run(p.current));
    } else {
      options.push_back(run(p.current));
      if (preemptions_ < bound_)
        for (int t : p.runnable)
          if (t != p.current) options.push_back(run(t));
    }
    const std::size_t schedules = options.size();  // the choices among runnable threads
    if (cur_runnable && p.at_named_point && p.current_mortal && deaths_ < death_bound_)
      options.push_back({Decision::Kill, static_cast<std::uint8_t>(p.current)});
    if (cur_runnable && p.before_effect && stalls_ < stall_bound_)
      options.push_back({Decision::Stall, stall_kind_});
    if (preemptions_ < bound_)  // the OS gives a stalled thread its CPU back early
      for (int t : p.stalled) options.push_back(run(t));
    const Decision d = take(options);
    if (d.kind == Decision::Kill) ++deaths_;
    if (d.kind == Decision::Stall) ++stalls_;
    const bool resumes = d.kind == Decision::Run && std::find(p.stalled.begin(), p.stalled.end(), d.thread) != p.stalled.end();
    if (resumes || (cur_runnable && d.kind == Decision::Run &&
                    ((!p.current_spinning && d.thread != p.current) ||
                     (p.current_spinning && d.thread == p.current && schedules > 1))))
      ++preemptions_;
    return d;
  }

  // The focused search (make_exhaustive, `focus`): the threads run in the
  // fair order, except that the focus thread may stall before any of its
  // stores, CASes or read-modify-writes and the preemption budget only
  // resumes it early, at any later decision of the others.
  Decision choose_focused(const DecisionPoint& p) {
    std::vector<Decision> options;
    const bool cur_runnable =
        p.current >= 0 && std::find(p.runnable.begin(), p.runnable.end(), p.current) != p.runnable.end();
    if (cur_runnable && p.current_hostile && gave_way_ == 0) {  // it goes on, or gives way once to the focus
      options.push_back({Decision::Run, static_cast<std::uint8_t>(p.current)});
      if (std::find(p.runnable.begin(), p.runnable.end(), focus_) != p.runnable.end())
        options.push_back({Decision::Run, static_cast<std::uint8_t>(focus_)});
    } else if (cur_runnable && !p.current_spinning) {
      options.push_back({Decision::Run, static_cast<std::uint8_t>(p.current)});
    } else if (!p.runnable.empty()) {  // blocked, ended or polling: the next runnable one
      options.push_back({Decision::Run, static_cast<std::uint8_t>(next_round_robin(p))});
    }
    if (cur_runnable && p.current == focus_ && p.before_effect && stalls_ < stall_bound_)
      options.push_back({Decision::Stall, stall_kind_});
    const bool stalled = std::find(p.stalled.begin(), p.stalled.end(), focus_) != p.stalled.end();
    if (stalled && preemptions_ < bound_) options.push_back({Decision::Run, static_cast<std::uint8_t>(focus_)});
    if (options.empty()) return {Decision::Run, static_cast<std::uint8_t>(p.current < 0 ? 0 : p.current)};
    const Decision d = take(options);
    if (d.kind == Decision::Stall) ++stalls_;
    if (stalled && d.kind == Decision::Run && d.thread == focus_) ++preemptions_;
    if (cur_runnable && p.current_hostile && d.kind == Decision::Run && d.thread != p.current) ++gave_way_;
    return d;
  }

  // The runnable thread after the current one, round-robin (the first, if
  // none comes after it).
  static int next_round_robin(const DecisionPoint& p) {
    for (int t : p.runnable)
      if (t > p.current) return t;
    return p.runnable.front();
  }

  // The option this run takes at the next frame of the depth-first search.
  Decision take(const std::vector<Decision>& options) {
    if (pos_ == stack_.size()) stack_.push_back({options.size(), 0});
    Frame& f = stack_[pos_++];
    if (f.options != options.size()) {
      std::fprintf(stderr,
                   "exploration: the program is not deterministic under the scheduler (decision %zu had "
                   "%zu options, now %zu)\n",
                   pos_ - 1, f.options, options.size());
      nondeterministic_ = true;
      f.index = 0;
    }
    return options[std::min(f.index, options.size() - 1)];
  }

  bool next() override {
    if (nondeterministic_) return false;
    stack_.resize(pos_);
    while (!stack_.empty() && stack_.back().index + 1 >= stack_.back().options) stack_.pop_back();
    if (stack_.empty()) return false;
    ++stack_.back().index;
    return true;
  }

 private:
  struct Frame {
    std::size_t options = 0;
    std::size_t index = 0;
  };
  int bound_, death_bound_, stall_bound_, stale_bound_;
  std::uint8_t stall_kind_;
  int focus_ = -1;
  int gave_way_ = 0;  // the focused search: times a hostile peer gave way to the focus thread
  std::vector<Frame> stack_;
  std::size_t pos_ = 0;
  int preemptions_ = 0, deaths_ = 0, stalls_ = 0, stales_ = 0;
  bool nondeterministic_ = false;
};

// ------------------------------------------------------------------ replay

class Replay final : public Strategy {
 public:
  explicit Replay(std::vector<Decision> d) : d_(std::move(d)) {}
  void begin(int) override {
    pos_ = 0;
    diverged_.reset();
  }
  Decision choose(const DecisionPoint& p) override {
    if (pos_ < d_.size()) {
      if (fits(d_[pos_], p)) return d_[pos_++];
      diverged_ = pos_;
      pos_ = d_.size();  // what follows was recorded for another run
    }
    // A faithful replay ends exactly where its record does (the record is
    // every decision of the run, never shrunk): one more is a divergence too.
    if (!diverged_) diverged_ = d_.size();
    if (p.stale_options > 0) return {Decision::Run, static_cast<std::uint8_t>(p.current)};  // the newest value
    // Off the record, run fairly, so that a diverged replay cannot invent a
    // livelock by running a polling thread forever: the current thread
    // keeps its CPU until it polls, then the next runnable one gets it.
    const auto& r = p.runnable;
    const auto cur = p.current >= 0 ? std::find(r.begin(), r.end(), p.current) : r.end();
    if (cur == r.end()) return {Decision::Run, static_cast<std::uint8_t>(r.front())};
    if (!p.current_spinning) return {Decision::Run, static_cast<std::uint8_t>(*cur)};
    return {Decision::Run, static_cast<std::uint8_t>(std::next(cur) == r.end() ? r.front() : *std::next(cur))};
  }
  bool next() override { return false; }
  std::optional<std::size_t> diverged_at() const override { return diverged_; }

 private:
  // Whether a recorded decision is one the strategies could have made here.
  static bool fits(const Decision& d, const DecisionPoint& p) {
    const auto has = [](const std::vector<int>& v, int t) { return std::find(v.begin(), v.end(), t) != v.end(); };
    const bool cur_runnable = p.current >= 0 && has(p.runnable, p.current);
    if (p.stale_options > 0)
      return (d.kind == Decision::Run && d.thread == p.current) ||
             (d.kind == Decision::Stale && d.thread >= 1 && d.thread <= p.stale_options);
    switch (d.kind) {
      case Decision::Run: return has(p.runnable, d.thread) || has(p.stalled, d.thread);
      case Decision::Kill: return cur_runnable && p.at_named_point && p.current_mortal && d.thread == p.current;
      case Decision::Stall: return cur_runnable && p.before_effect && d.thread < kStallKinds;
      case Decision::Timeout: return p.timeout_pending;
      case Decision::Stale: return false;
    }
    return false;
  }

  std::vector<Decision> d_;
  std::size_t pos_ = 0;
  std::optional<std::size_t> diverged_;
};

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

std::unique_ptr<Strategy> make_pct(std::uint64_t seed, int depth, std::uint64_t steps_estimate) {
  return std::make_unique<Pct>(seed, depth, steps_estimate);
}
std::unique_ptr<Strategy> make_exhaustive(int preemptions, int deaths, int stalls, int stall_kind, int stale_reads,
                                          int focus) {
  return std::make_unique<Exhaustive>(preemptions, deaths, stalls, std::clamp(stall_kind, 0, kStallKinds - 1),
                                      stale_reads, focus);
}
std::unique_ptr<Strategy> make_replay(std::vector<Decision> decisions) {
  return std::make_unique<Replay>(std::move(decisions));
}

// One character per decision: 2 bits of kind, 4 of thread (16 threads at
// most). A Stale(k) decision is written as a Timeout with thread k >= 1 (a
// Timeout names no thread: its thread is always 0).
std::string encode_decisions(const std::vector<Decision>& d) {
  std::string s;
  s.reserve(d.size());
  for (const Decision& x : d) {
    const int kind = x.kind == Decision::Stale ? static_cast<int>(Decision::Timeout) : static_cast<int>(x.kind);
    const int thread = x.kind == Decision::Timeout ? 0 : x.thread & 15;
    s += kB64[(kind << 4) | thread];
  }
  return s;
}

std::optional<std::vector<Decision>> decode_decisions(const std::string& s) {
  std::vector<Decision> d;
  for (char c : s) {
    const char* at = std::find(kB64, kB64 + 64, c);
    if (at == kB64 + 64) return std::nullopt;
    const int v = static_cast<int>(at - kB64);
    const auto kind = static_cast<Decision::Kind>(v >> 4);
    const auto thread = static_cast<std::uint8_t>(v & 15);
    d.push_back({kind == Decision::Timeout && thread > 0 ? Decision::Stale : kind, thread});
  }
  return d;
}

// ------------------------------------------------------------------ ThreadApi

std::uint32_t ThreadApi::pid() const { return Scheduler::kFirstPid + static_cast<std::uint32_t>(id_); }
std::uint64_t ThreadApi::now() const { return s_->now_ns(); }
std::uint64_t ThreadApi::step() const { return s_->exec_.steps; }
// A thread that learns another ended has seen all it did (the scenario
// waits for it through the scheduler, not through shared memory).
bool ThreadApi::is_dead(int t) const {
  const bool dead = s_->threads_[static_cast<std::size_t>(t)]->state == Scheduler::State::Dead;
  if (dead) s_->memory_.synchronise(t, id_);
  return dead;
}
bool ThreadApi::finished(int t) const {
  const bool done = s_->threads_[static_cast<std::size_t>(t)]->state == Scheduler::State::Finished;
  if (done) s_->memory_.synchronise(t, id_);
  return done;
}
bool ThreadApi::tearing_down() const { return s_->teardown_; }

void ThreadApi::spin() {
  if (s_->teardown_) return;
  s_->now_ += s_->o_.spin_ns;
  s_->cur().spinning = true;
  s_->decide(false);
  if (!s_->teardown_) s_->cur().spinning = false;
}

void ThreadApi::yield() { s_->decide(false); }

void ThreadApi::expect_wake(std::function<bool()> condition, std::string what) {
  auto& t = *s_->threads_[static_cast<std::size_t>(id_)];
  t.wake_condition = std::move(condition);
  t.wake_what = std::move(what);
}

void ThreadApi::clear_wake() {
  auto& t = *s_->threads_[static_cast<std::size_t>(id_)];
  t.wake_condition = nullptr;
  t.episode_end = s_->exec_.steps;
  t.episode_end_ns = s_->now_;
}

void ThreadApi::begin_operation() { s_->threads_[static_cast<std::size_t>(id_)]->operation_begin = s_->exec_.steps; }

std::uint64_t ThreadApi::point_time(const std::string& point) const {
  const auto& pts = s_->threads_[static_cast<std::size_t>(id_)]->points;
  auto it = pts.find(point);
  return it == pts.end() ? 0 : it->second;
}

// ------------------------------------------------------------------ Scheduler

std::vector<bool> Scheduler::spinning() const {
  std::vector<bool> s(threads_.size());
  for (std::size_t i = 0; i < threads_.size(); ++i) s[i] = threads_[i]->spinning;
  return s;
}

DecisionPoint Scheduler::point_for(int current) const {
  DecisionPoint p;
  p.step = exec_.steps;
  p.current = current;
  p.runnable = runnable();
  p.spinning = spinning();
  for (std::size_t i = 0; i < threads_.size(); ++i)
    if (threads_[i]->stalled && threads_[i]->state == State::Blocked) p.stalled.push_back(static_cast<int>(i));
  return p;
}

int Scheduler::apply_run(const Decision& d) {
  Thread& t = *threads_[d.thread];
  if (t.stalled && t.state == State::Blocked) {
    t.state = State::Runnable;
    if (exec_.schedule_text.size() < 20000)
      exec_.schedule_text += "  step " + std::to_string(exec_.steps) + ": " + t.name + "'s stall ends early\n";
  }
  return d.thread;
}

std::vector<int> Scheduler::runnable() const {
  std::vector<int> r;
  for (std::size_t i = 0; i < threads_.size(); ++i)
    if (threads_[i]->state == State::Runnable) r.push_back(static_cast<int>(i));
  return r;
}

Execution Scheduler::run(std::vector<ThreadSpec> specs, Strategy& strategy, const std::function<void()>& at_end) {
  threads_.clear();
  exec_ = Execution{};
  exec_.stalled_ns.assign(specs.size(), 0);
  strategy_ = &strategy;
  // Virtual time starts ahead of the real clock that stamped whatever the
  // scenario set up before the run (a daemon's first heartbeat): to the
  // code under test those stamps are old, never from the future.
  now_ = std::max<std::uint64_t>(o_.start_ns, shm::platform::monotonic_ns() + 10000000000ULL);
  start_ns_ = now_;
  teardown_ = ended_ = false;
  teardown_reads_ = 0;
  suppress_ = 0;
  current_ = -1;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    auto t = std::make_unique<Thread>();
    t->name = specs[i].name;
    t->mortal = specs[i].mortal;
    t->hostile = specs[i].hostile;
    t->body = std::move(specs[i].body);
    t->api.s_ = this;
    t->api.id_ = static_cast<int>(i);
    threads_.push_back(std::move(t));
  }
  std::vector<bool> hostile;
  for (const auto& sp : specs) hostile.push_back(sp.hostile);
  memory_.reset(static_cast<int>(threads_.size()), std::move(hostile));
  for (std::size_t i = 0; i < threads_.size(); ++i)
    threads_[i]->os = std::thread([this, i] { thread_main(static_cast<int>(i)); });
  strategy.begin(static_cast<int>(threads_.size()));
  const Decision d = strategy.choose(point_for(-1));
  exec_.decisions.push_back(d);
  current_ = d.thread;
  threads_[current_]->go.release();
  end_.acquire();
  exec_.stale_reads = memory_.stale_reads();
  if (at_end) at_end();
  // Teardown: every thread that has not ended runs on alone, with the hooks
  // passing through and time far in the future, so that it leaves every
  // loop; one at a time, so they never run concurrently.
  teardown_ = true;
  for (auto& t : threads_) {
    t->go.release();
    t->os.join();
  }
  strategy_ = nullptr;
  return exec_;
}

void Scheduler::thread_main(int id) {
  t_self = id;
  shm::hooks::set_interposer(this);
  Thread& t = *threads_[static_cast<std::size_t>(id)];
  t.go.acquire();
  if (!teardown_) {
    t.body(t.api);
    if (!teardown_ && t.state == State::Runnable) {
      t.state = State::Finished;
      const int next = [&] {
        for (;;) {
          if (!runnable().empty()) {
            const Decision d = strategy_->choose(point_for(-1));
            exec_.decisions.push_back(d);
            return apply_run(d);
          }
          if (!fire_timeouts(true)) return -1;
        }
      }();
      if (next < 0) {
        end_run();
      } else {
        current_ = next;
        threads_[static_cast<std::size_t>(next)]->go.release();
      }
    }
  }
  shm::hooks::set_interposer(nullptr);
  t_self = -1;
}

void Scheduler::end_run(const std::string& violation) {
  if (ended_) return;
  ended_ = true;
  if (!violation.empty()) exec_.violations.push_back(violation);
  bool all_done = true;
  std::string stuck;
  for (auto& t : threads_) {
    all_done &= t->state == State::Finished || t->state == State::Dead;
    if (t->state == State::Blocked) stuck += (stuck.empty() ? "" : ", ") + t->name;
  }
  if (!all_done && violation.empty())
    exec_.violations.push_back("deadlock: " + stuck + " sleep with no timeout and nothing can wake them");
  exec_.completed = all_done && exec_.violations.empty();
  end_.release();
}

// Sleepers whose deadline the clock has passed (others kept it moving) wake
// up, timed out; not a lost wake-up: they were not the only ones left.
void Scheduler::wake_expired() {
  for (auto& t : threads_)
    if (t->state == State::Blocked && t->deadline <= now_) {
      t->state = State::Runnable;
      t->result = WaitResult::TimedOut;
    }
}

bool Scheduler::fire_timeouts(bool quiescent) {
  // An early timeout (not quiescent) ends a sleep, not a stall: a stall
  // that ends early is a Run decision that resumes it, and moves no clock.
  std::uint64_t earliest = kFarFuture;
  for (auto& t : threads_)
    if (t->state == State::Blocked && (quiescent || !t->stalled)) earliest = std::min(earliest, t->deadline);
  if (earliest >= kFarFuture) return false;
  now_ = std::max(now_, earliest);
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    Thread& t = *threads_[i];
    if (t.state != State::Blocked || t.deadline > now_ || (!quiescent && t.stalled)) continue;
    t.state = State::Runnable;
    t.result = WaitResult::TimedOut;
    // Not while a thread is stalled: it might have been the waker.
    const bool stall = std::any_of(threads_.begin(), threads_.end(), [](const auto& x) { return x->stalled; });
    if (quiescent && t.wake_condition && exec_.died.empty() && !stall && !t.key.empty()) {
      ++suppress_;
      const bool ready = t.wake_condition();
      --suppress_;
      if (ready)
        exec_.lost_wakeups.push_back(
            "lost wake-up: " + t.name + " slept through " + t.wake_what +
            "; nothing woke it, only its timeout ended the sleep (t=" + std::to_string((now_ - start_ns_) / 1000) +
            " us, step " + std::to_string(exec_.steps) + ")");
    }
    if (exec_.schedule_text.size() < 20000)
      exec_.schedule_text += "  step " + std::to_string(exec_.steps) + ": " + t.name + "'s sleep times out" +
                             (quiescent ? " (every other thread blocked or done)" : " (early)") + "\n";
  }
  return true;
}

void Scheduler::switch_to(int next) {
  const int me = current_;
  if (next == me) return;
  if (exec_.schedule_text.size() < 20000)
    exec_.schedule_text += "  step " + std::to_string(exec_.steps) + ": " +
                           (me >= 0 ? threads_[static_cast<std::size_t>(me)]->name : std::string("-")) + " -> " +
                           threads_[static_cast<std::size_t>(next)]->name + "\n";
  current_ = next;
  threads_[static_cast<std::size_t>(next)]->go.release();
  threads_[static_cast<std::size_t>(me)]->go.acquire();
}

DecisionPoint Scheduler::current_point(bool named_point, bool before_effect) {
  DecisionPoint p = point_for(current_);
  p.current_spinning = cur().spinning;
  p.before_effect = before_effect;
  p.at_named_point = named_point;
  p.current_mortal = cur().mortal;
  p.current_hostile = cur().hostile;
  for (auto& t : threads_) p.timeout_pending |= t->state == State::Blocked && !t->stalled && t->deadline < kFarFuture;
  return p;
}

void Scheduler::kill_current() {
  Thread& me = cur();
  me.state = State::Dead;
  exec_.died.push_back(current_);
  exec_.events.push_back({current_, exec_.steps, true});
  if (exec_.schedule_text.size() < 20000)
    exec_.schedule_text += "  step " + std::to_string(exec_.steps) + ": " + me.name + " dies (kill -9)\n";
  int next = -1;
  for (;;) {
    if (!runnable().empty()) {
      const Decision n = strategy_->choose(point_for(-1));
      exec_.decisions.push_back(n);
      next = apply_run(n);
      break;
    }
    if (!fire_timeouts(true)) break;
  }
  if (next < 0) {
    end_run();
  } else {
    current_ = next;
    threads_[static_cast<std::size_t>(next)]->go.release();
  }
  me.go.acquire();  // a dead thread runs again only in teardown
}

void Scheduler::stall_current(const Decision& d) {
  Thread& me = cur();
  ++exec_.stalls;
  exec_.events.push_back({current_, exec_.steps, false});
  me.stalled = true;
  const std::uint64_t from = now_;
  if (exec_.schedule_text.size() < 20000)
    exec_.schedule_text += "  step " + std::to_string(exec_.steps) + ": " + me.name +
                           " stalls (off its CPU) just before it changes shared memory\n";
  block_current("", now_ + kStallNs[std::min<int>(d.thread, kStallKinds - 1)]);
  me.stalled = false;
  exec_.stalled_ns[static_cast<std::size_t>(t_self)] += now_ - from;
}

void Scheduler::decide(bool named_point, bool before_effect) {
  if (teardown_ || suppress_ > 0 || ended_ || t_self != current_) return;
  ++exec_.steps;
  now_ += o_.step_ns;
  if (exec_.steps > o_.max_steps) {
    end_run("no progress: the run did not end within " + std::to_string(o_.max_steps) +
            " scheduling decisions (a livelock, or a ring that stays stuck)");
    cur().go.acquire();  // parked until teardown
    return;
  }
  wake_expired();
  for (;;) {
    const Decision d = strategy_->choose(current_point(named_point, before_effect));
    exec_.decisions.push_back(d);
    if (d.kind == Decision::Timeout) {
      fire_timeouts(false);
      continue;
    }
    if (d.kind == Decision::Kill) {
      kill_current();
      return;
    }
    if (d.kind == Decision::Stall) {
      stall_current(d);
      return;
    }
    switch_to(apply_run(d));
    return;
  }
}

void Scheduler::block_current(std::string key, std::optional<std::uint64_t> deadline) {
  Thread& me = cur();
  me.state = State::Blocked;
  me.key = std::move(key);
  me.deadline = deadline.value_or(kFarFuture);
  me.result = WaitResult::Woken;
  for (;;) {
    if (!runnable().empty()) {
      const Decision d = strategy_->choose(point_for(-1));
      exec_.decisions.push_back(d);
      apply_run(d);
      if (d.thread == t_self) {
        current_ = t_self;
        return;
      }
      const int me_id = t_self;
      current_ = me_id;  // switch_to hands over from us
      switch_to(d.thread);
      return;
    }
    if (!fire_timeouts(true)) {
      std::string who;
      for (auto& t : threads_)
        if (t->state == State::Blocked) who += (who.empty() ? "" : ", ") + t->name;
      end_run("deadlock: every thread that has not finished sleeps with no timeout (" + who + ")");
      me.go.acquire();
      return;
    }
  }
}

// ------------------------------------------------------------ Interposer

void Scheduler::on_access(Access kind, const void* address, bool after) noexcept {
  if (kind == Access::Cas && after && modelling()) {  // the CAS validates (or discards) what this thread read
    Thread& me = cur();
    if (!me.cas_failed)
      for (auto& r : me.unvalidated_races)
        if (exec_.races.size() < 4) exec_.races.push_back(std::move(r));
    me.unvalidated_races.clear();
    me.cas_failed = false;
  }
  if (trace_ && !teardown_ && t_self == current_ && suppress_ == 0)
    std::fprintf(stderr, "[explore] step %llu t%d %s %s %p\n", static_cast<unsigned long long>(exec_.steps + 1), t_self,
                 after ? "after" : "before", access_name(kind), address);
  decide(false, !after && kind != Access::Load && kind != Access::PlainRead);
  // The access runs as soon as this thread runs again: that is when it
  // happened. A named point (kCrashPoints) marks the state after the last
  // store, CAS or read-modify-write (write.after-claim: the head CAS).
  if (!after && !teardown_ && !ended_ && suppress_ == 0 && t_self == current_ && kind != Access::Load &&
      kind != Access::PlainRead)
    cur().last_effect_ns = now_;
}

void Scheduler::on_point(std::string_view name) noexcept {
  if (teardown_ || suppress_ > 0 || t_self != current_ || ended_) return;
  if (trace_)
    std::fprintf(stderr, "[explore] step %llu t%d point %s\n", static_cast<unsigned long long>(exec_.steps + 1), t_self,
                 std::string(name).c_str());
  cur().points.insert_or_assign(std::string(name), cur().last_effect_ns ? cur().last_effect_ns : now_);
  decide(true);
}

std::uint32_t Scheduler::pid() noexcept { return kFirstPid + static_cast<std::uint32_t>(std::max(0, t_self)); }

bool Scheduler::alive(std::uint32_t pid) noexcept {
  if (pid >= kFirstPid && pid < kFirstPid + threads_.size()) {
    const bool dead = threads_[pid - kFirstPid]->state == State::Dead;
    if (dead && modelling()) memory_.synchronise(static_cast<int>(pid - kFirstPid), t_self);
    return !dead;
  }
  return pid == static_cast<std::uint32_t>(::getpid());
}

void Scheduler::sleep(std::chrono::nanoseconds d) noexcept {
  if (teardown_ || ended_ || t_self != current_) return;
  decide(false);
  if (teardown_ || ended_) return;
  memory_.syscall(t_self);
  block_current("", now_ + static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.count())));
}

WaitResult Scheduler::futex_wait(std::string_view key, const void* word, std::uint32_t expected,
                                 std::optional<std::chrono::nanoseconds> timeout) noexcept {
  if (teardown_ || ended_ || t_self != current_) return WaitResult::TimedOut;
  decide(false);
  if (teardown_ || ended_) return WaitResult::TimedOut;
  // The value check and going to sleep are one step, as in the kernel.
  memory_.syscall(t_self);
  if (static_cast<const std::atomic<std::uint32_t>*>(word)->load(std::memory_order_seq_cst) != expected)
    return WaitResult::ValueChanged;
  std::optional<std::uint64_t> deadline;
  if (timeout) deadline = now_ + static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout->count()));
  block_current(std::string(key), deadline);
  if (teardown_) return WaitResult::TimedOut;
  return cur().result;
}

// SPEC F-WAKE: a waker pays no system call when nobody sleeps. Who may be
// asleep is known without the transport's own count (which is what a leak
// corrupts): a thread between its expect_wake and clear_wake is in a call
// that may sleep (wait, write_blocking), one that died there stays so, and
// a thread blocked on the key sleeps. The waker decides on its load of the
// count, a few steps before its system call, so a sleeper whose call ended
// since the waker's operation began (ThreadApi::begin_operation) still
// justifies it; under weak memory so does one whose unregistering store is
// still within the visibility window (the waker's relaxed load of the
// count may read the registration: memory_model.hpp, rule 2). A wake that
// none of these justifies is a system call for nobody.
void Scheduler::note_idle_wake(std::string_view key) {
  const std::uint64_t since = cur().operation_begin;
  for (const auto& t : threads_)
    if (t.get() != &cur() &&
        (t->wake_condition || t->episode_end >= since || (t->state == State::Blocked && t->key == key) ||
         (o_.weak_memory && t->episode_end_ns + kVisibilityWindowNs >= now_)))
      return;
  if (exec_.idle_wakes.size() < 4)
    exec_.idle_wakes.push_back("step " + std::to_string(exec_.steps) + ": " + cur().name +
                               " made a futex wake system call (" + std::string(key) +
                               ") while no other thread was in a call that sleeps");
  ++exec_.idle_wake_count;
}

int Scheduler::futex_wake(std::string_view key, std::uint32_t count) noexcept {
  if (teardown_ || ended_ || t_self != current_) return 0;
  decide(false);
  if (teardown_ || ended_) return 0;
  memory_.syscall(t_self);
  note_idle_wake(key);
  int woken = 0;
  for (auto& t : threads_) {
    if (woken >= static_cast<int>(count)) break;
    if (t->state == State::Blocked && !t->key.empty() && t->key == key) {
      memory_.synchronise(t_self, static_cast<int>(&t - threads_.data()));
      t->state = State::Runnable;
      t->result = WaitResult::Woken;
      ++woken;
    }
  }
  return woken;
}

// ------------------------------------------------------------ weak memory

bool Scheduler::modelling() const {
  return !teardown_ && !ended_ && suppress_ == 0 && t_self == current_ && t_self >= 0;
}

std::uint64_t Scheduler::on_load_value(const void* address, std::uint64_t bits, std::memory_order mo,
                                       bool newest_only) noexcept {
  if (!modelling()) return bits;
  if (newest_only) cur().cas_failed = true;
  const std::memory_order as = newest_only ? std::memory_order_seq_cst : mo;  // seq_cst: the newest only
  int options = memory_.stale_options(t_self, address, bits, o_.weak_memory ? as : std::memory_order_seq_cst, now_);
  int older = 0;
  if (options > 0) {
    DecisionPoint p = point_for(current_);
    p.stale_options = std::min(options, 15);
    const Decision d = strategy_->choose(p);
    exec_.decisions.push_back(d);
    if (d.kind == Decision::Stale) {
      older = d.thread;
      if (exec_.schedule_text.size() < 20000)
        exec_.schedule_text += "  step " + std::to_string(exec_.steps) + ": " + cur().name + " reads the " +
                               std::to_string(older) +
                               (older == 1   ? "st"
                                : older == 2 ? "nd"
                                             : "th") +
                               " older store of a word (not yet visible to it: weak memory)\n";
    }
  }
  return memory_.complete_load(t_self, address, older, mo);
}

void Scheduler::on_store_value(const void* address, std::uint64_t before, std::uint64_t bits, std::memory_order mo,
                               bool rmw) noexcept {
  if (modelling()) memory_.store(t_self, address, before, bits, mo, rmw, now_);
}

void Scheduler::on_fence(std::memory_order mo) noexcept {
  if (modelling()) memory_.fence(t_self, mo);
}

// A race is a finding once its reader validated what it read (its next CAS
// succeeded); two unordered writes are one at once.
void Scheduler::on_plain(const void* address, bool write) noexcept {
  if (!modelling()) return;
  const auto race = memory_.plain(t_self, address, write);
  if (!race) return;
  std::string text = "data race on a slot header field: " + threads_[static_cast<std::size_t>(race->other)]->name +
                     "'s " + (race->other_wrote ? "write" : "read") + " and " + cur().name + "'s " +
                     (write ? "write" : "read") + " (step " + std::to_string(exec_.steps) +
                     ") are not ordered by happens-before: nothing publishes the field from one to the other, "
                     "so a weakly ordered CPU (or the compiler) may let the reader see a torn or stale value";
  if (write && race->other_wrote) {
    if (exec_.races.size() < 4) exec_.races.push_back(std::move(text));
    return;
  }
  Thread& reader = *threads_[static_cast<std::size_t>(write ? race->other : t_self)];
  if (reader.unvalidated_races.size() < 4) reader.unvalidated_races.push_back(std::move(text));
}

}  // namespace memlink::conformance::explore
