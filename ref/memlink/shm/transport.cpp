#include "memlink/shm/transport.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>

#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/heartbeat.hpp"

#include "memlink/shm/platform.hpp"

namespace memlink::shm {
namespace {

using std::chrono::nanoseconds;
constexpr nanoseconds kSleepSlice = std::chrono::milliseconds(100);

std::string futex_name(const std::string& path, const ControlRegion* ctl, const FutexWord* fw) {
  return path + "#" +
         std::to_string(reinterpret_cast<const std::byte*>(fw) -
                        reinterpret_cast<const std::byte*>(ctl));
}

// What the sleeper waits for, as the waker's half of F-WAKE sees it.
enum class Change {
  // A slot published or freed, already stored: the futex word is bumped
  // only when someone sleeps, so that their futex_wait sees a new value.
  AlreadyStored,
  // The bump of the futex word is itself the change (signal(); shutdown,
  // whose flag a sleeper may be asleep past): it is stored always, first.
  IsTheWord,
};

// SPEC F-WAKE, the waker's half, the one place it is written: the change is
// stored, then the seq_cst fence orders it before the load of `waiters`.
// Paired with the fence in wait_until() (the sleeper's half: register in
// `waiters`, fence, recheck), either the sleeper's recheck sees the change
// or this load sees the sleeper, who is then woken (wake_counted). Returns
// how many sleep. Inline and allocation-free: every message pays it.
inline std::uint32_t sleepers_after(FutexWord& fw, Change change) noexcept {
  if (change == Change::IsTheWord) fw.word.fetch_add(1, std::memory_order_release);
  shared_fence(std::memory_order_seq_cst);  // SPEC F-WAKE, the waker's half
  return fw.waiters.load(std::memory_order_relaxed);
}

// The rare half, out of line: someone sleeps.
[[gnu::noinline]] Status wake_counted(FutexWord& fw, const Futex& fx, Change change, std::uint32_t sleepers) {
  if (change == Change::AlreadyStored) fw.word.fetch_add(1, std::memory_order_release);
  if (auto r = fx.wake(sleepers); !r) return r.error();
  return {};
}

Status wake_sleepers(FutexWord& fw, const Futex& fx, Change change) {
  const std::uint32_t sleepers = sleepers_after(fw, change);
  if (sleepers == 0) return {};
  return wake_counted(fw, fx, change, sleepers);
}

}  // namespace

std::optional<WaitStrategy> wait_strategy_from_string(std::string_view s) noexcept {
  for (WaitStrategy w : {WaitStrategy::Spin, WaitStrategy::Block, WaitStrategy::Adaptive})
    if (s == to_string(w)) return w;
  return std::nullopt;
}

// ---------------------------------------------------------------- Endpoint

Endpoint::Endpoint(Role role, MmapSegment segment, const Geometry& g, EndpointOptions options)
    : role_(role), segment_(std::move(segment)), geometry_(g), options_(options) {
  ctl_ = control_of(segment_.data());
  const bool daemon = role_ == Role::Daemon;
  in_signal_ = daemon ? &ctl_->daemon_futex : &ctl_->client_futex;
  out_signal_ = daemon ? &ctl_->client_futex : &ctl_->daemon_futex;
  in_space_ = daemon ? &ctl_->c2d_space_futex : &ctl_->d2c_space_futex;
  out_space_ = daemon ? &ctl_->d2c_space_futex : &ctl_->c2d_space_futex;
  const std::string& p = segment_.path();
  in_signal_fx_ = Futex(&in_signal_->word.raw(), futex_name(p, ctl_, in_signal_));
  out_signal_fx_ = Futex(&out_signal_->word.raw(), futex_name(p, ctl_, out_signal_));
  in_space_fx_ = Futex(&in_space_->word.raw(), futex_name(p, ctl_, in_space_));
  out_space_fx_ = Futex(&out_space_->word.raw(), futex_name(p, ctl_, out_space_));
}

Endpoint::Endpoint(Endpoint&& o) noexcept
    : role_(o.role_),
      segment_(std::move(o.segment_)),
      ctl_(o.ctl_),
      geometry_(o.geometry_),
      options_(o.options_),
      inbound_(std::move(o.inbound_)),
      outbound_(std::move(o.outbound_)),
      in_signal_(o.in_signal_),
      out_signal_(o.out_signal_),
      in_space_(o.in_space_),
      out_space_(o.out_space_),
      in_signal_fx_(std::move(o.in_signal_fx_)),
      out_signal_fx_(std::move(o.out_signal_fx_)),
      in_space_fx_(std::move(o.in_space_fx_)),
      out_space_fx_(std::move(o.out_space_fx_)),
      shut_down_(o.shut_down_),
      client_entry_(o.client_entry_),
      tails_(o.tails_),
      read_buffer_(std::move(o.read_buffer_)) {
  o.ctl_ = nullptr;
  o.shut_down_ = true;
  o.client_entry_ = -1;
}

Status Endpoint::attach_rings() {
  const bool daemon = role_ == Role::Daemon;
  auto c2d = PriorityRingBuffer::attach(segment_.data(), segment_.size(), geometry_,
                                        Direction::ClientToDaemon);
  if (!c2d) return c2d.error();
  auto d2c = PriorityRingBuffer::attach(segment_.data(), segment_.size(), geometry_,
                                        Direction::DaemonToClient);
  if (!d2c) return d2c.error();
  inbound_ = daemon ? std::move(c2d.value()) : std::move(d2c.value());
  outbound_ = daemon ? std::move(d2c.value()) : std::move(c2d.value());
  return {};
}

std::uint32_t Endpoint::backpressure() const noexcept {
  return std::min(ctl_->backpressure.load(std::memory_order_relaxed), BACKPRESSURE_MAX);
}
std::uint32_t Endpoint::client_count() const noexcept {
  return ctl_->client_count.load(std::memory_order_relaxed);
}
std::uint64_t Endpoint::epoch() const noexcept { return ctl_->epoch.load(std::memory_order_acquire); }

bool Endpoint::is_connected() const { return usable().ok(); }

// After a slot was published or freed (F-WAKE; a failed wake leaves the
// sleeper to its next slice, so the write stays acknowledged).
// No Status on the common path (nobody asleep): building and destroying one
// per message cost ~40 instructions (callgrind, bench_costs endpoint_write_read).
void Endpoint::notify(FutexWord& fw, const Futex& fx) const {
  if (const std::uint32_t sleepers = sleepers_after(fw, Change::AlreadyStored); sleepers != 0)
    (void)wake_counted(fw, fx, Change::AlreadyStored, sleepers);
}

Status Endpoint::signal() {
  if (auto s = usable(); !s) return s;
  return wake_sleepers(*out_signal_, out_signal_fx_, Change::IsTheWord);
}

void Endpoint::note_corruption(const PriorityRingBuffer& rings, const Error& e) {
  // A bad slot is dropped and counted by the ring; bad positions make the
  // ring unusable, so every endpoint and the inspector must learn of it.
  if (e.code == ErrorCode::CorruptSegment && !rings.positions_consistent())
    ctl_->flags.fetch_or(FLAG_POISONED, std::memory_order_acq_rel);
}

Result<SlotId> Endpoint::write(Priority p, std::span<const std::byte> data) {
  if (auto s = usable(); !s) return s.error();
  RingBuffer& ring = outbound_.ring(p);
  // The slot's position is its sequence number (SPEC T-SEQ): no counter is
  // shared between producers.
  auto r = ring.write_slot(data);
  if (segment_.lost()) return segment_.lost_error();  // written to zero pages: not acknowledged
  if (!r) {
    note_corruption(outbound_, r.error());
    return r;
  }
  after_publish();
  return r;
}

// A write or a commit was acknowledged: count it (T-COUNTERS, in this
// client's own table entry), then wake the consumer if it sleeps (F-WAKE).
void Endpoint::after_publish() {
  if (role_ == Role::Client) count_c2d_published(*ctl_, client_entry_);
  notify(*out_signal_, out_signal_fx_);
}

Result<Loan> Endpoint::loan(Priority p, std::size_t size) {
  if (auto s = usable(); !s) return s.error();
  auto slot = outbound_.ring(p).loan(size);
  if (segment_.lost()) return segment_.lost_error();
  if (!slot) {
    note_corruption(outbound_, slot.error());
    return slot.error();
  }
  return Loan{p, *slot, slot->slot.position};  // T-SEQ: the position
}

Result<SlotId> Endpoint::commit(const Loan& loan, std::size_t length) {
  if (ctl_ == nullptr) return make_error(ErrorCode::Disconnected, "endpoint was moved from");
  auto r = outbound_.ring(loan.priority).commit(loan.slot, length);
  if (segment_.lost()) return segment_.lost_error();  // a loan filled on zero pages: not acknowledged
  if (!r) return r;
  after_publish();
  return r;
}

Result<SlotId> Endpoint::write_blocking(Priority p, std::span<const std::byte> data,
                                        nanoseconds timeout) {
  const std::uint64_t deadline = platform::monotonic_ns() + static_cast<std::uint64_t>(
                                                                std::max<std::int64_t>(0, timeout.count()));
  for (;;) {
    auto r = write(p, data);
    if (r.ok() || r.code() != ErrorCode::Full) return r;
    const std::uint64_t now = platform::monotonic_ns();
    if (now >= deadline)
      return make_error(ErrorCode::Timeout, r.error().text() + "; no slot freed within " +
                                                std::to_string(timeout.count() / 1000000) + " ms");
    const RingBuffer& ring = outbound_.ring(p);
    auto s = wait_until([&] { return !ring.is_full(); }, *out_space_, out_space_fx_,
                        nanoseconds(deadline - now), /*as_consumer=*/false);
    if (!s && s.code() != ErrorCode::Timeout) return s.error();
  }
}

template <class TakeOnce>
auto Endpoint::take_inbound(TakeOnce take_once) {
  using R = decltype(take_once());
  if (ctl_ == nullptr) return R(make_error(ErrorCode::Disconnected, "endpoint was moved from"));
  if (auto s = before_read(); !s) return R(s.error());
  R r = take_once();
  if (segment_.lost()) return R(segment_.lost_error());  // read from zero pages: not delivered
  if (!r && (r.code() == ErrorCode::Empty || r.code() == ErrorCode::InvalidState)) {
    // The tail may be held by a dead process (SPEC K-STALE). Cheap when it
    // is not: the tail's word, a clock read, no producer's head line
    // (K-CLAIMED reads it only once a claim could have timed out), and a
    // liveness syscall only for a held slot.
    const RecoveryReport rec = recover_inbound();
    if (rec.total() > 0) r = take_once();
  }
  if (!r) {
    if (r.code() == ErrorCode::CorruptSegment) notify(*in_space_, in_space_fx_);  // dropped: space
    note_corruption(inbound_, r.error());
  }
  return r;
}

Result<MessageInfo> Endpoint::take(std::span<std::byte> out) {
  return take_inbound([&] { return inbound_.take(out, fence()); });
}

Result<SlotView> Endpoint::take_view() {
  return take_inbound([&] { return inbound_.take_view(fence()); });
}

Status Endpoint::check_inbound_positions() {
  auto s = inbound_.check_positions();
  if (!s) note_corruption(inbound_, s.error());
  return s;
}

Status Endpoint::finish(const MessageInfo& m) {
  if (ctl_ == nullptr) return make_error(ErrorCode::Disconnected, "endpoint was moved from");
  // A fenced daemon may finish the one message it took in its epoch: the new
  // daemon leaves a slot Reading by a live process alone (SPEC K-FENCE).
  inbound_.finish(m);
  // T-COUNTERS: an atomic add, not a load and a store, although one daemon
  // consumes: in a takeover the fenced daemon's last finish (K-FENCE) and
  // the new daemon's race, and a plain store would lose one of them (the
  // exploration check's takeover scenario found that).
  if (role_ == Role::Daemon) ctl_->daemon_tail.fetch_add(1, std::memory_order_relaxed);
  notify(*in_space_, in_space_fx_);
  return {};
}

RecoveryReport Endpoint::recover_inbound() {
  if (ctl_ == nullptr) return {};
  RecoveryReport r = tails_.run(inbound_, options_.recovery);
  if (r.total() > 0) notify(*in_space_, in_space_fx_);
  return r;
}

Result<MessageInfo> Endpoint::read(std::span<std::byte> out) {
  auto r = take(out);
  if (!r) return r;
  (void)finish(*r);
  return r;
}

// Into the endpoint's own slot-sized buffer (allocated at the first read),
// then a vector of the message's length: nothing ready costs no allocation,
// a message one (its payload). One consumer per direction (the contract
// above), so one buffer is enough.
Result<Message> Endpoint::read() {
  if (read_buffer_.size() != geometry_.slot_size) read_buffer_.resize(geometry_.slot_size);
  auto r = read(std::span<std::byte>(read_buffer_));
  if (!r) return r.error();
  return Message{
      r->priority, r->sequence,
      std::vector<std::byte>(read_buffer_.begin(), read_buffer_.begin() + static_cast<std::ptrdiff_t>(r->length))};
}

Result<MessageInfo> Endpoint::peek() const {
  if (ctl_ == nullptr) return make_error(ErrorCode::Disconnected, "endpoint was moved from");
  auto r = inbound_.peek();
  if (segment_.lost()) return segment_.lost_error();
  return r;
}

Status Endpoint::wait(std::optional<nanoseconds> timeout) {
  if (ctl_ == nullptr) return make_error(ErrorCode::Disconnected, "endpoint was moved from");
  return wait_until([this] { return inbound_.has_message(); }, *in_signal_, in_signal_fx_, timeout,
                    /*as_consumer=*/true);
}

// SPEC T-WAIT and F-WAKE, the sleeper's half.
template <class Pred>
Status Endpoint::wait_until(Pred ready, FutexWord& fw, const Futex& fx,
                            std::optional<nanoseconds> timeout, bool as_consumer) {
  const std::uint64_t start = platform::monotonic_ns();
  const std::uint64_t deadline =
      timeout ? start + static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout->count()))
              : std::numeric_limits<std::uint64_t>::max();
  auto timed_out = [&] {
    return make_error(ErrorCode::Timeout,
                      "nothing arrived within " + std::to_string(timeout ? timeout->count() / 1000 : 0) + " us");
  };

  if (options_.wait_strategy != WaitStrategy::Block) {
    const std::uint64_t budget = static_cast<std::uint64_t>(options_.spin_budget.count());
    const std::uint64_t spin_end =
        options_.wait_strategy == WaitStrategy::Spin ? deadline : std::min(deadline, start + budget);
    for (std::uint32_t i = 1;; ++i) {
      if (ready()) return {};
      if ((i & 255) == 0) {
        if (auto s = usable(); !s) return s;
        const std::uint64_t t = platform::monotonic_ns();
        if (t >= spin_end) break;
        if (as_consumer && (i & 0xFFFF) == 0) {  // a spinning consumer's housekeeping too
          if (auto s = check_inbound_positions(); !s) return s;
          (void)recover_inbound();
        }
      }
      platform::cpu_relax();
    }
    if (options_.wait_strategy == WaitStrategy::Spin) return ready() ? Status{} : Status{timed_out()};
  }

  for (;;) {
    if (auto s = usable(); !s) return ready() ? Status{} : s;
    if (auto s = peer_alive(); !s) {
      // SPEC M-TRUNCATE: a shrunk file explains a silent peer better than
      // its heartbeat does (the daemon's heartbeat thread may have run into
      // the hole, or been starved while the file shrank), and from now on
      // every operation must say so.
      if (segment_.notice_shrink()) s = segment_.lost_error();
      return ready() ? Status{} : s;
    }
    if (as_consumer) {
      if (auto s = check_inbound_positions(); !s) return s;
    }
    fw.waiters.fetch_add(1, std::memory_order_relaxed);
    shared_fence(std::memory_order_seq_cst);
    const std::uint32_t seen = fw.word.load(std::memory_order_acquire);
    if (ready()) {
      fw.waiters.fetch_sub(1, std::memory_order_relaxed);
      return {};
    }
    const std::uint64_t now = platform::monotonic_ns();
    if (now >= deadline) {
      fw.waiters.fetch_sub(1, std::memory_order_relaxed);
      return timed_out();
    }
    // Sleep in slices so that a peer that died without waking us is noticed.
    const nanoseconds slice =
        std::min(nanoseconds(deadline - now), options_.sleep_slice.count() > 0 ? options_.sleep_slice : kSleepSlice);
    Status s = fx.wait(seen, slice);
    fw.waiters.fetch_sub(1, std::memory_order_relaxed);
    // SPEC M-TRUNCATE: an idle endpoint touches no page past the control
    // region, so a shrunk file is looked for once per slice; usable() then
    // reports it.
    (void)segment_.notice_shrink();
    on_wait_slice();
    // A writer that died in Writing never wakes us: look at the tail.
    if (as_consumer) (void)recover_inbound();
    // A futex on a vanished page is EFAULT (the kernel cannot fault it in).
    if (!s && s.code() != ErrorCode::Timeout) return segment_.lost() ? Status{segment_.lost_error()} : s;
  }
}

