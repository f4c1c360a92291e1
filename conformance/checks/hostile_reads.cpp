// Hostile reads (V-ONCE, V-SLOT), through the driver protocol, for a
// transport with the SPEC layout: while a client writes and the daemon
// reads, the suite, mapping the segment as SPEC.md lays it out, keeps
// flipping bytes of the c2d slots' length, checksum, priority and position
// fields and payloads, and putting them back. A reader that loads a field
// twice (validates one value, uses another) delivers bytes nobody wrote; one
// that validates a private copy drops the message or delivers it intact.
// Every delivered message must be exactly one that was written. Then a
// Ready word forged at each ring's unclaimed head (R-POSITIONS).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "driver_cluster.hpp"
#include "memlink/shm/layout.hpp"
#include "memlink/shm/priority.hpp"
#include "memlink/shm/slot.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {
namespace {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;

}  // namespace

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
        for (int spin = static_cast<int>(rng_() % 2000); spin > 0; --spin)
          std::atomic_signal_fence(std::memory_order_seq_cst);
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
      scenario_fail(ClauseId::V_SLOT, "the reader delivered a Ready slot forged at the unclaimed head of ring " +
                                          std::string(shm::to_string(p)) + " (its position field names another lap)");
    const std::vector<std::byte> payload = message_payload(id, 16);
    const Reply w =
        writer.call({{"op", "write"}, {"priority", static_cast<int>(p)}, {"data", driver::to_hex(payload)}});
    if (!w.ok())
      scenario_fail(ClauseId::R_POSITIONS, "after a Ready word was forged at the unclaimed head of ring " +
                                               std::string(shm::to_string(p)) + " and read, a write failed with " +
                                               w.error().message() + " (did the reader move its tail past head?)");
    Reply r = c.daemon->call({{"op", "read"}});
    for (int k = 0; k < 4 && !r.ok() && r.error().code == shm::ErrorCode::Empty; ++k)
      r = c.daemon->call({{"op", "read"}});
    const auto data = r.ok() ? driver::from_hex(r.body.value("data", std::string())) : std::nullopt;
    if (!data || message_id(*data) != std::optional<std::uint64_t>(id))
      scenario_fail(ClauseId::R_POSITIONS, "after a Ready word was forged at the unclaimed head of ring " +
                                               std::string(shm::to_string(p)) +
                                               ", the next message written there was not read back (" +
                                               (r.ok() ? "other bytes" : r.error().message()) + ")");
    c.record(ClauseId::R_POSITIONS);
    c.record(ClauseId::V_SLOT);
    ++id;
  }
}

// The traffic under a hostile peer: what was written and delivered, and how the writes and reads went.
struct HostileTraffic {
  Cluster& c;
  std::map<std::uint64_t, bool> written;  // id -> delivered
  std::uint64_t delivered = 0, dropped = 0, full = 0;
};

// A small segment, in a cluster that does not trust its peers.
Cluster::Options hostile_options() {
  Cluster::Options o;
  o.trusts_peers = false;  // the suite is the hostile peer here
  o.segment_size = 16 * 1024;
  o.slot_size = 64;
  o.heartbeat_timeout_ms = 60000;
  o.daemon_timeout_ms = 60000;
  return o;
}

// Starts the daemon and the writer, and sees messages get through before any byte is flipped.
DriverProcess& start_daemon_and_writer(Cluster& c) {
  if (!c.start_daemon(c.daemon).ok())
    scenario_fail(ClauseId::G_FIT,
                  "the driver could not create a segment of " + std::to_string(c.options().segment_size) + " bytes");
  DriverProcess& writer = c.add_client("writer");
  expect_delivery(c, writer, *c.daemon);
  return writer;
}

// Writes message `id` at a random priority and length; it may fail only Full or CorruptSegment.
void write_message(HostileTraffic& t, DriverProcess& writer, std::mt19937_64& rng, std::uint64_t id) {
  const Reply w =
      writer.call({{"op", "write"},
                   {"priority", static_cast<int>(rng() % 3)},
                   {"data", driver::to_hex(message_payload(id, 8 + rng() % (t.c.options().slot_size - 7)))}});
  if (w.ok())
    t.written[id] = false;
  else if (w.error().code == shm::ErrorCode::Full)
    ++t.full;
  else if (w.error().code != shm::ErrorCode::CorruptSegment)
    scenario_fail(ClauseId::V_SLOT, "a write failed under a hostile peer with " + w.error().message());
}

