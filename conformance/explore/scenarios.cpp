#include "scenarios.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "linearizability.hpp"
#include "memlink/shm/buffer.hpp"
#include "memlink/shm/mix.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/recovery.hpp"
#include "memlink/shm/transport.hpp"

namespace memlink::conformance::explore {
namespace {

using namespace std::chrono_literals;
using shm::ErrorCode;
using shm::Priority;
using Result = WriteRecord::Result;

constexpr std::uint64_t kClaimTimeoutNs = 1'000'000;     // 1 ms virtual
constexpr std::uint64_t kBlockingTimeoutNs = 5'000'000;  // write_blocking's timeout
constexpr std::uint64_t kSliceNs = 100'000'000;          // SPEC T-WAIT's sleep slice
constexpr std::uint64_t kSlowSuccessorNs = 1'000'000'000;  // takeover mode bit 1: > every kStallNs
constexpr std::uint64_t kWatchNs = 2'000'000;              // takeover mode bit 2: > the 1 ms heartbeat timeout
constexpr int kMaxEmptyReads = 24;                       // recorded (more run, unrecorded: sound)

// Message `id`: 8 bytes of id, then bytes derived from it; 8..slot bytes long.
std::uint32_t length_of(std::uint64_t id, int slot) {
  return 8 + static_cast<std::uint32_t>(shm::mix64(id) % static_cast<std::uint64_t>(slot - 7));
}
std::vector<std::byte> payload_of(std::uint64_t id, std::uint32_t len) {
  std::vector<std::byte> b(len);
  for (std::uint32_t i = 0; i < len; ++i)
    b[i] = i < 8 ? static_cast<std::byte>(id >> (8 * i)) : static_cast<std::byte>((id * 131 + i * 7) & 0xFF);
  return b;
}
std::uint64_t id_in(std::span<const std::byte> b) {
  std::uint64_t id = 0;
  for (std::size_t i = 0; i < 8 && i < b.size(); ++i) id |= std::uint64_t(std::to_integer<std::uint8_t>(b[i])) << (8 * i);
  return id;
}
bool intact(std::span<const std::byte> b) {
  if (b.size() < 8) return false;
  const auto want = payload_of(id_in(b), static_cast<std::uint32_t>(b.size()));
  return std::equal(b.begin(), b.end(), want.begin());
}

}  // namespace

const char* result_name(WriteRecord::Result r) {
  switch (r) {
    case Result::Pending: return "(died during the call)";
    case Result::Ok: return "Ok";
    case Result::Full: return "Full";
    case Result::NotSent: return "InvalidState (reclaimed while stalled; not sent)";
    case Result::Timeout: return "Timeout";
    case Result::Error: return "error";
  }
  return "?";
}

namespace {

// The write loop every producer runs: each message until it is sent,
// each attempt recorded (a Full or NotSent attempt is its own operation
// with its own id).
template <class Write>
void produce(ThreadApi& api, RunRecord& rec, const Config& c, bool blocking_mode, bool with_priorities, Write write) {
  std::uint64_t attempt = 0;
  for (int m = 0; m < c.messages; ++m) {
    for (;;) {
      if (api.tearing_down()) return;
      WriteRecord w;
      w.thread = api.id();
      w.id = (std::uint64_t(api.id() + 1) << 16) | attempt++;
      w.length = length_of(w.id, c.slot);
      w.priority = with_priorities ? static_cast<Priority>(shm::mix64(w.id ^ 0x5eed) % 3) : Priority::Low;
      w.blocking = blocking_mode && (c.mode == 1 || m % 2 == 1);
      api.begin_operation();
      w.invoke = api.step();
      w.invoke_ns = api.now();
      rec.writes.push_back(w);
      const std::size_t at = rec.writes.size() - 1;
      const std::optional<shm::Error> err = write(w, payload_of(w.id, w.length));
      if (api.tearing_down() || api.is_dead(api.id())) return;  // died: stays Pending
      WriteRecord& W = rec.writes[at];
      W.response = api.step();
      W.response_ns = api.now();
      if (!err) {
        W.result = Result::Ok;
        break;
      }
      if (err->code == ErrorCode::Full) {
        W.result = Result::Full;
        api.spin();
      } else if (err->code == ErrorCode::Timeout && W.blocking) {
        W.result = Result::Timeout;
      } else if (err->code == ErrorCode::InvalidState) {
        W.result = Result::NotSent;
        W.error = err->detail;
        W.error_code = err->code;
        W.claim_ns = api.point_time("write.after-claim");
      } else {
        W.result = Result::Error;
        W.error = std::string(shm::to_string(err->code)) + ": " + err->detail;
        W.error_code = err->code;
        if (!rec.corruption) return;
        api.spin();
      }
    }
  }
}

// True when every producer thread [0, n) has finished or died.
bool producers_done(const ThreadApi& api, int n) {
  for (int t = 0; t < n; ++t)
    if (!api.finished(t) && !api.is_dead(t)) return false;
  return true;
}

// SPEC E-CODES: CorruptSegment's detail starts with the failing field's
// name, "ring[c2d/high].slot[3].checksum: ..." -> "checksum".
std::string named_field(const std::string& detail) {
  const std::string name = detail.substr(0, detail.find(':'));
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

ReadRecord read_record(ThreadApi& api, const shm::Result<shm::MessageInfo>& m, std::span<const std::byte> buf,
                       std::uint64_t invoke) {
  ReadRecord r;
  r.thread = api.id();
  r.invoke = invoke;
  r.response = api.step();
  if (m) {
    r.ok = true;
    r.priority = m->priority;
    r.sequence = m->sequence;
    r.length = m->length;
    const auto got = buf.subspan(0, std::min<std::size_t>(m->length, buf.size()));
    r.id = id_in(got);
    r.intact = intact(got);
    r.take_ns = api.point_time("read.after-take-cas");
  } else if (m.code() != ErrorCode::Empty) {
    r.error = std::string(shm::to_string(m.code())) + ": " + m.error().text();
    if (m.code() == ErrorCode::CorruptSegment) r.corrupt_field = named_field(m.error().detail);
  }
  return r;
}

void* aligned(std::size_t bytes) { return std::aligned_alloc(64, (bytes + 63) / 64 * 64); }

// SPEC T-LOAN: odd-numbered writes go through a loan and every other read
// through a view, so the explorer interleaves loan/commit and take_view/
// release with every other step as it does write and read. (A hostile
// peer's scenario reads by copy only: a view's bytes may change after their
// check, T-LOAN, and the checker would rightly call that corrupt. Likewise
// it writes by copy where the peer flips payload bytes: a loan's bytes are
// the message as they lie when it is committed, so a flip before the commit
// is the message, not a corruption any consumer could see; `loans` false.)
shm::Result<shm::SlotId> ring_write(shm::RingBuffer& ring, const WriteRecord& w, const std::vector<std::byte>& d,
                                    bool loans = true) {
  if (!loans || w.id % 2 == 0) return ring.write_slot(d);
  auto loan = ring.loan(d.size());
  if (!loan) return loan.error();
  if (!d.empty()) std::memcpy(loan->bytes.data(), d.data(), d.size());
  return ring.commit(*loan, d.size());
}

shm::Result<shm::SlotId> client_write(shm::Client& c, const WriteRecord& w, const std::vector<std::byte>& d) {
  if (w.id % 2 == 0) return c.write(w.priority, d);
  auto loan = c.loan(w.priority, d.size());
  if (!loan) return loan.error();
  if (!d.empty()) std::memcpy(loan->slot.bytes.data(), d.data(), d.size());
  return c.commit(*loan, d.size());
}

// A view copied into `buf`; its slot stays Reading until the caller
// releases it (finish, or complete + release), as after take().
template <class TakeView>
shm::Result<shm::MessageInfo> copy_view(std::vector<std::byte>& buf, TakeView take_view) {
  auto v = take_view();
  if (!v) return v.error();
  std::memcpy(buf.data(), v->bytes.data(), std::min(buf.size(), v->bytes.size()));
  return v->info;
}

// "head 5 tail 4 [0:Writing by t1 pos 4 | 1:Empty]" (pids as thread numbers).
std::string ring_state(const shm::RingBuffer& ring) {
  std::string s = "head " + std::to_string(ring.head()) + " tail " + std::to_string(ring.tail()) + " [";
  for (std::uint32_t i = 0; i < ring.capacity(); ++i) {
    const shm::SlotHeader& h = ring.slot_header(i);
    const std::uint8_t st = shm::load_state(h);
    const auto state = shm::slot_state_from_byte(st);
    s += (i ? " | " : "") + std::to_string(i) + ":" + (state ? std::string(shm::to_string(*state)) : "invalid " + std::to_string(st));
    if (st == 1 || st == 3) {
      const std::uint32_t owner = shm::load_slot_word(h).owner_pid;
      s += " by " + (owner >= Scheduler::kFirstPid && owner < Scheduler::kFirstPid + 16 ? "t" + std::to_string(owner - Scheduler::kFirstPid)
                                                                                          : "pid " + std::to_string(owner));
    }
    if (st != 0) s += " pos " + std::to_string(static_cast<std::uint64_t>(h.position));
  }
  return s + "]";
}

// ------------------------------------------------------------------ ring

class RingScenario final : public Scenario {
 public:
  explicit RingScenario(const Config& c) : c_(c) {
    const auto cap = static_cast<std::uint32_t>(c.size);
    const std::size_t bytes = shm::RingBuffer::bytes_for(cap, static_cast<std::uint32_t>(c.slot));
    mem_ = static_cast<std::byte*>(aligned(bytes));
    const std::uint64_t first = shm::first_position(c.age, cap);
    auto r = shm::RingBuffer::format(mem_, bytes, cap, static_cast<std::uint32_t>(c.slot),
                                     shm::Direction::ClientToDaemon, Priority::Low, first);
    if (r) ring_ = std::move(r.value());
    record.capacity = {cap, cap, cap};
    record.first_position = {first, first, first};
    record.claim_timeout_ns = kClaimTimeoutNs;
    record.corruption = c.scenario == "hostile";
  }
  ~RingScenario() override { std::free(mem_); }
  bool ok() const { return ring_.capacity() > 0; }

  std::vector<ThreadSpec> threads() override {
    std::vector<ThreadSpec> t;
    for (int k = 0; k < c_.producers; ++k)
      t.push_back({"writer-" + std::to_string(k), !record.corruption, [this](ThreadApi& api) {
                     produce(api, record, c_, false, false,
                             [this](const WriteRecord& w, const std::vector<std::byte>& d) {
                               auto r = ring_write(ring_, w, d, !flips_payload());
                               return r ? std::optional<shm::Error>() : std::optional<shm::Error>(r.error());
                             });
                   }});
    // The peer before the consumer: in a fair order (the focused search's)
    // it attacks the slot a waiting producer has filled before the consumer
    // reads it.
    if (record.corruption) t.push_back({"hostile-peer", false, [this](ThreadApi& api) { attack(api); }, true});
    t.push_back({"consumer", false, [this](ThreadApi& api) { consume(api); }});
    return t;
  }
  void cleanup() override {}
  std::string snapshot() const override { return "ring " + ring_state(ring_); }

 private:
  // The hostile peer's modes 4 and 5 flip payload bytes (attack()).
  bool flips_payload() const { return record.corruption && c_.mode % 6 >= 4; }

  void consume(ThreadApi& api) {
    std::vector<std::byte> buf(static_cast<std::size_t>(c_.slot));
    shm::TailRecovery tails;
    shm::RecoveryPolicy policy;
    policy.stale_after = 0ns;
    policy.claim_timeout = std::chrono::nanoseconds(kClaimTimeoutNs);
    int empties = 0, idle = 0;
    std::uint64_t reads = 0;
    for (;;) {
      if (api.tearing_down()) return;
      api.begin_operation();
      const std::uint64_t invoke = api.step();
      const bool view = !record.corruption && (++reads & 1) == 0;
      auto m = view ? copy_view(buf, [&] { return ring_.take_view(); }) : ring_.read_slot(buf);
      if (view && m) {
        ring_.complete(m->slot);
        ring_.release(m->slot);
      }
      ReadRecord r = read_record(api, m, buf, invoke);
      if (m || m.code() != ErrorCode::Empty) {
        if (m || m.code() != ErrorCode::InvalidState) record.reads.push_back(r);
        if (m) idle = 0;
        if (m || m.code() == ErrorCode::CorruptSegment) {
          if (!ring_.positions_consistent()) return;  // nothing more can be read (R-POSITIONS)
          continue;
        }
      } else if (++empties <= kMaxEmptyReads) {
        record.reads.push_back(r);
      }
      if (tails.run(ring_, policy).total() > 0) continue;
      const bool done = producers_done(api, c_.producers);
      if (done && ring_.len() == 0) return;
      if (done && record.corruption && ++idle > 40) return;  // a peer may have wedged the ring
      api.spin();
    }
  }

  // The hostile peer: toggles one field or byte of the slot at the tail
  // (the same one all run long, chosen by the config's mode) at each of its
  // steps. A toggle twice is no change: a consumer that reads a field twice
  // (V-ONCE) can see it changed and then restored between the two reads.
  void attack(ThreadApi& api) {
    const std::uint64_t x = shm::mix64(static_cast<std::uint64_t>(c_.mode) + 77);
    const int steps = 4 + static_cast<int>(x % 5);
    for (int i = 0; i < steps; ++i) {
      api.yield();
      if (api.tearing_down()) return;
      const auto index = static_cast<std::uint32_t>(ring_.tail() % ring_.capacity());
      shm::SlotHeader& s = ring_.slot_header(index);
      auto* payload = reinterpret_cast<std::byte*>(&s) + shm::SLOT_HEADER_SIZE;
      switch (c_.mode % 6) {
        case 0: s.length = s.length ^ 0x40u; break;             // into the padding, or past the slot
        case 1: s.checksum = s.checksum ^ 0x00010000u; break;   // the checksum's high half
        case 2: s.priority = static_cast<std::uint8_t>(s.priority ^ 1u); break;
        case 3: s.position = s.position ^ 1u; break;
        case 4: payload[3] ^= std::byte{0x5A}; break;            // inside the id
        default: payload[9] ^= std::byte{0x5A}; break;           // inside the body
      }
    }
  }

  Config c_;
  std::byte* mem_ = nullptr;
  shm::RingBuffer ring_;
};

// ------------------------------------------------------------ segments

std::string fresh_path(const char* tag) {
  static std::atomic<int> n{0};
  const std::string p = "/dev/shm/memlink-explore-" + std::string(tag) + "-" + std::to_string(::getpid()) + "-" +
                        std::to_string(n++);
  (void)shm::RecoveryManager(p).cleanup_orphaned_shm();
  return p;
}

std::size_t segment_size(int n, int slot) {
  const std::size_t stride = shm::slot_stride_for(static_cast<std::size_t>(slot));
  return shm::CONTROL_REGION_SIZE +
         2 * (3 * shm::RING_HEADER_SIZE + shm::calculate_slot_distribution(static_cast<std::uint32_t>(n)).total() * stride);
}

shm::DaemonOptions daemon_options(int slot, shm::SegmentAge age) {
  shm::DaemonOptions o;
  o.age = age;
  o.slot_size = static_cast<std::uint32_t>(slot);
  o.heartbeat_interval = 0ns;  // stamped on every sleep slice; no thread of its own
  o.heartbeat_timeout = 1ms;
  o.remove_on_shutdown = false;
  o.endpoint.wait_strategy = shm::WaitStrategy::Block;
  o.endpoint.recovery.stale_after = 0ns;
  o.endpoint.recovery.claim_timeout = std::chrono::nanoseconds(kClaimTimeoutNs);
  return o;
}

shm::EndpointOptions client_options() {
  shm::EndpointOptions o;
  o.wait_strategy = shm::WaitStrategy::Block;
  o.daemon_timeout = std::chrono::hours(1);  // the daemon stamps only when it sleeps
  return o;
}

// The client side shared by the transport and takeover scenarios.
class SegmentScenario : public Scenario {
 public:
  SegmentScenario(const Config& c, const char* tag) : c_(c), path_(fresh_path(tag)) {
    auto d = shm::Daemon::create(path_, segment_size(c.size, c.slot), 1, daemon_options(c.slot, c.age));
    if (!d) {
      error_ = d.error();
      return;
    }
    daemon_.emplace(std::move(d.value()));
    auto cl = shm::Client::connect(path_, 1, client_options());
    if (!cl) {
      error_ = cl.error();
      return;
    }
    client_.emplace(std::move(cl.value()));
    const auto dist = shm::calculate_slot_distribution(static_cast<std::uint32_t>(c.size));
    record.capacity = {dist.critical, dist.high, dist.low};
    for (std::size_t p = 0; p < shm::kPriorityCount; ++p)
      record.first_position[p] = shm::first_position(c.age, record.capacity[p]);
    record.claim_timeout_ns = kClaimTimeoutNs;
    record.blocking_timeout_ns = kBlockingTimeoutNs;
    record.sleep_slice_ns = kSliceNs;
    record.transport = true;
  }
  const std::optional<shm::Error>& error() const { return error_; }
  void at_end() override {
    record.client_head = shm::c2d_published(client_->control());
    std::array<std::array<std::uint64_t, 2>, shm::kPriorityCount> positions{};
    for (Priority p : shm::kAllPriorities) {
      const shm::RingBuffer& ring = client_->outbound().ring(p);
      positions[static_cast<std::size_t>(p)] = {ring.head(), ring.tail()};
    }
    record.c2d_positions = positions;
    record.daemon_tail = client_->control().daemon_tail.raw().load();
    const auto& ctl = client_->control();
    record.waiters = std::array<std::uint32_t, 4>{
        ctl.daemon_futex.waiters.raw().load(), ctl.client_futex.waiters.raw().load(),
        ctl.c2d_space_futex.waiters.raw().load(), ctl.d2c_space_futex.waiters.raw().load()};
  }
  std::string snapshot() const override {
    std::string s;
    for (Priority p : shm::kAllPriorities)
      s += std::string(s.empty() ? "" : "; ") + "c2d " + std::string(shm::to_string(p)) + " " +
           ring_state(const_cast<shm::Client&>(*client_).outbound().ring(p));
    return s;
  }

  void cleanup() override {
    client_.reset();
    successor_.reset();
    if (daemon_) daemon_->shutdown();
    daemon_.reset();
    (void)shm::RecoveryManager(path_).cleanup_orphaned_shm();
    (void)shm::MmapSegment::remove(path_);
  }

 protected:
  ThreadSpec producer(int k) {
    const bool priorities = !(c_.scenario == "takeover" && (c_.mode & 8) != 0);  // mode bit 3: one ring
    return {"writer-" + std::to_string(k), true, [this, priorities](ThreadApi& api) {
              produce(api, record, c_, c_.mode > 0, priorities,
                      [this, &api](const WriteRecord& w, const std::vector<std::byte>& d) { return send(api, w, d); });
            }};
  }

  // One write attempt of the producer loop; the error, if it failed.
  std::optional<shm::Error> send(ThreadApi& api, const WriteRecord& w, const std::vector<std::byte>& d) {
    shm::Result<shm::SlotId> r = shm::make_error(ErrorCode::InvalidArgument, "unset");
    if (w.blocking) {
      const shm::RingBuffer& ring = client_->outbound().ring(w.priority);
      api.expect_wake([&ring] { return !ring.is_full(); },
                      std::string("a freed slot of the c2d ") + std::string(shm::to_string(w.priority)) + " ring");
      r = client_->write_blocking(w.priority, d, std::chrono::nanoseconds(kBlockingTimeoutNs));
      api.clear_wake();
    } else {
      r = client_write(*client_, w, d);
    }
    return r ? std::optional<shm::Error>() : std::optional<shm::Error>(r.error());
  }

  // A daemon's serving loop, two-step: take, record, finish. Returns when
  // the producers (and `others`) are done and c2d is empty, or when it is
  // fenced. A daemon that does not sleep polls instead of wait()ing, and so
  // never stamps its heartbeat (interval 0: K-HEARTBEAT): a busy daemon.
  void serve(ThreadApi& api, shm::Daemon& d, bool pausing, int others = -1, bool sleeps = true) {
    std::vector<std::byte> buf(static_cast<std::size_t>(c_.slot));
    int empties = 0, pauses = pausing ? 2 : 0, delivered = 0;
    std::uint64_t takes = 0;
    for (;;) {
      if (api.tearing_down()) return;
      api.begin_operation();
      const std::uint64_t invoke = api.step();
      auto m = (++takes & 1) == 0 ? copy_view(buf, [&] { return d.take_view(); }) : d.take(buf);
      ReadRecord r = read_record(api, m, buf, invoke);
      if (m) {
        // The read is one operation from take to finish: the slot is free
        // only after finish (K-TWO-STEP), and a writer may find the ring
        // full until then.
        (void)d.finish(*m);
        r.response = api.step();
        record.reads.push_back(r);
        ++delivered;
        continue;
      }
      if (m.code() == ErrorCode::Disconnected) return;  // fenced
      if (m.code() != ErrorCode::Empty && m.code() != ErrorCode::InvalidState) record.reads.push_back(r);
      if (m.code() == ErrorCode::Empty && ++empties <= kMaxEmptyReads) record.reads.push_back(r);
      if (producers_done(api, c_.producers) && d.inbound().pending_total() == 0 &&
          (others < 0 || api.finished(others) || api.is_dead(others)))
        return;
      if (pauses > 0 && delivered >= 1) {
        // The daemon stops reading for a while: blocked writers time out (T-BLOCKING).
        --pauses;
        shm::platform::sleep_for(std::chrono::nanoseconds(4 * kBlockingTimeoutNs));
        continue;
      }
      if (!sleeps) {
        if (!d.is_connected()) return;  // fenced
        api.spin();
        continue;
      }
      // Owed a wake-up: a message published while it slept (F-WAKE). One
      // that was Ready behind a slot another consumer held (a replaced
      // daemon, stalled mid-read) becomes readable by that consumer's
      // release, which wakes writers, not consumers.
      auto heads = [&d] {
        std::uint64_t h = 0;
        for (Priority p : shm::kAllPriorities) h += d.inbound().ring(p).head();
        return h;
      };
      api.expect_wake([&d, heads, before = heads()] { return d.inbound().has_message() && heads() != before; },
                      "a c2d message published while it slept");
      const shm::Status s = d.wait(10ms);
      api.clear_wake();
      if (api.tearing_down()) return;
      if (!s && s.code() == ErrorCode::Disconnected) return;
      if (!s && s.code() != ErrorCode::Timeout)
        record.violations.push_back(Violation{ClauseId::T_WAIT, "the daemon's wait failed: " + s.error().message()});
    }
  }
  Config c_;
  std::string path_;
  std::optional<shm::Error> error_;
  std::optional<shm::Daemon> daemon_, successor_;
  std::optional<shm::Client> client_;
};

// ------------------------------------------------------------ transport

class TransportScenario final : public SegmentScenario {
 public:
  explicit TransportScenario(const Config& c) : SegmentScenario(c, "t") {}
  std::vector<ThreadSpec> threads() override {
    std::vector<ThreadSpec> t;
    for (int k = 0; k < c_.producers; ++k) t.push_back(producer(k));
    t.push_back({"daemon", false, [this](ThreadApi& api) { serve(api, *daemon_, c_.mode == 2); }});
    return t;
  }
};

// ------------------------------------------------------------- takeover

class TakeoverScenario final : public SegmentScenario {
 public:
  explicit TakeoverScenario(const Config& c) : SegmentScenario(c, "k") {}
  std::vector<ThreadSpec> threads() override {
    std::vector<ThreadSpec> t;
    for (int k = 0; k < c_.producers; ++k) t.push_back(producer(k));
    a_ = c_.producers;
    t.push_back({"daemon-A", false, [this](ThreadApi& api) {
                   serve(api, *daemon_, false, -1, /*sleeps=*/(c_.mode & 1) != 0);
                   // A fenced daemon's shutdown must leave the segment to its successor.
                   if (!api.tearing_down() && daemon_->fenced()) daemon_->shutdown();
                 }});
    t.push_back({"daemon-B", false, [this](ThreadApi& api) { take_over(api); }});
    return t;
  }

 private:
  // K-TAKEOVER: one takeover moves the epoch on by one, past 0 at its wrap
  // (an aged segment starts at 2^64 - 1: C-AGE). Written out here, not
  // shm::next_epoch: the oracle must not share the code it judges.
  void check_new_epoch(std::uint64_t got) {
    const std::uint64_t from = shm::first_epoch(c_.age);
    const std::uint64_t want = from == ~std::uint64_t{0} ? 1 : from + 1;
    if (got != want)
      record.violations.push_back(
          Violation{ClauseId::K_TAKEOVER, "daemon B serves epoch " + std::to_string(got) + " after taking over epoch " +
                                              std::to_string(from) + "; the next epoch is " + std::to_string(want) +
                                              (got == 0 ? " (0 is what a lost segment reads)" : "")});
  }

  void take_over(ThreadApi& api) {
    for (int attempt = 0; !successor_; ++attempt) {
      if (attempt >= 3) {
        // A watching successor (mode bit 2) polls the old daemon's heartbeat
        // until the run ends; another gives up after three tries.
        if ((c_.mode & 4) == 0) return;
        shm::platform::sleep_for(std::chrono::nanoseconds(kWatchNs));
      }
      if (api.tearing_down()) return;
      if (producers_done(api, c_.producers) && api.finished(a_)) return;  // nothing left to take over
      auto d = shm::Daemon::create(path_, segment_size(c_.size, c_.slot), 1, daemon_options(c_.slot, c_.age));
      if (api.tearing_down()) return;
      if (d) {
        successor_.emplace(std::move(d.value()));
        record.takeover_thread = api.id();
        record.fenced_thread = a_;
        record.takeover_ns = api.point_time("recovery.after-epoch");
        record.takeover_step = api.step();
        check_new_epoch(successor_->start_info().epoch);
        break;
      }
      if (d.code() != ErrorCode::AlreadyExists)
        record.violations.push_back(
            Violation{ClauseId::K_TAKEOVER, "daemon B could not start: " + d.error().message()});
      for (int i = 0; i < 4; ++i) api.spin();
    }
    if (!successor_) return;
    // A slow successor (mode bit 1): it has bumped the epoch but takes a
    // while to start serving, longer than any stall (kStallNs), so that an old daemon stalled just before its take resumes
    // while the new epoch is on and the message still at the tail (K-FENCE).
    if (c_.mode & 2) shm::platform::sleep_for(std::chrono::nanoseconds(kSlowSuccessorNs));
    serve(api, *successor_, false, a_);
  }
  int a_ = 0;
};

}  // namespace

// ------------------------------------------------------------------ config

std::string Config::text() const {
  return scenario + "/c" + std::to_string(size) + "/p" + std::to_string(producers) + "/m" + std::to_string(messages) +
         "/s" + std::to_string(slot) + "/x" + std::to_string(mode) + (weak ? "/w1" : "") +
         (age == shm::SegmentAge::Fresh ? "" : "/a" + std::to_string(static_cast<int>(age)));
}

std::optional<Config> Config::parse(const std::string& s) {
  Config c;
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string p; std::getline(in, p, '/');) parts.push_back(p);
  if (parts.size() >= 7 && (parts.back() == "a1" || parts.back() == "a2")) {
    c.age = parts.back() == "a1" ? shm::SegmentAge::LapWrap : shm::SegmentAge::PositionEnd;
    parts.pop_back();
  }
  if (parts.size() == 7 && parts[6] == "w1") {
    c.weak = true;
    parts.pop_back();
  }
  if (parts.size() != 6) return std::nullopt;
  c.scenario = parts[0];
  if (c.scenario != "ring" && c.scenario != "transport" && c.scenario != "takeover" && c.scenario != "hostile")
    return std::nullopt;
  int* fields[] = {&c.size, &c.producers, &c.messages, &c.slot, &c.mode};
  const char tags[] = {'c', 'p', 'm', 's', 'x'};
  for (int i = 0; i < 5; ++i) {
    if (parts[i + 1].size() < 2 || parts[i + 1][0] != tags[i]) return std::nullopt;
    char* end = nullptr;
    const long v = std::strtol(parts[i + 1].c_str() + 1, &end, 10);
    if (*end != '\0' || v < 0 || v > 4096) return std::nullopt;
    *fields[i] = static_cast<int>(v);
  }
  if (c.size < 1 || c.size > 8 || c.producers < 1 || c.producers > 6 || c.messages < 1 || c.slot < 8) return std::nullopt;
  return c;
}

shm::Result<std::unique_ptr<Scenario>> make_scenario(const Config& c) {
  if (c.scenario == "ring" || c.scenario == "hostile") {
    auto s = std::make_unique<RingScenario>(c);
    if (!s->ok()) return shm::make_error(ErrorCode::InvalidArgument, "cannot format a ring for " + c.text());
    return std::unique_ptr<Scenario>(std::move(s));
  }
  std::unique_ptr<SegmentScenario> s;
  if (c.scenario == "transport") s = std::make_unique<TransportScenario>(c);
  else s = std::make_unique<TakeoverScenario>(c);
  if (s->error()) {
    const shm::Error e = *s->error();
    s->cleanup();
    return e;
  }
  return std::unique_ptr<Scenario>(std::move(s));
}

std::vector<ClauseId> clauses_of(const Config& c) {
  using C = ClauseId;
  if (c.scenario == "ring")
    return {C::R_CLAIM,   C::R_RELEASE, C::R_FIFO,    C::R_CAPACITY, C::R_VISIBLE, C::S_TRANSITIONS,
            C::S_PUBLISH, C::K_STALE,   C::K_WRITING, C::K_CLAIMED,  C::T_LOAN};
  if (c.scenario == "transport")
    return {C::R_CLAIM, C::R_RELEASE,  C::R_FIFO,     C::R_ORDER, C::R_CAPACITY, C::R_VISIBLE, C::S_PUBLISH, C::T_SEQ,
            C::T_WAIT,  C::T_BLOCKING, C::T_COUNTERS, C::F_WAKE,  C::K_STALE,    C::K_WRITING, C::K_CLAIMED, C::T_LOAN};
  if (c.scenario == "takeover")
    return {C::K_TAKEOVER, C::K_FENCE, C::K_TWO_STEP, C::K_LOCK,     C::R_FIFO,
            C::R_ORDER,    C::F_WAKE,  C::T_SEQ,      C::T_COUNTERS, C::T_LOAN};
  return {C::V_SLOT, C::V_ONCE, C::S_CHECKSUM};
}

// ------------------------------------------------------------------ checks

std::vector<std::string> describe_run(const Config& c, const RunRecord& r) {
  struct Line {
    std::uint64_t at;
    std::string text;
  };
  std::vector<Line> lines;
  auto who = [](int t) { return "t" + std::to_string(t); };
  for (const WriteRecord& w : r.writes)
    lines.push_back({w.invoke, "steps " + std::to_string(w.invoke) + ".." +
                                   (w.result == Result::Pending ? std::string("(died)") : std::to_string(w.response)) + "  " +
                                   who(w.thread) + " write" + (w.blocking ? "_blocking " : " ") +
                                   std::string(shm::to_string(w.priority)) + " #" + std::to_string(w.id) + " (" +
                                   std::to_string(w.length) + " B) -> " + result_name(w.result) +
                                   (w.error.empty() ? "" : " " + w.error)});
  for (const ReadRecord& rd : r.reads)
    lines.push_back({rd.invoke, "steps " + std::to_string(rd.invoke) + ".." + std::to_string(rd.response) + "  " +
                                    who(rd.thread) + " read -> " +
                                    (rd.ok ? std::string(shm::to_string(rd.priority)) + " #" + std::to_string(rd.id) +
                                                 " seq " + std::to_string(rd.sequence) + " (" + std::to_string(rd.length) +
                                                 " B" + (rd.intact ? "" : ", payload differs") + ")"
                                           : rd.error.empty() ? std::string("Empty") : rd.error)});
  std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) { return a.at < b.at; });
  std::vector<std::string> out{"scenario " + c.text() + " (capacities " + std::to_string(r.capacity[0]) + "/" +
                               std::to_string(r.capacity[1]) + "/" + std::to_string(r.capacity[2]) + ")"};
  if (!r.final_state.empty()) out.push_back("as the run ended: " + r.final_state);
  if (r.takeover_thread >= 0)
    out.push_back("t" + std::to_string(r.takeover_thread) + " took over from t" + std::to_string(r.fenced_thread) +
                  " (epoch incremented at t=" + std::to_string(r.takeover_ns / 1000) + " us)");
  for (auto& l : lines) out.push_back(std::move(l.text));
  return out;
}

}  // namespace memlink::conformance::explore

