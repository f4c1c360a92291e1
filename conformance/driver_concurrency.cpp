// Concurrency through a driver (DRIVER.md): writers in client processes of
// their own and a reader in the daemon's, every request timed on the
// suite's clock; each history checked for linearizability against the
// sequential spec (linearizability.hpp). And hostile reads: a peer (the
// suite, through the SPEC layout) flips bytes of slots while the driver's
// reader reads; nothing may be delivered that was not written (V-ONCE).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "driver_cluster.hpp"
#include "rc_runner.hpp"
#include "linearizability.hpp"
#include "memlink/shm/layout.hpp"
#include "memlink/shm/priority.hpp"
#include "memlink/shm/slot.hpp"
#include "timeline.hpp"

namespace memlink::conformance {
namespace {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;

constexpr int kWriters = 3;
constexpr int kWritesPerWriter = 10;
constexpr std::size_t kMaxEmptyReads = 40;
constexpr std::uint32_t kSlotSize = 16;

std::size_t segment_size_for(int n) {
  const std::size_t stride = shm::slot_stride_for(kSlotSize);
  return 4096 + 2 * (3 * shm::RING_HEADER_SIZE + shm::calculate_slot_distribution(n).total() * stride);
}

std::array<std::uint32_t, shm::kPriorityCount> capacities_of(const Reply& created, int n) {
  const auto d = shm::calculate_slot_distribution(n);
  std::array<std::uint32_t, shm::kPriorityCount> cap{d.critical, d.high, d.low};
  if (created.body.contains("capacity"))  // the driver's own (D-CREATE), if it says
    for (std::size_t p = 0; p < shm::kPriorityCount; ++p) cap[p] = created.body["capacity"].at(p).get<std::uint32_t>();
  return cap;
}

struct Run {
  std::vector<HistoryOp> ops;
  std::string unexpected;  // an error where only Full or Empty may come
};

// One writer process: writes with random priorities, one request at a time.
std::vector<HistoryOp> write_history(DriverProcess& p, int process, std::uint64_t seed, bool priorities,
                                     std::string& unexpected) {
  std::mt19937_64 rng(seed);
  std::vector<HistoryOp> ops;
  for (int k = 0; k < kWritesPerWriter; ++k) {
    HistoryOp op;
    op.kind = HistoryOp::Kind::Write;
    op.process = process;
    op.priority = priorities ? static_cast<shm::Priority>(rng() % 3) : shm::Priority::Low;
    op.id = (std::uint64_t(process) << 32) | std::uint64_t(k);
    const Reply r = p.call({{"op", "write"}, {"priority", static_cast<int>(op.priority)},
                            {"data", driver::to_hex(message_payload(op.id, 8 + rng() % (kSlotSize - 7)))}});
    op.invoke_ns = r.invoke_ns;
    op.response_ns = r.response_ns;
    op.ok = r.ok();
    if (!r.ok() && r.error().code != shm::ErrorCode::Full) {
      unexpected = p.role() + " write: " + r.error().message();
      break;
    }
    ops.push_back(op);
  }
  return ops;
}

// The daemon reads until the writers are done and its rings are empty.
std::vector<HistoryOp> read_history(DriverProcess& p, const std::atomic<int>& writers_done, std::string& unexpected) {
  std::vector<HistoryOp> ops;
  std::size_t empty_recorded = 0;
  for (;;) {
    const bool finished = writers_done.load() == kWriters;
    const Reply r = p.call({{"op", "read"}});
    HistoryOp op;
    op.kind = HistoryOp::Kind::Read;
    op.process = 0;
    op.invoke_ns = r.invoke_ns;
    op.response_ns = r.response_ns;
    if (r.ok()) {
      const auto data = driver::from_hex(r.body.value("data", std::string()));
      const auto id = data ? message_id(*data) : std::nullopt;
      if (!id) {
        unexpected = "the daemon delivered a payload no writer wrote: " + r.body.value("data", std::string());
        return ops;
      }
      op.ok = true;
      op.id = *id;
      op.priority = static_cast<shm::Priority>(r.body.at("priority").get<int>());
      op.sequence = r.body.value("sequence", std::uint64_t{0});
      ops.push_back(op);
      continue;
    }
    if (r.error().code != shm::ErrorCode::Empty) {
      unexpected = "daemon read: " + r.error().message();
      return ops;
    }
    if (empty_recorded++ < kMaxEmptyReads) ops.push_back(op);  // leaving out a failed read is sound
    if (finished) return ops;
  }
}

}  // namespace

CheckResult run_driver_linearizability(const Params& params) {
  CheckResult result;
  result.name = "linearizability";
  const int histories = depth_budget(params, 5, 40, 400);
  std::mt19937_64 rng(params.seed ^ 0x5EED);
  std::size_t total_ops = 0, full = 0;
  for (int i = 0; i < histories; ++i) {
    const std::uint64_t seed = rng();
    const int n = 1 + static_cast<int>(seed % 3);
    Cluster::Options o;
    o.segment_size = segment_size_for(n);
    o.slot_size = kSlotSize;
    o.heartbeat_timeout_ms = 60000;
    o.daemon_timeout_ms = 60000;
    Cluster c(params, "lin", o);
    const Reply created = c.start_daemon(c.daemon);
    if (!created.ok()) {
      result.failure = Failure{"G-FIT", "[G-FIT] the driver could not create a segment of " + std::to_string(o.segment_size) +
                                            " bytes, slot size 16: " + created.error().message(),
                               c.steps(), driver_replay(params, "linearizability")};
      return result;
    }
    try {
      for (int w = 1; w <= kWriters; ++w) c.add_client("writer " + std::to_string(w));
    } catch (const ScenarioFailure& f) {
      result.failure = failure_of(f, c.steps(), driver_replay(params, "linearizability"));
      return result;
    }
    std::vector<std::vector<HistoryOp>> per(kWriters + 1);
    std::vector<std::string> unexpected(kWriters + 1);
    std::atomic<int> done{0};
    std::vector<std::thread> threads;
    std::exception_ptr thrown;
    std::mutex thrown_mu;
    auto guarded = [&](auto body) {
      try {
        body();
      } catch (...) {
        std::lock_guard<std::mutex> lock(thrown_mu);
        if (!thrown) thrown = std::current_exception();
      }
    };
    for (int w = 0; w < kWriters; ++w)
      threads.emplace_back([&, w] {
        guarded([&] { per[w + 1] = write_history(*c.clients[w], w + 1, seed + w, params.claims("priorities"), unexpected[w + 1]); });
        done.fetch_add(1);
      });
    guarded([&] { per[0] = read_history(*c.daemon, done, unexpected[0]); });
    for (auto& t : threads) t.join();
    if (thrown) std::rethrow_exception(thrown);  // a driver that hung or died: DriverFailure

    std::vector<HistoryOp> history;
    std::string odd;
    for (std::size_t k = 0; k < per.size(); ++k) {
      history.insert(history.end(), per[k].begin(), per[k].end());
      if (odd.empty()) odd = unexpected[k];
    }
    for (const auto& op : history) full += op.kind == HistoryOp::Kind::Write && !op.ok;
    for (const char* clause : {"R-CLAIM", "R-ROLES", "R-FIFO", "R-ORDER", "R-CAPACITY", "R-VISIBLE", "S-PUBLISH"})
      record_clause(clause);
    if (params.claims("sequences")) record_clause("T-SEQ");
    ++result.cases;
    total_ops += history.size();
    result.notes = std::to_string(result.cases) + " histories of " + std::to_string(kWriters) +
                   " writer processes and a reader process, " + std::to_string(total_ops) + " operations (" +
                   std::to_string(full) + " Full)";
    const std::string seq = params.claims("sequences") ? sequence_violation(history) : "";
    const auto lin = check_linearizable(history, capacities_of(created, n));
    const HistoryVerdict verdict = judge_history(history, lin, "history " + std::to_string(i) + " (driver processes)", odd, seq);
    if (verdict.clause.empty()) continue;
    Failure f{verdict.clause, verdict.description, verdict.lines, ""};
    f.replay = driver_replay(params, "linearizability") +
               " (the same seed gives the same operations, not the same timing)";
    Timeline picture = history_timeline(history, lin, "memlink-conformance: linearizability through driver " + params.driver,
                                        f.clause, f.replay);
    picture.explanation = f.description;
    result.picture_html = render_timeline_html(picture);
    result.failure = std::move(f);
    return result;
  }
  return result;
}

// --------------------------------------------------------------------------
// Hostile reads (V-ONCE, V-SLOT): while a client writes and the daemon reads
// through the driver, the suite, mapping the segment as SPEC.md lays it out,
// keeps flipping bytes of the c2d slots' length, checksum, priority and
// position fields and payloads, and putting them back. A reader that loads
// a field twice (validates one value, uses another) delivers bytes nobody
// wrote; one that validates a private copy drops the message or delivers it
// intact. Every delivered message must be exactly one that was written.

namespace {

class Flipper {
 public:
  Flipper(const std::string& path, std::uint64_t seed) : rng_(seed) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    struct stat st {};
    if (fd_ >= 0 && ::fstat(fd_, &st) == 0 && st.st_size > 0) {
      size_ = static_cast<std::size_t>(st.st_size);
      void* m = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
      if (m != MAP_FAILED) base_ = static_cast<std::byte*>(m);
    }
  }
  ~Flipper() {
    stop();
    if (base_ != nullptr) ::munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool mapped() const { return base_ != nullptr; }
  std::byte* base() const { return base_; }

  // Flips until stop(): each flip lasts a few microseconds, then the byte
  // is put back (if nobody changed it meanwhile).
  void start(const shm::Geometry& g) {
    thread_ = std::thread([this, g] {
      const std::uint32_t stride = g.slot_stride;
      // Offsets within a slot a hostile peer may change (SPEC S-LAYOUT,
      // layout 2): length 16..19, checksum 20..23, priority 24, position
      // 32..39, payload 64... (Not the word: a forged word is a denial of
      // service the trust model allows, SPEC 9b, and makes writes fail.)
      const std::uint32_t fields[] = {16, 17, 18, 20, 21, 22, 23, 24, 32, 33};
      while (!stop_.load(std::memory_order_relaxed)) {
        const auto p = static_cast<shm::Priority>(rng_() % 3);
        const std::uint32_t count = g.capacity(p);
        if (count == 0) continue;
        const std::size_t slot = g.offset(shm::Direction::ClientToDaemon, p) + shm::RING_HEADER_SIZE +
                                 static_cast<std::size_t>(rng_() % count) * stride;
        const std::size_t at = slot + (rng_() % 2 == 0 ? fields[rng_() % std::size(fields)]
                                                       : shm::SLOT_HEADER_SIZE + rng_() % g.slot_size);
        if (at >= size_) continue;
        auto* byte = reinterpret_cast<std::atomic<std::uint8_t>*>(base_ + at);
        const std::uint8_t was = byte->load(std::memory_order_relaxed);
        const std::uint8_t flipped = was ^ static_cast<std::uint8_t>(1u << (rng_() % 8));
        std::uint8_t expected = was;
        if (!byte->compare_exchange_strong(expected, flipped, std::memory_order_relaxed)) continue;
        for (int spin = static_cast<int>(rng_() % 2000); spin > 0; --spin) std::atomic_signal_fence(std::memory_order_seq_cst);
        expected = flipped;
        byte->compare_exchange_strong(expected, was, std::memory_order_relaxed);
        ++flips_;
      }
    });
  }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t flips() const { return flips_; }

 private:
  int fd_ = -1;
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  std::mt19937_64 rng_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::uint64_t flips_ = 0;
};

}  // namespace

namespace {

// SPEC R-POSITIONS: only a claimed position becomes Ready, so a reader
// that meets Ready at its tail may take it without reading head, but when
// that slot fails V-SLOT it must not move its tail past head: a Ready word
// a peer forged at the unclaimed head (over a slot whose header is from an
// older lap) is dropped in place, and the next real message of that ring
// is delivered. A reader that skips it as it skips a claimed corrupt slot
// leaves tail > head, and the ring's writes and reads fail from then on.
void forge_ready_at_head(Cluster& c, DriverProcess& writer, const shm::Geometry& g, std::byte* base) {
  for (int k = 0; k < 64; ++k) {  // drain what the flipping left
    const Reply r = c.daemon->call({{"op", "read"}});
    if (!r.ok() && r.error().code == shm::ErrorCode::Empty) break;
  }
  std::uint64_t id = 1'000'000;
  for (shm::Priority p : shm::kAllPriorities) {
    const std::uint32_t count = g.capacity(p);
    if (count == 0) continue;
    std::byte* ring = base + g.offset(shm::Direction::ClientToDaemon, p);
    auto* head = reinterpret_cast<std::atomic<std::uint64_t>*>(ring + 64);  // SPEC R-LAYOUT
    auto* tail = reinterpret_cast<std::atomic<std::uint64_t>*>(ring + 128);
    const std::uint64_t at = head->load();
    if (tail->load() != at) continue;  // not drained (a slot the flipping left held): the head is not the tail
    std::byte* slot = ring + shm::RING_HEADER_SIZE + static_cast<std::size_t>(at % count) * g.slot_stride;
    // An older lap's position, so the forged slot fails V-SLOT's position check.
    reinterpret_cast<std::atomic<std::uint64_t>*>(slot + 32)->store(at + count);
    const std::uint64_t lap = (at / count) & shm::kGenerationMask;
    reinterpret_cast<std::atomic<std::uint64_t>*>(slot)->store(
        shm::slot_word(shm::SlotState::Ready, 0, static_cast<std::uint32_t>(lap)));  // SPEC S-WORD
    const Reply forged = c.daemon->call({{"op", "read"}});
    if (forged.ok())
      scenario_fail("V-SLOT", "the reader delivered a Ready slot forged at the unclaimed head of ring " +
                                  std::string(shm::to_string(p)) + " (its position field names another lap)");
    const std::vector<std::byte> payload = message_payload(id, 16);
    const Reply w = writer.call({{"op", "write"}, {"priority", static_cast<int>(p)}, {"data", driver::to_hex(payload)}});
    if (!w.ok())
      scenario_fail("R-POSITIONS", "after a Ready word was forged at the unclaimed head of ring " +
                                       std::string(shm::to_string(p)) + " and read, a write failed with " +
                                       w.error().message() + " (did the reader move its tail past head?)");
    Reply r = c.daemon->call({{"op", "read"}});
    for (int k = 0; k < 4 && !r.ok() && r.error().code == shm::ErrorCode::Empty; ++k) r = c.daemon->call({{"op", "read"}});
    const auto data = r.ok() ? driver::from_hex(r.body.value("data", std::string())) : std::nullopt;
    if (!data || message_id(*data) != std::optional<std::uint64_t>(id))
      scenario_fail("R-POSITIONS", "after a Ready word was forged at the unclaimed head of ring " +
                                       std::string(shm::to_string(p)) + ", the next message written there was not read back (" +
                                       (r.ok() ? "other bytes" : r.error().message()) + ")");
    record_clause("R-POSITIONS");
    record_clause("V-SLOT");
    ++id;
  }
}

}  // namespace

CheckResult run_driver_hostile(const Params& params) {
  CheckResult result;
  result.name = "hostile-reads";
  const int messages = depth_budget(params, 300, 3000, 30000);
  Cluster::Options o;
  o.segment_size = 16 * 1024;
  o.slot_size = 64;
  o.heartbeat_timeout_ms = 60000;
  o.daemon_timeout_ms = 60000;
  Cluster c(params, "hostile", o);
  const std::string replay = driver_replay(params, "hostile-reads");
  std::uint64_t delivered = 0, dropped = 0, full = 0;
  try {
    if (!c.start_daemon(c.daemon).ok()) scenario_fail("G-FIT", "the driver could not create a 16 KiB segment");
    DriverProcess& writer = c.add_client("writer");
    const auto geometry = shm::compute_geometry(o.segment_size, o.slot_size);
    if (!geometry) scenario_fail("G-FIT", "no SPEC geometry for a 16 KiB segment");
    Flipper flipper(c.path(), params.seed);
    if (!flipper.mapped()) scenario_fail("M-NAME", "the segment file " + c.path() + " could not be mapped (spec_layout)");
    flipper.start(*geometry);
    std::mt19937_64 rng(params.seed);
    std::map<std::uint64_t, bool> written;  // id -> delivered
    for (int i = 0; i < messages; ++i) {
      const std::uint64_t id = static_cast<std::uint64_t>(i);
      const Reply w = writer.call({{"op", "write"}, {"priority", static_cast<int>(rng() % 3)},
                                   {"data", driver::to_hex(message_payload(id, 8 + rng() % 57))}});
      if (w.ok()) written[id] = false;
      else if (w.error().code == shm::ErrorCode::Full) ++full;
      else if (w.error().code != shm::ErrorCode::CorruptSegment)
        scenario_fail("V-SLOT", "a write failed under a hostile peer with " + w.error().message());
      for (int k = 0; k < 2; ++k) {  // read as fast as it writes, and catch up
        const Reply r = c.daemon->call({{"op", "read"}});
        if (!r.ok()) {
          if (r.error().code == shm::ErrorCode::CorruptSegment) ++dropped;
          else if (r.error().code != shm::ErrorCode::Empty)
            scenario_fail("V-SLOT", "a read failed with " + r.error().message() + " (only Empty or CorruptSegment may come)");
          if (r.error().code == shm::ErrorCode::Empty) break;
          continue;
        }
        const auto data = driver::from_hex(r.body.value("data", std::string()));
        const auto got = data ? message_id(*data) : std::nullopt;
        record_clause("V-ONCE");
        record_clause("V-SLOT");
        const std::uint64_t id = got.value_or(~0ULL);
        if (!got || !written.count(id))
          scenario_fail("V-ONCE", "the reader delivered " + std::to_string(data ? data->size() : 0) +
                                      " bytes that no writer wrote, while a peer changed slot fields during reads: " +
                                      "it used a value other than the one it validated (" +
                                      r.body.value("data", std::string()).substr(0, 64) + "...)");
        if (written[id]) scenario_fail("V-ONCE", "message " + std::to_string(id) + " was delivered twice");
        written[id] = true;
        ++delivered;
      }
    }
    flipper.stop();
    forge_ready_at_head(c, writer, *geometry, flipper.base());
    result.notes = std::to_string(messages) + " writes (" + std::to_string(full) + " Full), " +
                   std::to_string(delivered) + " delivered intact, " + std::to_string(dropped) +
                   " dropped as corrupt, " + std::to_string(flipper.flips()) +
                   " byte flips; then a Ready word forged at each ring's unclaimed head";
  } catch (const ScenarioFailure& f) {
    result.failure = failure_of(f, c.steps(), replay);
  }
  result.cases = static_cast<int>(delivered);
  return result;
}

}  // namespace memlink::conformance