// ------------------------------------------------------------------ Daemon

// Stamps heartbeat_ns every interval while the segment's epoch is ours
// (SPEC K-HEARTBEAT); notices when it is not (K-FENCE). Holds only the
// control region's address, so the Daemon object may move.
class Daemon::HeartbeatThread {
 public:
  HeartbeatThread(ControlRegion* ctl, std::uint64_t epoch, nanoseconds interval)
      : ctl_(ctl), epoch_(epoch), interval_(interval), thread_([this] { run(); }) {}
  ~HeartbeatThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      // The point comes before the epoch check, so that a thread held there
      // checks again when it resumes (a held and replaced daemon stamps nothing).
      MEMLINK_CRASH_POINT("heartbeat.before-stamp");
      if (ctl_->epoch.load(std::memory_order_seq_cst) != epoch_) return;  // fenced: stop stamping
      const std::uint64_t now = platform::monotonic_ns();
      ctl_->heartbeat_ns.store(now, std::memory_order_release);
      if (now - last_reap_ns_ >= 1'000'000'000ULL) {  // SPEC K-CLIENTS: a few kill(2) calls a second
        (void)reap_dead_clients(*ctl_);
        last_reap_ns_ = now;
      }
      cv_.wait_for(lock, interval_, [this] { return stop_; });
    }
  }
  ControlRegion* ctl_;
  std::uint64_t epoch_;
  nanoseconds interval_;
  std::uint64_t last_reap_ns_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the rest is set
};

