// The weak-memory half of the exploration: which value each atomic load of
// the reference may read under the C++ memory model, and which plain slot
// field accesses race. The scheduler (scheduler.hpp) runs one thread at a
// time, so real memory always holds the newest store of every word; this
// model remembers the recent stores of each word and lets a relaxed or
// acquire load read an older one where happens-before, coherence and the
// seq_cst fences do not hide it, the approach of loom and CDSChecker:
//
//   writer: x=1 (relaxed) ─┐            reader: r = x (relaxed)
//                          │ no happens-before, no fence between them
//   memory: x = 1 (newest) └──▶ r may be 0 or 1: the scheduler chooses (a
//                               "stale" decision, bounded like preemptions)
//
// What a load may read, newest first, is every store of the word that is
//  1. not older than the newest store that happens-before the load, or that
//     an SC fence orders before it (C++20 [atomics.order] p4: a store that
//     happens-before seq_cst fence X, X before fence Y in S, Y
//     happens-before the load), or that any load happening-before it read
//     (read-read coherence);
//  2. overwritten recently: a store hides its predecessor from everybody
//     once kVisibilityWindowNs of virtual time have passed (a store buffer
//     drains; [intro.progress] "within a reasonable amount of time"), so a
//     thread that sleeps or spins sees the present.
// seq_cst loads and every read-modify-write (and a failed CAS) read the
// newest store. Release stores carry their thread's clock, read-modify-
// writes continue a release sequence, relaxed loads acquire at a later
// acquire fence. A syscall (futex wait or wake, sleep), a wake-up, and a
// thread learning that another died or ended synchronise fully.
//
// Where this model is stricter than C++ (it never invents a behaviour the
// C++ model forbids, so a check built on it never fails correct code):
// a load reads only stores that already ran (no load buffering: LB's
// r1 = r2 = 1 is not produced); seq_cst loads always read the newest store;
// a failed CAS reads the newest value; the window above.
//
// Plain fields (SharedField: the slot header that S-PUBLISH publishes) are
// race-checked with vector clocks (FastTrack): a write and another access of
// the same field with no happens-before between them is a data race, which
// C++ makes undefined and a weakly ordered CPU turns into a torn or stale
// header. Threads marked hostile (a peer that scribbles on purpose) are not
// race-checked: their races are the scenario.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

namespace memlink::conformance::explore {

inline constexpr int kMaxThreads = 16;
inline constexpr std::uint64_t kVisibilityWindowNs = 20'000;

struct VectorClock {
  std::array<std::uint32_t, kMaxThreads> c{};
  void join(const VectorClock& o) {
    for (int i = 0; i < kMaxThreads; ++i) c[i] = std::max(c[i], o.c[i]);
  }
  bool covers(int thread, std::uint32_t epoch) const {
    return thread < 0 || c[static_cast<std::size_t>(thread)] >= epoch;
  }
};

// The memory a thread has seen: `hb` is happens-before (races); `vis` adds
// what seq_cst fences made visible (the lower bound of a load, rule 1).
// `sc_seen`: every seq_cst store up to this position of S (their total
// order) is visible too (a seq_cst store before fence Y in S is seen by a
// load that Y happens-before).
struct Knowledge {
  VectorClock hb, vis;
  std::uint64_t sc_seen = 0;
  void join(const Knowledge& o) {
    hb.join(o.hb);
    vis.join(o.vis);
    sc_seen = std::max(sc_seen, o.sc_seen);
  }
};

// Where a word lives, the same for every mapping of one file (daemon and
// client map a segment at different addresses): (inode, offset in the
// file), or (0, address) for memory that is not a file's.
struct WordKey {
  std::uint64_t object = 0, offset = 0;
  bool operator==(const WordKey&) const = default;
};
struct WordKeyHash {
  std::size_t operator()(const WordKey& k) const noexcept { return k.object * 0x9E3779B97F4A7C15ULL ^ k.offset; }
};
// Resolves addresses through /proc/self/maps, cached per run.
class AddressSpace {
 public:
  void forget() { ranges_.clear(); }
  WordKey key(const void* address);

