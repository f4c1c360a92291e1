// The concurrency check: random operations from several threads, and from a
// second process, on one segment; invocation and response times recorded;
// each history checked for linearizability (linearizability.hpp).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "linearizability.hpp"
#include "reference_ops.hpp"
#include "timeline.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/transport.hpp"
#include "suite.hpp"

namespace memlink::conformance {
namespace {

using shm::platform::monotonic_ns;

constexpr int kProducers = 4;
constexpr int kWritesPerProducer = 16;
constexpr std::size_t kMaxEmptyReads = 40;  // recorded; more are run but not recorded (sound)
constexpr std::uint32_t kSlotSize = 16;

std::vector<std::byte> id_bytes(std::uint64_t id) {
  std::vector<std::byte> b(8);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::byte>(id >> (8 * i));
  return b;
}

std::uint64_t id_of(const std::vector<std::byte>& b, std::uint32_t len) {
  std::uint64_t id = 0;
  for (std::uint32_t i = 0; i < 8 && i < len; ++i) id |= std::uint64_t(std::to_integer<std::uint8_t>(b[i])) << (8 * i);
  return id;
}

// What went wrong where nothing should: a write or read on a healthy ring
// that failed with anything but Full or Empty.
struct Unexpected {
  std::mutex mu;
  std::string first;
  void note(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    if (first.empty()) first = what;
  }
};

// One producer's run: random priorities, Full recorded as a failed write.
std::vector<HistoryOp> produce(shm::Client& client, int process, std::uint64_t seed, Unexpected* unexpected) {
  std::mt19937_64 rng(seed);
  std::vector<HistoryOp> ops;
  for (int k = 0; k < kWritesPerProducer; ++k) {
    HistoryOp op;
    op.kind = HistoryOp::Kind::Write;
    op.process = process;
    op.priority = static_cast<shm::Priority>(rng() % 3);
    op.id = (std::uint64_t(process) << 32) | std::uint64_t(k);
    const auto data = id_bytes(op.id);
    op.invoke_ns = monotonic_ns();
    auto r = client.write(op.priority, data);
    op.response_ns = monotonic_ns();
    op.ok = r.ok();
    if (!r.ok() && r.code() != shm::ErrorCode::Full) {
      // Reported by the history check; in the forked child only the count shows it.
      if (unexpected != nullptr) unexpected->note("p" + std::to_string(process) + " write: " + r.error().message());
      break;
    }
    ops.push_back(op);
    if (rng() % 4 == 0) std::this_thread::yield();
  }
  return ops;
}

// The consumer: reads until every producer is done and the rings are drained.
std::vector<HistoryOp> consume(shm::Daemon& daemon, const std::function<bool()>& producers_done,
                               Unexpected& unexpected) {
  std::vector<HistoryOp> ops;
  std::vector<std::byte> buf(kSlotSize);
  std::size_t empties = 0;
  for (;;) {
    const bool finished = producers_done();
    HistoryOp op;
    op.kind = HistoryOp::Kind::Read;
    op.process = 0;
    op.invoke_ns = monotonic_ns();
    auto m = daemon.read(buf);
    op.response_ns = monotonic_ns();
    if (m) {
      op.ok = true;
      op.priority = m->priority;
      op.id = id_of(buf, m->length);
      op.sequence = m->sequence;
      ops.push_back(op);
      continue;
    }
    if (m.code() != shm::ErrorCode::Empty) unexpected.note("read: " + m.error().message());
    if (finished) break;  // drained after the last write returned
    if (++empties <= kMaxEmptyReads) ops.push_back(op);
    std::this_thread::yield();
  }
  return ops;
}

struct Segment {
  std::string path;
  std::optional<shm::Daemon> daemon;
  Segment() = default;
  Segment(Segment&&) = default;
  ~Segment() {
    daemon.reset();
    if (!path.empty()) reference_ops::remove_segment_files(path);
  }
};

Segment make_segment(int n) {
  static std::atomic<int> counter{0};
  Segment s;
  s.path = "/dev/shm/memlink-lin-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  (void)shm::MmapSegment::remove(s.path);
  shm::DaemonOptions o;
  o.slot_size = kSlotSize;
  const std::size_t stride = shm::slot_stride_for(kSlotSize);
  const std::size_t size = 4096 + 2 * (3 * shm::RING_HEADER_SIZE + shm::calculate_slot_distribution(n).total() * stride);
  auto d = shm::Daemon::create(s.path, size, 1, o);
  if (d) s.daemon.emplace(std::move(d.value()));
  return s;
}

std::array<std::uint32_t, shm::kPriorityCount> capacities(int n) {
  const auto d = shm::calculate_slot_distribution(n);
  return {d.critical, d.high, d.low};
}

std::optional<std::vector<HistoryOp>> threads_history(std::uint64_t seed, int n, Unexpected& unexpected) {
  Segment s = make_segment(n);
  if (!s.daemon) return std::nullopt;
  auto client = shm::Client::connect(s.path, 1);
  if (!client) return std::nullopt;
  std::vector<std::vector<HistoryOp>> per(kProducers);
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kProducers; ++t)
    threads.emplace_back([&, t] {
      per[t] = produce(*client, t + 1, seed * 31 + t, &unexpected);
      done.fetch_add(1);
    });
  auto history = consume(*s.daemon, [&] { return done.load() == kProducers; }, unexpected);
  for (auto& t : threads) t.join();
  for (auto& p : per) history.insert(history.end(), p.begin(), p.end());
  return history;
}

// The producers run in a forked child; their records come back over a pipe.
// CLOCK_MONOTONIC is system-wide, so the two processes' times compare.
std::optional<std::vector<HistoryOp>> process_history(std::uint64_t seed, int n, Unexpected& unexpected) {
  Segment s = make_segment(n);
  if (!s.daemon) return std::nullopt;
  int fds[2];
  if (::pipe(fds) != 0) return std::nullopt;
  const pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    ::close(fds[0]);
    auto client = shm::Client::connect(s.path, 1);
    if (!client) ::_exit(2);
    std::vector<std::vector<HistoryOp>> per(kProducers - 1);
    std::vector<std::thread> threads;
    for (int t = 0; t < kProducers - 1; ++t)
      threads.emplace_back([&, t] { per[t] = produce(*client, 100 + t, seed * 77 + t, nullptr); });
    for (auto& t : threads) t.join();
    for (auto& p : per)
      for (const HistoryOp& op : p)
        if (::write(fds[1], &op, sizeof op) != static_cast<ssize_t>(sizeof op)) ::_exit(3);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::atomic<bool> child_done{false};
  std::vector<HistoryOp> child_ops;
  std::thread collector([&] {
    HistoryOp op;
    while (::read(fds[0], &op, sizeof op) == static_cast<ssize_t>(sizeof op)) child_ops.push_back(op);
    int status = 0;
    ::waitpid(pid, &status, 0);
    child_done.store(true);
  });
  auto history = consume(*s.daemon, [&] { return child_done.load(); }, unexpected);
  collector.join();
  ::close(fds[0]);
  history.insert(history.end(), child_ops.begin(), child_ops.end());
  return history;
}

}  // namespace