Daemon::Daemon(MmapSegment segment, const Geometry& g, DaemonOptions options)
    : Endpoint(Role::Daemon, std::move(segment), g, options.endpoint),
      remove_on_shutdown_(options.remove_on_shutdown) {}

Daemon::Daemon(Daemon&&) noexcept = default;

Result<Daemon> Daemon::create(const std::string& path, std::size_t size, std::uint16_t version,
                              DaemonOptions options) {
  if (path.empty()) return make_error(ErrorCode::InvalidArgument, "segment path is empty");
  if (options.heartbeat_interval.count() < 0 || options.heartbeat_timeout <= options.heartbeat_interval)
    return make_error(ErrorCode::InvalidArgument,
                      "heartbeat_timeout must be longer than heartbeat_interval (>= 0)");
  auto g = compute_geometry(size, options.slot_size);
  if (!g) return g.error();
  auto manager = std::make_unique<RecoveryManager>(path);
  auto start = manager->register_daemon(options.heartbeat_timeout);
  if (!start) return start.error();
  if (*start != DaemonStart::Fresh && !options.take_over)
    return make_error(ErrorCode::AlreadyExists, "a segment left by a dead daemon exists at '" + path +
                                                    "' and take_over is off; remove it with "
                                                    "'memlink-shm cleanup " + path + "'");
  auto daemon = *start == DaemonStart::Fresh ? create_fresh(path, *g, version, options)
                                             : take_over(path, version, options);
  if (!daemon) return daemon;  // the manager's destructor removes the locks it made
  // A fresh segment's identity lock (K-LOCK), before its magic is out: a
  // client that can connect, and anyone who can make another name for it,
  // finds the lock held. A takeover took it in register_daemon.
  if (auto s = manager->hold_identity(); !s) return s.error();
  Daemon& d = *daemon;
  if (*start == DaemonStart::Fresh) publish_control(d.segment_.data());  // release: valid to others now
  d.start_.kind = *start;
  d.fence_ = Fence{&d.ctl_->epoch, d.start_.epoch};
  (void)manager->write_pid_file(platform::current_pid());
  if (options.heartbeat_interval.count() > 0)
    d.heartbeat_thread_ = std::make_unique<HeartbeatThread>(d.ctl_, d.start_.epoch, options.heartbeat_interval);
  MEMLINK_CRASH_POINT("recovery.before-serving");
  d.ctl_->flags.fetch_and(~FLAG_SHUTDOWN, std::memory_order_acq_rel);
  d.ctl_->daemon_alive.store(1, std::memory_order_release);
  manager->startup_done();
  d.recovery_ = std::move(manager);
  return daemon;
}