namespace memlink::conformance::explore {

Timeline run_timeline(const Config& c, const RunRecord& r, const Execution& e, const std::vector<std::string>& names,
                      const Violation& broken, const std::string& replay) {
  const std::string violation = broken.describe();
  Timeline t;
  t.title = "memlink-conformance: exploration, scenario " + c.text();
  t.clause = std::string(broken.clause.name());
  t.explanation = violation;
  t.replay = replay;
  t.unit = "steps";
  t.scale = 1;
  t.lanes = names;
  // The messages the violation names ("#65536"): their writes and reads broke it.
  std::set<std::uint64_t> named;
  for (std::size_t at = violation.find('#'); at != std::string::npos; at = violation.find('#', at + 1)) {
    std::size_t end = at + 1;
    while (end < violation.size() && std::isdigit(static_cast<unsigned char>(violation[end]))) ++end;
    if (end > at + 1) named.insert(std::stoull(violation.substr(at + 1, end - at - 1)));
  }
  for (const WriteRecord& w : r.writes) {
    Timeline::Bar b;
    b.lane = w.thread;
    b.start = w.invoke;
    b.end = w.result == WriteRecord::Result::Pending ? ~0ULL : w.response;
    const std::string prio(shm::to_string(w.priority));
    b.label = std::string(w.blocking ? "wb " : "w ") + prio.substr(0, 1) + " #" + std::to_string(w.id);
    b.detail = std::string(w.blocking ? "write_blocking " : "write ") + prio + " #" + std::to_string(w.id) + " (" +
               std::to_string(w.length) + " B) -> " + result_name(w.result) + (w.error.empty() ? "" : ": " + w.error) +
               " [steps " + std::to_string(w.invoke) + " .. " +
               (b.end == ~0ULL ? std::string("never") : std::to_string(w.response)) + "]";
    b.look = w.result == WriteRecord::Result::Ok        ? Timeline::Bar::Look::Write
             : w.result == WriteRecord::Result::Pending ? Timeline::Bar::Look::Ghost
                                                        : Timeline::Bar::Look::Refused;
    if (named.count(w.id) || (named.empty() && w.result == WriteRecord::Result::Error))
      b.look = Timeline::Bar::Look::Broke;
    t.bars.push_back(std::move(b));
  }
  for (const ReadRecord& rd : r.reads) {
    Timeline::Bar b;
    b.lane = rd.thread;
    b.start = rd.invoke;
    b.end = rd.response;
    b.label = rd.ok ? "r #" + std::to_string(rd.id) : "r " + std::string(rd.error.empty() ? "Empty" : "error");
    b.detail = rd.ok ? "read -> " + std::string(shm::to_string(rd.priority)) + " #" + std::to_string(rd.id) + " seq " +
                           std::to_string(rd.sequence) + (rd.intact ? "" : " (payload differs)")
                     : "read -> " + (rd.error.empty() ? std::string("Empty") : rd.error);
    b.detail += " [steps " + std::to_string(rd.invoke) + " .. " + std::to_string(rd.response) + "]";
    b.look = rd.ok ? Timeline::Bar::Look::Read : Timeline::Bar::Look::Refused;
    if ((rd.ok && named.count(rd.id)) || (named.empty() && !rd.ok && !rd.error.empty()))
      b.look = Timeline::Bar::Look::Broke;  // no message named: the operations that failed
    t.bars.push_back(std::move(b));
  }
  for (const Execution::Event& ev : e.events)
    t.marks.push_back({ev.thread, ev.step, ev.death ? "killed (kill -9)" : "stalls (off its CPU)", ev.death});
  if (r.takeover_thread >= 0 && r.fenced_thread >= 0)
    t.marks.push_back({r.takeover_thread, r.takeover_step,
                       "took over from " + names.at(static_cast<std::size_t>(r.fenced_thread)) + " (new epoch)", false});
  return t;
}

}  // namespace memlink::conformance::explore
