#include "memory_model.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace memlink::conformance::explore {
namespace {

bool acquires(std::memory_order mo) {
  return mo == std::memory_order_acquire || mo == std::memory_order_acq_rel || mo == std::memory_order_seq_cst ||
         mo == std::memory_order_consume;
}
bool releases(std::memory_order mo) {
  return mo == std::memory_order_release || mo == std::memory_order_acq_rel || mo == std::memory_order_seq_cst;
}

}  // namespace

// ------------------------------------------------------------ AddressSpace

bool AddressSpace::reload() {
  ranges_.clear();
  std::FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) return false;
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    std::uint64_t start = 0, end = 0, offset = 0, inode = 0;
    unsigned major = 0, minor = 0;
    char perms[8] = {};
    if (std::sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64, &start, &end, perms, &offset,
                    &major, &minor, &inode) == 7)
      ranges_[start] = Range{end, inode == 0 ? 0 : (inode << 16) ^ (std::uint64_t{major} << 8) ^ minor, offset};
  }
  std::fclose(f);
  return true;
}

WordKey AddressSpace::key(const void* address) {
  const auto a = reinterpret_cast<std::uint64_t>(address);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto it = ranges_.upper_bound(a);
    if (it != ranges_.begin() && (--it, a < it->second.end)) {
      if (it->second.inode == 0) return {0, a};
      return {it->second.inode, it->second.file_offset + (a - it->first)};
    }
    if (attempt == 0 && !reload()) break;
  }
  return {0, a};
}

// ------------------------------------------------------------ MemoryModel

void MemoryModel::reset(int threads, std::vector<bool> hostile) {
  space_.forget();
  words_.clear();
  fields_.clear();
  threads_.assign(static_cast<std::size_t>(std::min(threads, kMaxThreads)), ThreadState{});
  for (int t = 0; t < static_cast<int>(threads_.size()); ++t) tick(t);
  hostile_ = std::move(hostile);
  hostile_.resize(threads_.size(), false);
  sc_ = Knowledge{};
  sc_count_ = 0;
}

// The word's history; a value that real memory holds but the history does
// not (written before the run, or by a thread outside it) is a store that
// everybody sees, and hides all that came before.
MemoryModel::Word& MemoryModel::word(const void* address, std::uint64_t newest) {
  Word& w = words_[space_.key(address)];
  if (w.stores.empty() || w.stores.back().value != newest) {
    const std::uint64_t index = w.stores.empty() ? 1 : w.stores.back().index + 1;
    w.stores.assign(1, Store{newest, -1, 0, Knowledge{}, index, 0, 0});
    for (auto& s : w.seen) s.clear();
  }
  return w;
}

// Rule 1: the oldest store this thread may still read (its index).
std::uint64_t MemoryModel::lower_bound(int thread, const Word& w) const {
  const Knowledge& k = threads_[static_cast<std::size_t>(thread)].now;
  std::uint64_t bound = w.stores.front().index;
  for (auto it = w.stores.rbegin(); it != w.stores.rend(); ++it)
    if (k.vis.covers(it->thread, it->epoch) || (it->sc_position != 0 && it->sc_position <= k.sc_seen)) {
      bound = it->index;
      break;
    }
  for (int u = 0; u < static_cast<int>(threads_.size()); ++u) {
    const auto& seen = w.seen[static_cast<std::size_t>(u)];
    for (auto it = seen.rbegin(); it != seen.rend(); ++it)
      if (k.vis.covers(u, it->epoch)) {
        bound = std::max(bound, it->index);
        break;
      }
  }
  return bound;
}

void MemoryModel::observe(int thread, Word& w, std::uint64_t index) {
  auto& seen = w.seen[static_cast<std::size_t>(thread)];
  if (!seen.empty() && seen.back().index >= index) return;
  seen.push_back({threads_[static_cast<std::size_t>(thread)].now.hb.c[static_cast<std::size_t>(thread)], index});
  if (seen.size() > 4 * kHistory) seen.erase(seen.begin(), seen.begin() + static_cast<std::ptrdiff_t>(kHistory));
}

int MemoryModel::stale_options(int thread, const void* address, std::uint64_t newest, std::memory_order mo,
                               std::uint64_t now_ns) {
  Word& w = word(address, newest);
  w.candidates_from = w.stores.back().index;
  if (thread >= static_cast<int>(threads_.size()) || mo == std::memory_order_seq_cst) return 0;
  const std::uint64_t bound = lower_bound(thread, w);
  // Rule 2: store i is still readable while its successor is recent.
  std::uint64_t from = w.stores.back().index;
  for (std::size_t i = w.stores.size() - 1; i > 0; --i) {
    const Store& older = w.stores[i - 1];
    if (older.index < bound || w.stores[i].at_ns + kVisibilityWindowNs < now_ns) break;
    from = older.index;
  }
  w.candidates_from = from;
  return static_cast<int>(w.stores.back().index - from);
}