Result<Daemon> Daemon::create_fresh(const std::string& path, const Geometry& geometry, std::uint16_t version,
                                    const DaemonOptions& options) {
  auto seg = MmapSegment::create(path, geometry.segment_size);
  if (!seg) return seg.error();
  std::byte* base = seg->data();
  format_control(base, geometry, version, platform::current_pid(), platform::monotonic_ns(), first_epoch(options.age));
  for (Direction d : {Direction::ClientToDaemon, Direction::DaemonToClient}) {
    auto rings = PriorityRingBuffer::format(base, seg->size(), geometry, d, options.age);
    if (!rings) {
      (void)MmapSegment::remove(path);
      return rings.error();
    }
  }
  control_of(base)->heartbeat_interval_ns.store(static_cast<std::uint64_t>(options.heartbeat_interval.count()),
                                               std::memory_order_relaxed);
  Daemon daemon(std::move(seg.value()), geometry, options);
  daemon.remove_on_shutdown_ = options.remove_on_shutdown;
  // Attached before the segment is published: once the magic is out,
  // clients connect and peers write into the rings, and a startup that
  // then failed on what they wrote (attach validates head/tail) would
  // delete a segment others had already used, evidence included.
  if (auto s = daemon.attach_rings(); !s) {
    daemon.shutdown();
    return s.error();
  }
  daemon.start_.epoch = daemon.ctl_->epoch.load(std::memory_order_relaxed);
  return daemon;  // unpublished: create() stores the magic once it holds the identity lock
}