 private:
  struct Range {
    std::uint64_t end = 0, inode = 0, file_offset = 0;
  };
  bool reload();
  std::map<std::uint64_t, Range> ranges_;  // start -> range (file-backed ones only)
};

class MemoryModel {
 public:
  // At the start of a run: everything stored before it is visible to all.
  void reset(int threads, std::vector<bool> hostile);

  // A load by `thread` that read `newest` on real memory. Returns how many
  // older stores it may read instead (0: only the newest); call
  // complete_load with the one chosen (0 newest, k the k-th older).
  int stale_options(int thread, const void* address, std::uint64_t newest, std::memory_order mo, std::uint64_t now_ns);
  // Returns the value read.
  std::uint64_t complete_load(int thread, const void* address, int older, std::memory_order mo);
  // A store, or the store half of a read-modify-write (which read the newest
  // value first, with `mo`'s acquire half), after it ran: memory held
  // `before` and now holds `value`.
  void store(int thread, const void* address, std::uint64_t before, std::uint64_t value, std::memory_order mo, bool rmw,
             std::uint64_t now_ns);
  void fence(int thread, std::memory_order mo);
  // `to` learns everything `from` did (a futex wake-up, a death observed).
  void synchronise(int from, int to);
  // A syscall: a full fence both ways.
  void syscall(int thread);
  // A plain field access; the access it races with, if any.
  struct Race {
    int other = -1;
    bool other_wrote = false;
  };
  std::optional<Race> plain(int thread, const void* address, bool write);

  std::uint64_t stale_reads() const { return stale_reads_; }
  std::uint64_t races_checked() const { return races_checked_; }

 private:
  struct Store {
    std::uint64_t value = 0;
    int thread = -1;  // -1: before the run (visible to all)
    std::uint32_t epoch = 0;
    Knowledge released;  // what an acquire of this store learns
    std::uint64_t index = 0, at_ns = 0;
    std::uint64_t sc_position = 0;  // a seq_cst store: its place in S
  };
  struct Observation {
    std::uint32_t epoch = 0;  // the observer's own clock then
    std::uint64_t index = 0;  // the newest store it had seen
  };
  struct Word {
    std::vector<Store> stores;  // the newest kHistory, oldest first
    std::array<std::vector<Observation>, kMaxThreads> seen;
    std::uint64_t candidates_from = 0;  // set by stale_options for complete_load
  };
  struct PlainField {
    int writer = -1;
    std::uint32_t write_epoch = 0;
    std::array<std::uint32_t, kMaxThreads> reads{};
  };
  struct ThreadState {
    Knowledge now;            // hb[t] is the thread's own epoch
    Knowledge acquire_fence;  // what an acquire fence would add (relaxed loads so far)
    Knowledge release_fence;  // what a relaxed store carries after a release fence
  };
  static constexpr std::size_t kHistory = 8;

  Word& word(const void* address, std::uint64_t newest);
  std::uint64_t lower_bound(int thread, const Word& w) const;
  void observe(int thread, Word& w, std::uint64_t index);
  void tick(int thread) {
    ++threads_[static_cast<std::size_t>(thread)].now.hb.c[static_cast<std::size_t>(thread)],
        ++threads_[static_cast<std::size_t>(thread)].now.vis.c[static_cast<std::size_t>(thread)];
  }

  AddressSpace space_;
  std::unordered_map<WordKey, Word, WordKeyHash> words_;
  std::unordered_map<WordKey, PlainField, WordKeyHash> fields_;
  std::vector<ThreadState> threads_;
  std::vector<bool> hostile_;
  Knowledge sc_;                // every store ordered before the last seq_cst fence (rule 1)
  std::uint64_t sc_count_ = 0;  // seq_cst stores and fences so far: positions in S
  std::uint64_t stale_reads_ = 0, races_checked_ = 0;
};

}  // namespace memlink::conformance::explore