// V-ONCE: what the reader delivered is exactly a message that was written, and was not delivered before.
void expect_written_once(HostileTraffic& t, const Reply& r) {
  const auto data = driver::from_hex(r.body.value("data", std::string()));
  const auto got = data ? message_id(*data) : std::nullopt;
  t.c.record(ClauseId::V_ONCE);
  t.c.record(ClauseId::V_SLOT);
  const std::uint64_t id = got.value_or(~0ULL);
  if (!got || !t.written.count(id))
    scenario_fail(ClauseId::V_ONCE, "the reader delivered " + std::to_string(data ? data->size() : 0) +
                                        " bytes that no writer wrote, while a peer changed slot fields during reads: " +
                                        "it used a value other than the one it validated (" +
                                        r.body.value("data", std::string()).substr(0, 64) + "...)");
  if (t.written[id]) scenario_fail(ClauseId::V_ONCE, "message " + std::to_string(id) + " was delivered twice");
  t.written[id] = true;
  ++t.delivered;
}

// Reads up to twice through the daemon; a read may fail only Empty (then stops) or CorruptSegment (dropped).
void read_and_catch_up(HostileTraffic& t) {
  for (int k = 0; k < 2; ++k) {  // read as fast as it writes, and catch up
    const Reply r = t.c.daemon->call({{"op", "read"}});
    if (!r.ok()) {
      if (r.error().code == shm::ErrorCode::CorruptSegment)
        ++t.dropped;
      else if (r.error().code != shm::ErrorCode::Empty)
        scenario_fail(ClauseId::V_SLOT,
                      "a read failed with " + r.error().message() + " (only Empty or CorruptSegment may come)");
      if (r.error().code == shm::ErrorCode::Empty) break;
      continue;
    }
    expect_written_once(t, r);
  }
}

// `messages` writes through `writer`, each followed by reads, while the suite flips bytes.
void write_and_read(HostileTraffic& t, DriverProcess& writer, std::uint64_t seed, int messages) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < messages; ++i) {
    write_message(t, writer, rng, static_cast<std::uint64_t>(i));
    read_and_catch_up(t);
  }
}

}  // namespace

CheckResult run_hostile_reads(const Params& params) {
  CheckResult result;
  result.name = "hostile-reads";
  const int messages = depth_budget(params, 300, 3000, 30000);
  Cluster c(params, "hostile", hostile_options());
  const std::string replay = driver_replay(params, "hostile-reads");
  HostileTraffic traffic{c, {}};
  try {
    DriverProcess& writer = start_daemon_and_writer(c);
    const auto geometry = shm::compute_geometry(c.options().segment_size, c.options().slot_size);
    if (!geometry)
      scenario_fail(ClauseId::G_FIT,
                    "no SPEC geometry for a segment of " + std::to_string(c.options().segment_size) + " bytes");
    Flipper flipper(c.path(), params.seed);
    if (!flipper.mapped())
      scenario_fail(ClauseId::M_NAME, "the segment file " + c.path() + " could not be mapped (spec_layout)");
    flipper.start(*geometry);
    write_and_read(traffic, writer, params.seed, messages);
    flipper.stop();
    forge_ready_at_head(c, writer, *geometry, flipper.base());
    result.notes = std::to_string(messages) + " writes (" + std::to_string(traffic.full) + " Full), " +
                   std::to_string(traffic.delivered) + " delivered intact, " + std::to_string(traffic.dropped) +
                   " dropped as corrupt, " + std::to_string(flipper.flips()) +
                   " byte flips; then a Ready word forged at each ring's unclaimed head";
  } catch (const ScenarioFailure& f) {
    result.failure = failure_of(f, c.steps(), replay);
  }
  result.cases = static_cast<int>(traffic.delivered);
  return result;
}

}  // namespace memlink::conformance