std::string sequence_violation(const std::vector<HistoryOp>& history) {
  std::map<std::uint64_t, std::uint64_t> writer_of;  // id -> process
  std::map<std::uint64_t, std::uint64_t> invoked;    // id -> invoke time
  for (const auto& op : history)
    if (op.kind == HistoryOp::Kind::Write && op.ok) {
      writer_of[op.id] = static_cast<std::uint64_t>(op.process);
      invoked[op.id] = op.invoke_ns;
    }
  // T-SEQ numbers a message by its position in its ring: unique per ring,
  // growing per writer and ring.
  using Ring = shm::Priority;
  std::map<std::pair<Ring, std::uint64_t>, std::uint64_t> owner;  // (ring, sequence) -> id
  std::map<std::pair<std::uint64_t, Ring>, std::vector<std::pair<std::uint64_t, std::uint64_t>>> per_writer;  // invoke, sequence
  for (const auto& op : history) {
    if (op.kind != HistoryOp::Kind::Read || !op.ok) continue;
    auto [it, fresh] = owner.emplace(std::pair{op.priority, op.sequence}, op.id);
    if (!fresh && it->second != op.id)
      return "messages #" + std::to_string(it->second) + " and #" + std::to_string(op.id) + " carry the same sequence number " +
             std::to_string(op.sequence) + " in the " + std::string(shm::to_string(op.priority)) + " ring";
    if (writer_of.count(op.id)) per_writer[{writer_of[op.id], op.priority}].push_back({invoked[op.id], op.sequence});
  }
  for (auto& [writer_ring, seqs] : per_writer) {
    const std::uint64_t writer = writer_ring.first;
    std::sort(seqs.begin(), seqs.end());
    for (std::size_t i = 1; i < seqs.size(); ++i)
      if (seqs[i].second <= seqs[i - 1].second)
        return "writer p" + std::to_string(writer) + " wrote sequence " + std::to_string(seqs[i - 1].second) + " and then " +
               std::to_string(seqs[i].second);
  }
  return "";
}