namespace {

// SPEC K-TAKEOVER: the epoch moves on by one, skipping 0 at its wrap (a lost
// segment reads 0, and no daemon may serve it). seq_cst: one half of the
// fencing pattern (RingBuffer::take has the other). The CAS only races a
// takeover nobody can run beside ours (we hold the lock).
std::uint64_t advance_epoch(ControlRegion& ctl) {
  std::uint64_t seen = ctl.epoch.load(std::memory_order_relaxed);
  while (
      !ctl.epoch.compare_exchange_weak(seen, next_epoch(seen), std::memory_order_seq_cst, std::memory_order_relaxed)) {
  }
  return next_epoch(seen);
}

}  // namespace

// SPEC K-TAKEOVER: keep every message, increment the epoch (which fences the
// previous daemon if it still runs), recover the inbound tails.
Result<Daemon> Daemon::take_over(const std::string& path, std::uint16_t version,
                                 const DaemonOptions& options) {
  auto seg = MmapSegment::open(path, MmapSegment::Access::ReadWrite,
                               options.endpoint.allow_foreign_owner ? MmapSegment::Owner::Anyone : MmapSegment::Owner::Me);
  if (!seg) return seg.error();
  auto g = validate_control(seg->data(), seg->size());
  if (seg->lost()) return seg->lost_error();
  if (!g)
    return make_error(g.code() == ErrorCode::ProtocolMismatch ? ErrorCode::ProtocolMismatch : ErrorCode::CorruptSegment,
                      g.error().detail + " (cannot take over '" + path +
                                                     "'; remove it with 'memlink-shm cleanup " + path + "')");
  ControlRegion* ctl = control_of(seg->data());
  if (ctl->protocol_version != version)
    return make_error(ErrorCode::ProtocolMismatch,
                      "the segment at '" + path + "' speaks protocol version " +
                          std::to_string(ctl->protocol_version) + ", this daemon " + std::to_string(version));
  if (ctl->flags.load(std::memory_order_acquire) & FLAG_POISONED)
    return make_error(ErrorCode::CorruptSegment, "control.flags: the segment at '" + path +
                                                     "' is poisoned; remove it with 'memlink-shm cleanup'");
  Daemon daemon(std::move(seg.value()), *g, options);
  daemon.shut_down_ = true;  // until it serves: a failure must not flag SHUTDOWN
  if (auto s = daemon.attach_rings(); !s) return s.error();
  daemon.start_.previous_pid = ctl->daemon_pid.load(std::memory_order_relaxed);
  daemon.start_.epoch = advance_epoch(*ctl);
  MEMLINK_CRASH_POINT("recovery.after-epoch");
  ctl->daemon_pid.store(platform::current_pid(), std::memory_order_relaxed);
  ctl->heartbeat_interval_ns.store(static_cast<std::uint64_t>(options.heartbeat_interval.count()),
                                   std::memory_order_relaxed);
  ctl->heartbeat_ns.store(platform::monotonic_ns(), std::memory_order_release);
  // The reading client's token, if its holder died.
  std::uint32_t reader = ctl->d2c_consumer_pid.load(std::memory_order_acquire);
  if (reader != 0 && !owner_process_alive(reader))
    ctl->d2c_consumer_pid.compare_exchange_strong(reader, 0, std::memory_order_acq_rel);
  // Slots on the rings we consume; a fenced predecessor that is alive keeps
  // the one slot it may hold until it finishes or dies. This pass runs once,
  // so it asks every holder's liveness at once instead of first watching
  // the word for stale_after (SPEC K-TAKEOVER, K-STALE).
  RecoveryPolicy at_takeover = options.endpoint.recovery;
  at_takeover.stale_after = nanoseconds(0);
  daemon.start_.recovered = daemon.tails_.run(daemon.inbound_, at_takeover);
  daemon.shut_down_ = false;
  daemon.remove_on_shutdown_ = options.remove_on_shutdown;
  return daemon;
}