std::uint64_t MemoryModel::complete_load(int thread, const void* address, int older, std::memory_order mo) {
  Word& w = words_[space_.key(address)];
  const std::size_t span = static_cast<std::size_t>(w.stores.back().index - w.candidates_from);
  const std::size_t back = static_cast<std::size_t>(std::clamp<int>(older, 0, static_cast<int>(span)));
  const Store& s = w.stores[w.stores.size() - 1 - back];
  if (back > 0) ++stale_reads_;
  if (thread < static_cast<int>(threads_.size())) {
    ThreadState& t = threads_[static_cast<std::size_t>(thread)];
    (acquires(mo) ? t.now : t.acquire_fence).join(s.released);
    observe(thread, w, s.index);
  }
  return s.value;
}

void MemoryModel::store(int thread, const void* address, std::uint64_t before, std::uint64_t value,
                        std::memory_order mo, bool rmw, std::uint64_t now_ns) {
  if (thread >= static_cast<int>(threads_.size())) return;
  ThreadState& t = threads_[static_cast<std::size_t>(thread)];
  Word& w = word(address, before);
  Knowledge released = releases(mo) ? t.now : t.release_fence;
  if (rmw) {  // it read the newest store: acquire, and continue its release sequence
    const Store& prior = w.stores.back();
    (acquires(mo) ? t.now : t.acquire_fence).join(prior.released);
    released.join(prior.released);
    if (releases(mo)) released.join(t.now);
  }
  Store s{value, thread, t.now.hb.c[static_cast<std::size_t>(thread)], released, w.stores.back().index + 1, now_ns, 0};
  if (mo == std::memory_order_seq_cst) s.sc_position = ++sc_count_;
  w.stores.push_back(s);
  if (w.stores.size() > kHistory) w.stores.erase(w.stores.begin());
  observe(thread, w, s.index);
  tick(thread);
}

void MemoryModel::fence(int thread, std::memory_order mo) {
  if (thread >= static_cast<int>(threads_.size())) return;
  ThreadState& t = threads_[static_cast<std::size_t>(thread)];
  if (acquires(mo)) t.now.join(t.acquire_fence);
  if (mo == std::memory_order_seq_cst) {
    sc_.join(t.now);
    t.now.vis.join(sc_.vis);
    t.now.sc_seen = std::max(t.now.sc_seen, sc_.sc_seen = ++sc_count_);
  }
  if (releases(mo)) {
    t.release_fence = t.now;
    tick(thread);
  }
}

void MemoryModel::synchronise(int from, int to) {
  if (from == to || from >= static_cast<int>(threads_.size()) || to >= static_cast<int>(threads_.size())) return;
  threads_[static_cast<std::size_t>(to)].now.join(threads_[static_cast<std::size_t>(from)].now);
}

void MemoryModel::syscall(int thread) {
  fence(thread, std::memory_order_seq_cst);
  if (thread < static_cast<int>(threads_.size())) {  // and every seq_cst store so far
    Knowledge& k = threads_[static_cast<std::size_t>(thread)].now;
    k.sc_seen = std::max(k.sc_seen, sc_count_);
  }
}

std::optional<MemoryModel::Race> MemoryModel::plain(int thread, const void* address, bool write) {
  if (thread >= static_cast<int>(threads_.size()) || hostile_[static_cast<std::size_t>(thread)]) return std::nullopt;
  ++races_checked_;
  PlainField& f = fields_[space_.key(address)];
  const VectorClock& hb = threads_[static_cast<std::size_t>(thread)].now.hb;
  std::optional<Race> race;
  if (f.writer >= 0 && f.writer != thread && !hb.covers(f.writer, f.write_epoch)) race = Race{f.writer, true};
  if (write) {
    for (int u = 0; u < static_cast<int>(threads_.size()) && !race; ++u)
      if (u != thread && f.reads[static_cast<std::size_t>(u)] != 0 &&
          !hb.covers(u, f.reads[static_cast<std::size_t>(u)]))
        race = Race{u, false};
    f.writer = thread;
    f.write_epoch = hb.c[static_cast<std::size_t>(thread)];
    f.reads.fill(0);
  } else {
    f.reads[static_cast<std::size_t>(thread)] = hb.c[static_cast<std::size_t>(thread)];
  }
  return race;
}

}  // namespace memlink::conformance::explore
