#include "memlink/shm/transport.hpp"

#include <algorithm>
#include <atomic>
#include <limits>

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
  out_seq_ = daemon ? &ctl_->daemon_seq : &ctl_->client_seq;
  const std::string& p = segment_.path();
  in_signal_fx_ = Futex(&in_signal_->word, futex_name(p, ctl_, in_signal_));
  out_signal_fx_ = Futex(&out_signal_->word, futex_name(p, ctl_, out_signal_));
  in_space_fx_ = Futex(&in_space_->word, futex_name(p, ctl_, in_space_));
  out_space_fx_ = Futex(&out_space_->word, futex_name(p, ctl_, out_space_));
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
      out_seq_(o.out_seq_),
      shut_down_(o.shut_down_) {
  o.ctl_ = nullptr;
  o.shut_down_ = true;
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

// SPEC F-WAKE, the waker's half: the state change (slot published, or slot
// freed) is already stored; the seq_cst fence orders it before the load of
// `waiters`. Paired with the fence in wait_until(), either the sleeper sees
// the new state, or we see the sleeper and bump + wake.
void Endpoint::notify(FutexWord& fw, const Futex& fx) const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (fw.waiters.load(std::memory_order_relaxed) != 0) {
    fw.word.fetch_add(1, std::memory_order_release);
    (void)fx.wake_all();
  }
}

Status Endpoint::signal() {
  if (auto s = usable(); !s) return s;
  out_signal_->word.fetch_add(1, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (out_signal_->waiters.load(std::memory_order_relaxed) != 0) {
    if (auto r = out_signal_fx_.wake_all(); !r) return r.error();
  }
  return {};
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
  // Checked before a sequence number is taken, so that a single writer's
  // sequence numbers are dense (SPEC T-SEQ).
  if (auto s = ring.check_writable(data.size()); !s) return s.error();
  const std::uint64_t seq = out_seq_->fetch_add(1, std::memory_order_relaxed);
  auto r = ring.write_slot(data, seq);
  if (!r) {
    note_corruption(outbound_, r.error());
    return r;
  }
  if (role_ == Role::Client) ctl_->client_head.fetch_add(1, std::memory_order_relaxed);
  notify(*out_signal_, out_signal_fx_);
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
      return make_error(ErrorCode::Timeout, r.error().detail + "; no slot freed within " +
                                                std::to_string(timeout.count() / 1000000) + " ms");
    const RingBuffer& ring = outbound_.ring(p);
    auto s = wait_until([&] { return !ring.is_full(); }, *out_space_, out_space_fx_,
                        nanoseconds(deadline - now));
    if (!s && s.code() != ErrorCode::Timeout) return s.error();
  }
}

Result<MessageInfo> Endpoint::read(std::span<std::byte> out) {
  if (ctl_ == nullptr) return make_error(ErrorCode::Disconnected, "endpoint was moved from");
  if (auto s = before_read(); !s) return s.error();
  auto r = inbound_.read(out);
  if (r.ok() || r.code() == ErrorCode::CorruptSegment) {
    // A dropped corrupt slot frees space too.
    if (r.ok() && role_ == Role::Daemon) ctl_->daemon_tail.fetch_add(1, std::memory_order_relaxed);
    notify(*in_space_, in_space_fx_);
  }
  if (!r) note_corruption(inbound_, r.error());
  return r;
}

Result<Message> Endpoint::read() {
  std::vector<std::byte> buf(geometry_.slot_size);
  auto r = read(std::span<std::byte>(buf));
  if (!r) return r.error();
  buf.resize(r->length);
  return Message{r->priority, r->sequence, std::move(buf)};
}

Result<MessageInfo> Endpoint::peek() const {
  if (ctl_ == nullptr) return make_error(ErrorCode::Disconnected, "endpoint was moved from");
  return inbound_.peek();
}

Status Endpoint::wait(std::optional<nanoseconds> timeout) {
  if (ctl_ == nullptr) return make_error(ErrorCode::Disconnected, "endpoint was moved from");
  return wait_until([this] { return inbound_.has_message(); }, *in_signal_, in_signal_fx_, timeout);
}

// SPEC T-WAIT and F-WAKE, the sleeper's half.
template <class Pred>
Status Endpoint::wait_until(Pred ready, FutexWord& fw, const Futex& fx,
                            std::optional<nanoseconds> timeout) {
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
        if (platform::monotonic_ns() >= spin_end) break;
      }
      platform::cpu_relax();
    }
    if (options_.wait_strategy == WaitStrategy::Spin) return ready() ? Status{} : Status{timed_out()};
  }

  for (;;) {
    if (auto s = usable(); !s) return ready() ? Status{} : s;
    if (auto s = peer_alive(); !s) return ready() ? Status{} : s;
    fw.waiters.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
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
    const nanoseconds slice = std::min(nanoseconds(deadline - now), kSleepSlice);
    Status s = fx.wait(seen, slice);
    fw.waiters.fetch_sub(1, std::memory_order_relaxed);
    on_wait_slice();
    if (!s && s.code() != ErrorCode::Timeout) return s;
  }
}