Daemon::~Daemon() {
  if (!shut_down_ && ctl_ != nullptr) shutdown();
}

bool Daemon::fenced() const noexcept {
  if (ctl_ == nullptr) return false;
  // A lost segment reads as zeros (epoch 0): that is not a successor. The
  // load comes first: it may be the access that faults and loses it.
  const std::uint64_t now = ctl_->epoch.load(std::memory_order_seq_cst);
  // No daemon serves epoch 0 (K-TAKEOVER skips it): zeroed pages (holes
  // punched in the file, a peer's zeros) are a corrupt segment, not a successor.
  return now != start_.epoch && now != 0 && !segment_.lost();
}

Status Daemon::usable() const {
  if (ctl_ == nullptr || shut_down_) return make_error(ErrorCode::Disconnected, "daemon has shut down");
  const std::uint64_t now = ctl_->epoch.load(std::memory_order_seq_cst);
  // A lost mapping reads epoch 0, which no daemon serves (K-TAKEOVER skips
  // it), so it never passes here: the loss is asked only off the hot path.
  if (now == start_.epoch) return {};
  // Lost before or by the load above: the truncation, not a successor.
  if (segment_.lost()) return segment_.lost_error();
  if (now == 0)
    return make_error(ErrorCode::CorruptSegment,
                      "control.epoch: reads 0, which no daemon serves (SPEC K-TAKEOVER): the segment's pages were "
                      "zeroed under this daemon (epoch " +
                          std::to_string(start_.epoch) + ")");
  return make_error(ErrorCode::Disconnected,
                      "fenced: daemon pid " + std::to_string(ctl_->daemon_pid.load(std::memory_order_relaxed)) +
                          " took over '" + path() + "' (epoch " + std::to_string(now) + "; this daemon served epoch " +
                          std::to_string(start_.epoch) + ")");
}