namespace {

// ThreadSanitizer sees no other process's accesses, and a forked child of
// a threaded parent may not start threads under it: thread histories only.
#if defined(__SANITIZE_THREAD__)
constexpr bool kUnderTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kUnderTsan = true;
#else
constexpr bool kUnderTsan = false;
#endif
#else
constexpr bool kUnderTsan = false;
#endif

}  // namespace

CheckResult run_linearizability(const Params& params) {
  CheckResult result;
  result.name = "linearizability";
  const int histories = params.depth == Depth::Quick ? 60 : params.depth == Depth::Default ? 1000 : 10000;
  std::mt19937_64 rng(params.seed ^ 0x5EED);
  std::size_t ops = 0, full = 0, empty = 0, largest = 0;
  for (int i = 0; i < histories; ++i) {
    const std::uint64_t seed = rng();
    // 1-3 slots per direction: capacities of 1 to 2 per priority, so that
    // producers meet a full or nearly full ring (the claim/release edge)
    // on most writes.
    const int n = 1 + static_cast<int>(seed % 3);
    const bool two_processes = i % 2 == 1 && !kUnderTsan;
    Unexpected unexpected;
    auto history = two_processes ? process_history(seed, n, unexpected) : threads_history(seed, n, unexpected);
    if (!history) {
      result.failure = Failure{"", "could not set up a concurrent run (segment or fork failed)", {}, ""};
      return result;
    }
    const auto cap = capacities(n);
    for (const char* c : {"R-CLAIM", "R-ROLES", "R-FIFO", "R-ORDER", "R-CAPACITY", "R-VISIBLE", "S-PUBLISH", "T-SEQ"})
      record_clause(c);
    ++result.cases;
    ops += history->size();
    largest = std::max(largest, history->size());
    for (const auto& op : *history) {
      full += op.kind == HistoryOp::Kind::Write && !op.ok;
      empty += op.kind == HistoryOp::Kind::Read && !op.ok;
    }
    result.notes = std::to_string(result.cases) + " histories, " + std::to_string(ops) + " operations (" +
                   std::to_string(full) + " Full, " + std::to_string(empty) + " Empty), largest " +
                   std::to_string(largest);
    const std::string seq = sequence_violation(*history);
    const auto lin = check_linearizable(*history, cap);
    const std::string where = "history " + std::to_string(i) + (two_processes ? " (two processes)" : " (threads)");
    const HistoryVerdict verdict = judge_history(*history, lin, where, unexpected.first, seq);
    if (!verdict.clause.empty()) {
      Failure f{verdict.clause, verdict.description, verdict.lines, ""};
      f.replay = "scripts/conformance --only linearizability --seed " + std::to_string(params.seed) +
                 " (interleavings are the scheduler's: the same seed gives the same operations, not the same timing; "
                 "the exploration check replays schedules exactly)";
      Timeline picture = history_timeline(*history, lin, "memlink-conformance: linearizability, " + where, f.clause, f.replay);
      picture.explanation = f.description;
      result.picture_html = render_timeline_html(picture);
      result.failure = std::move(f);
      return result;
    }
  }
  return result;
}

}  // namespace memlink::conformance