// ------------------------------------------------------------------ Daemon

Daemon::Daemon(MmapSegment segment, const Geometry& g, DaemonOptions options)
    : Endpoint(Role::Daemon, std::move(segment), g, options.endpoint),
      remove_on_shutdown_(options.remove_on_shutdown) {}

Result<Daemon> Daemon::create(const std::string& path, std::size_t size, std::uint16_t version,
                              DaemonOptions options) {
  auto g = compute_geometry(size, options.slot_size);
  if (!g) return g.error();
  auto seg = MmapSegment::create(path, size);
  if (!seg) return seg.error();
  std::byte* base = seg->data();
  format_control(base, *g, version, platform::current_pid(), platform::monotonic_ns());
  for (Direction d : {Direction::ClientToDaemon, Direction::DaemonToClient}) {
    auto rings = PriorityRingBuffer::format(base, seg->size(), *g, d);
    if (!rings) {
      (void)MmapSegment::remove(path);
      return rings.error();
    }
  }
  publish_control(base);  // release: the segment is now valid to others
  Daemon daemon(std::move(seg.value()), *g, options);
  if (auto s = daemon.attach_rings(); !s) {
    daemon.shutdown();
    return s.error();
  }
  return daemon;
}

Daemon::~Daemon() {
  if (!shut_down_ && ctl_ != nullptr) shutdown();
}

Status Daemon::usable() const {
  if (ctl_ == nullptr || shut_down_) return make_error(ErrorCode::Disconnected, "daemon has shut down");
  return {};
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
  if (ctl_ != nullptr) ctl_->heartbeat_ns.store(platform::monotonic_ns(), std::memory_order_relaxed);
}

void Daemon::shutdown() {
  if (shut_down_ || ctl_ == nullptr) return;
  shut_down_ = true;
  ctl_->flags.fetch_or(FLAG_SHUTDOWN, std::memory_order_acq_rel);
  ctl_->daemon_alive.store(0, std::memory_order_release);
  // Wake everyone so they see the flag (SPEC T-SHUTDOWN).
  for (auto [fw, fx] : {std::pair{out_signal_, &out_signal_fx_}, std::pair{in_space_, &in_space_fx_},
                        std::pair{out_space_, &out_space_fx_}}) {
    fw->word.fetch_add(1, std::memory_order_release);
    (void)fx->wake_all();
  }
  if (remove_on_shutdown_) (void)MmapSegment::remove(segment_.path());
}

// ------------------------------------------------------------------ Client

Client::Client(MmapSegment segment, const Geometry& g, EndpointOptions options)
    : Endpoint(Role::Client, std::move(segment), g, options) {}

Result<Client> Client::connect(const std::string& path, std::uint16_t version,
                               EndpointOptions options) {
  auto seg = MmapSegment::open(path);
  if (!seg) return seg.error();
  auto g = validate_control(seg->data(), seg->size());
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
  client.ctl_->client_count.fetch_add(1, std::memory_order_acq_rel);
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
  // Never below zero, even if a peer scribbled on the counter.
  std::uint32_t n = ctl_->client_count.load(std::memory_order_relaxed);
  while (n > 0 && !ctl_->client_count.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel)) {
  }
}

Status Client::usable() const {
  if (ctl_ == nullptr || shut_down_) return make_error(ErrorCode::Disconnected, "client has shut down");
  if (ctl_->flags.load(std::memory_order_acquire) & FLAG_SHUTDOWN)
    return make_error(ErrorCode::Disconnected, "daemon at '" + path() + "' has shut down");
  return {};
}

bool Client::is_connected() const {
  if (!usable()) return false;
  if (ctl_->daemon_alive.load(std::memory_order_acquire) == 0) return false;
  return platform::process_exists(ctl_->daemon_pid.load(std::memory_order_relaxed));
}

Status Client::peer_alive() const {
  const std::uint32_t pid = ctl_->daemon_pid.load(std::memory_order_relaxed);
  if (ctl_->daemon_alive.load(std::memory_order_acquire) == 0 || !platform::process_exists(pid))
    return make_error(ErrorCode::Disconnected,
                      "daemon pid " + std::to_string(pid) + " of '" + path() + "' is not running");
  return {};
}

Status Client::before_read() {
  if (holds_reader_) return {};
  if (ctl_ == nullptr) return make_error(ErrorCode::Disconnected, "client has shut down");
  const std::uint32_t me = platform::current_pid();
  std::uint32_t cur = ctl_->d2c_consumer_pid.load(std::memory_order_acquire);
  for (;;) {
    if (cur == me) break;
    if (cur != 0 && platform::process_exists(cur))
      return make_error(ErrorCode::InvalidState,
                        "the daemon-to-client rings are being read by client pid " + std::to_string(cur) +
                            " (one consumer per ring)");
    if (ctl_->d2c_consumer_pid.compare_exchange_weak(cur, me, std::memory_order_acq_rel)) break;
  }
  holds_reader_ = true;
  return {};
}

}  // namespace memlink::shm