bool Daemon::is_connected() const { return usable().ok(); }

Status Daemon::set_backpressure(std::uint32_t permille) {
  if (auto s = usable(); !s) return s;
  if (permille > BACKPRESSURE_MAX)
    return make_error(ErrorCode::InvalidArgument, "backpressure " + std::to_string(permille) +
                                                      " is above " + std::to_string(BACKPRESSURE_MAX));
  ctl_->backpressure.store(permille, std::memory_order_relaxed);
  return {};
}

void Daemon::heartbeat() noexcept {
  if (ctl_ != nullptr && !fenced())
    ctl_->heartbeat_ns.store(platform::monotonic_ns(), std::memory_order_release);
}

void Daemon::shutdown() {
  if (shut_down_ || ctl_ == nullptr) return;
  heartbeat_thread_.reset();
  if (fenced()) {
    // The segment is our successor's: leave it, and its lock, alone.
    shut_down_ = true;
    recovery_.reset();
    return;
  }
  shut_down_ = true;
  ctl_->flags.fetch_or(FLAG_SHUTDOWN, std::memory_order_acq_rel);
  ctl_->daemon_alive.store(0, std::memory_order_release);
  // Wake everyone so they see the flag (SPEC T-SHUTDOWN).
  for (auto [fw, fx] : {std::pair{out_signal_, &out_signal_fx_}, std::pair{in_space_, &in_space_fx_},
                        std::pair{out_space_, &out_space_fx_}})
    (void)wake_sleepers(*fw, *fx, Change::IsTheWord);
  // A poisoned segment is evidence (an endpoint found a ring's head/tail
  // inconsistent): keep it for 'memlink-shm inspect'; a successor refuses it
  // and 'cleanup' removes it (SPEC C-FLAGS).
  const bool poisoned = (ctl_->flags.load(std::memory_order_acquire) & FLAG_POISONED) != 0;
  if (remove_on_shutdown_ && !poisoned) (void)segment_.remove_if_same();  // never what replaced it (SPEC 9b)
  if (recovery_) recovery_->release();
  recovery_.reset();
}

// ------------------------------------------------------------------ Client

Client::Client(MmapSegment segment, const Geometry& g, EndpointOptions options)
    : Endpoint(Role::Client, std::move(segment), g, options) {}

Result<Client> Client::connect(const std::string& path, std::uint16_t version,
                               EndpointOptions options) {
  auto seg = MmapSegment::open(path, MmapSegment::Access::ReadWrite,
                               options.allow_foreign_owner ? MmapSegment::Owner::Anyone : MmapSegment::Owner::Me);
  if (!seg) return seg.error();
  auto g = validate_control(seg->data(), seg->size());
  if (seg->lost()) return seg->lost_error();  // shrank while we validated it: zeros were read
  if (!g) return g.error();
  const ControlRegion* ctl = control_of(seg->data());
  if (ctl->protocol_version != version)
    return make_error(ErrorCode::ProtocolMismatch,
                      "daemon at '" + path + "' speaks protocol version " +
                          std::to_string(ctl->protocol_version) + ", client asked for " +
                          std::to_string(version));
  const std::uint32_t flags = ctl->flags.load(std::memory_order_acquire);
  if (flags & FLAG_POISONED)
    return make_error(ErrorCode::CorruptSegment,
                      "control.flags: segment is poisoned (an endpoint found a ring's head/tail "
                      "inconsistent); run 'memlink-shm inspect " + path + "'");
  if ((flags & FLAG_SHUTDOWN) || ctl->daemon_alive.load(std::memory_order_acquire) == 0)
    return make_error(ErrorCode::Disconnected, "daemon at '" + path + "' has shut down");
  Client client(std::move(seg.value()), *g, options);
  client.shut_down_ = true;  // not counted yet: a failed attach must not decrement
  if (auto s = client.attach_rings(); !s) return s.error();
  // SPEC K-CLIENTS: forget clients that were killed, then register (a full
  // table still connects; that client just cannot be reaped if killed).
  ControlRegion& c = *client.ctl_;
  (void)reap_dead_clients(c);
  const std::uint32_t me = platform::current_pid();
  for (std::size_t i = 0; i < CLIENT_TABLE_SIZE && client.client_entry_ < 0; ++i) {
    std::uint32_t free_entry = 0;
    if (c.client_pids[i].compare_exchange_strong(free_entry, me, std::memory_order_acq_rel))
      client.client_entry_ = static_cast<int>(i);
  }
  c.client_count.fetch_add(1, std::memory_order_acq_rel);
  client.shut_down_ = false;
  return client;
}

Client::~Client() { shutdown(); }

void Client::shutdown() {
  if (shut_down_ || ctl_ == nullptr) return;
  shut_down_ = true;
  if (holds_reader_) {
    std::uint32_t me = platform::current_pid();
    ctl_->d2c_consumer_pid.compare_exchange_strong(me, 0, std::memory_order_acq_rel);
    holds_reader_ = false;
  }
  if (client_entry_ >= 0) {
    // Our entry; if it no longer holds our pid a reaper (or a peer) already
    // took us off the count, so do not decrement twice.
    std::uint32_t me = platform::current_pid();
    const bool mine = ctl_->client_pids[client_entry_].compare_exchange_strong(me, 0, std::memory_order_acq_rel);
    client_entry_ = -1;
    if (!mine) return;
  }
  decrement_client_count(*ctl_);
}

Status Client::usable() const {
  if (ctl_ == nullptr || shut_down_) return make_error(ErrorCode::Disconnected, "client has shut down");
  if (segment_.lost()) return segment_.lost_error();
  if (ctl_->flags.load(std::memory_order_acquire) & FLAG_SHUTDOWN)
    return make_error(ErrorCode::Disconnected, "daemon at '" + path() + "' has shut down");
  return {};
}

bool Client::is_connected() const { return usable().ok() && peer_alive().ok(); }

std::uint64_t Client::daemon_timeout_ns() const noexcept {
  if (options_.daemon_timeout.count() > 0) return static_cast<std::uint64_t>(options_.daemon_timeout.count());
  const std::uint64_t interval = ctl_->heartbeat_interval_ns.load(std::memory_order_relaxed);
  // 0 (a segment from before heartbeats were stamped) or garbage: 1 s.
  return interval == 0 || interval > 60'000'000'000ULL ? 1'000'000'000ULL : 10 * interval;
}

// SPEC K-HEARTBEAT: dead (flag, or no such process) or unresponsive (no
// heartbeat within the timeout). A new daemon that takes over makes the
// same client connected again: the mapping is the same segment.
Status Client::peer_alive() const {
  Status s = daemon_liveness();
  // A lost segment reads as zeros: daemon_pid 0, no heartbeat. Say why.
  if (!s && segment_.lost()) return segment_.lost_error();
  return s;
}

Status Client::daemon_liveness() const {
  const std::uint32_t pid = ctl_->daemon_pid.load(std::memory_order_relaxed);
  if (ctl_->daemon_alive.load(std::memory_order_acquire) == 0 || !owner_process_alive(pid))
    return make_error(ErrorCode::Disconnected,
                      "daemon pid " + std::to_string(pid) + " of '" + path() + "' is not running");
  const std::uint64_t hb = ctl_->heartbeat_ns.load(std::memory_order_acquire);
  const std::uint64_t age = heartbeat_age_ns(hb, platform::monotonic_ns());
  if (age <= daemon_timeout_ns()) return {};
  // Old by the clock. Condemn a live process only after watching its
  // heartbeat stay still ourselves (heartbeat.hpp); remember the verdict so
  // that every later sleep slice does not watch again.
  if (hb != condemned_heartbeat_ && !heartbeat_stays_still(*ctl_, hb)) return {};
  condemned_heartbeat_ = hb;
  return make_error(ErrorCode::Disconnected,
                    "daemon pid " + std::to_string(pid) + " of '" + path() + "' is unresponsive: " +
                        (age == kHeartbeatFromTheFuture ? std::string("its heartbeat is stamped in the future and does not move")
                                                        : "no heartbeat for " + std::to_string(age / 1000000) + " ms"));
}

Status Client::before_read() {
  if (holds_reader_) return {};
  if (ctl_ == nullptr) return make_error(ErrorCode::Disconnected, "client has shut down");
  const std::uint32_t me = platform::current_pid();
  std::uint32_t cur = ctl_->d2c_consumer_pid.load(std::memory_order_acquire);
  for (;;) {
    if (cur == me) break;
    if (cur != 0 && owner_process_alive(cur))
      return make_error(ErrorCode::InvalidState,
                        "the daemon-to-client rings are being read by client pid " + std::to_string(cur) +
                            " (one consumer per ring)");
    if (ctl_->d2c_consumer_pid.compare_exchange_weak(cur, me, std::memory_order_acq_rel)) break;
  }
  holds_reader_ = true;
  return {};
}

}  // namespace memlink::shm
