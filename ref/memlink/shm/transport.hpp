// The daemon/client transport (SPEC T-*): one daemon creates a segment and
// consumes the client-to-daemon rings; clients connect, write to them, and
// consume the daemon-to-client rings (one reading client at a time).
//
//   client ──write──▶ [c2d: critical | high | low] ──read──▶ daemon
//   client ◀──read─── [d2c: critical | high | low] ◀──write── daemon
//
// Signalling: a writer bumps the reader's futex word after publishing; the
// reader sleeps on it only when it finds nothing (SPEC F-WAKE). A writer that
// finds a ring full can sleep on the ring direction's "space" futex, which
// the reader bumps after freeing a slot.
//
// Contract: write(), write_blocking() and signal() may be called from any
// thread; read(), peek() and wait() by one thread of one process at a time per
// direction (the consumer).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "memlink/shm/control.hpp"
#include "memlink/shm/futex.hpp"
#include "memlink/shm/mmap.hpp"
#include "memlink/shm/pring.hpp"
#include "memlink/shm/recovery.hpp"
#include "memlink/shm/segment_age.hpp"

namespace memlink::shm {

// How an endpoint waits for a message or for space (SPEC T-WAIT).
enum class WaitStrategy : std::uint8_t {
  Spin,      // poll until the deadline; lowest latency, burns a CPU
  Block,     // sleep on the futex at once; cheapest when idle
  Adaptive,  // poll for `spin_budget`, then sleep on the futex
};

constexpr std::string_view to_string(WaitStrategy w) noexcept {
  return w == WaitStrategy::Spin ? "spin" : w == WaitStrategy::Block ? "block" : "adaptive";
}
std::optional<WaitStrategy> wait_strategy_from_string(std::string_view s) noexcept;

struct EndpointOptions {
  WaitStrategy wait_strategy = WaitStrategy::Adaptive;
  std::chrono::nanoseconds spin_budget = std::chrono::microseconds(50);
  // SPEC T-WAIT: a sleep on a futex lasts at most this long before the
  // sleeper looks again (at the peer's liveness, at its tail's recovery).
  // A lost wake-up costs a slice; the wake-up check lengthens it so that one
  // cannot pass for latency.
  std::chrono::nanoseconds sleep_slice = std::chrono::milliseconds(100);
  // Client: the daemon counts as unresponsive when its heartbeat is older
  // than this (SPEC K-HEARTBEAT). 0: ten heartbeat intervals.
  std::chrono::nanoseconds daemon_timeout{0};
  // How this endpoint, as the consumer of its inbound rings, recovers slots
  // left by dead processes (SPEC K-STALE).
  RecoveryPolicy recovery{};
  // SPEC M-OWNER: connect to (or take over) a segment another user owns.
  // That user can rewrite or truncate it at any time; off by default.
  bool allow_foreign_owner = false;
};

struct DaemonOptions {
  EndpointOptions endpoint{};
  std::uint32_t slot_size = MAX_SLOT_SIZE;
  bool remove_on_shutdown = true;  // unlink the segment when shut down cleanly
  // SPEC K-HEARTBEAT: a thread stamps heartbeat_ns this often. 0: no
  // thread; the application stamps it (heartbeat(), and every wait() slice).
  std::chrono::nanoseconds heartbeat_interval = std::chrono::milliseconds(100);
  // SPEC K-TAKEOVER: a daemon that holds the lock but has not stamped its
  // heartbeat for this long may be replaced (and is fenced, K-FENCE).
  std::chrono::nanoseconds heartbeat_timeout = std::chrono::seconds(1);
  // Take over a segment left by a dead or unresponsive daemon (keeping its
  // messages). If false, such a segment is AlreadyExists.
  bool take_over = true;
  // A fresh segment is formatted as if it had served for a long time, its
  // positions and epoch just before their wraps (SPEC C-AGE): for tests
  // that must reach a counter's wrap in a few messages.
  SegmentAge age = SegmentAge::Fresh;
};

// How a daemon came to serve its segment.
struct DaemonStartInfo {
  DaemonStart kind = DaemonStart::Fresh;
  std::uint64_t epoch = 1;
  std::uint32_t previous_pid = 0;       // the replaced daemon, if any
  RecoveryReport recovered{};           // slots recovered at takeover
};

struct Message {
  Priority priority = Priority::Low;
  std::uint64_t sequence = 0;
  std::vector<std::byte> payload;
};

inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A slot lent to its writer by Endpoint::loan() (SPEC T-LOAN).
struct Loan {
  Priority priority = Priority::Low;
  SlotLoan slot{};            // slot.bytes: where to write the payload
  std::uint64_t sequence = 0;  // the slot's position in its ring (T-SEQ)
};

// What Daemon and Client share: one mapping, an inbound and an outbound
// direction, and the futexes between them.
class Endpoint {
 public:
  // A moved-from endpoint is inert: its destructor leaves the segment alone.
  Endpoint(Endpoint&& other) noexcept;
  Endpoint& operator=(Endpoint&&) = delete;
  virtual ~Endpoint() = default;

  // Sends on the outbound direction. Ok means the message is Ready in the
  // segment (acknowledged). Errors: MessageTooLarge, Full, Disconnected,
  // CorruptSegment.
  Result<SlotId> write(Priority p, std::span<const std::byte> data);
  Result<SlotId> write(Priority p, std::string_view data) { return write(p, as_bytes(data)); }

  // Like write(), but when the priority's ring is full waits (per the wait
  // strategy) for a slot to be freed, up to `timeout`; then Timeout.
  Result<SlotId> write_blocking(Priority p, std::span<const std::byte> data,
                                std::chrono::nanoseconds timeout);

  // Receives from the inbound direction, highest priority first (SPEC R-ORDER).
  Result<MessageInfo> read(std::span<std::byte> out);
  Result<Message> read();
  Result<MessageInfo> peek() const;

  // read() in two steps, for at-least-once processing (SPEC K-READING):
  // take() copies the oldest message into `out` and leaves its slot Reading;
  // finish() frees the slot. If this process dies in between, the next
  // consumer receives the message again (same sequence number). Process
  // the message, then finish(); one take() outstanding at a time.
  Result<MessageInfo> take(std::span<std::byte> out);
  Status finish(const MessageInfo& m);

  // Zero-copy (SPEC T-LOAN). loan() claims a slot of priority p and lends
  // its first `size` payload bytes, in the segment; write them, then
  // commit() the first `length` of them (length <= size), which publishes
  // the message as write() does. Until committed the slot is held Writing by
  // this process: the consumer waits at it, and only this process's death
  // frees it (K-WRITING), so commit every loan, soon. Errors: loan() as
  // write(); commit() InvalidArgument (length > size; the loan stays
  // open) or InvalidState (the slot was reclaimed; not sent).
  Result<Loan> loan(Priority p, std::size_t size);
  Result<SlotId> commit(const Loan& loan, std::size_t length);
  // take() without the copy: the payload is read where it lies, verified
  // (V-SLOT) when taken; release() (= finish()) hands the slot back. A peer
  // that can write the segment can change the bytes after the check: copy
  // (take/read) when the peer is not trusted. One take outstanding at a time.
  Result<SlotView> take_view();
  Status release(const SlotView& view) { return finish(view.info); }

  // Recovers inbound slots left by dead processes now (read() and wait()
  // also do, when the inbound tail does not move).
  RecoveryReport recover_inbound();

  // Wakes the peer's wait() (write() already does this).
  Status signal();

  // Returns Ok when a message can be read, Timeout when none came in time
  // (nullopt: wait forever), Disconnected when the peer is gone, Interrupted
  // if a signal arrived while sleeping.
  Status wait(std::optional<std::chrono::nanoseconds> timeout);

  virtual bool is_connected() const;
  std::uint16_t protocol_version() const noexcept { return ctl_->protocol_version; }
  std::uint32_t backpressure() const noexcept;  // 0..1000
  double backpressure_ratio() const noexcept { return backpressure() / 1000.0; }
  std::uint32_t client_count() const noexcept;
  std::uint64_t epoch() const noexcept;

  WaitStrategy wait_strategy() const noexcept { return options_.wait_strategy; }
  void set_wait_strategy(WaitStrategy w) noexcept { options_.wait_strategy = w; }

  const Geometry& geometry() const noexcept { return geometry_; }
  // The whole mapped segment, for inspection (conformance, tests).
  std::span<const std::byte> segment_bytes() const noexcept { return {segment_.data(), segment_.size()}; }
  const std::string& path() const noexcept { return segment_.path(); }
  PriorityRingBuffer& inbound() noexcept { return inbound_; }
  PriorityRingBuffer& outbound() noexcept { return outbound_; }
  ControlRegion& control() noexcept { return *ctl_; }

 protected:
  enum class Role : std::uint8_t { Daemon, Client };
  Endpoint(Role role, MmapSegment segment, const Geometry& g, EndpointOptions options);
  Status attach_rings();

  // After a write or commit is acknowledged: T-COUNTERS, F-WAKE.
  void after_publish();
  // take() and take_view(): one attempt, then recovery of a dead holder
  // at the tail and one more attempt, then the error's side effects.
  template <class TakeOnce>
  auto take_inbound(TakeOnce take_once);

  // Ok, or why this endpoint may not use the segment now.
  virtual Status usable() const = 0;
  // Before reading: lets the client take the one-reader token.
  virtual Status before_read() { return {}; }
  // Called while waiting in slices, for the daemon's heartbeat.
  virtual void on_wait_slice() {}
  // Ok while the peer can still answer; checked before each sleep slice.
  virtual Status peer_alive() const { return {}; }

  // The fence take() must pass (the daemon's epoch), or null.
  virtual const Fence* fence() const noexcept { return nullptr; }

  template <class Pred>
  Status wait_until(Pred ready, FutexWord& fw, const Futex& fx,
                    std::optional<std::chrono::nanoseconds> timeout, bool as_consumer);
  void notify(FutexWord& fw, const Futex& fx) const;
  void note_corruption(const PriorityRingBuffer& rings, const Error& e);
  // An idle consumer's look at its inbound head/tail, once per sleep slice
  // (SPEC R-POSITIONS): broken positions poison the segment.
  Status check_inbound_positions();

  Role role_;
  MmapSegment segment_;
  ControlRegion* ctl_ = nullptr;
  Geometry geometry_{};
  EndpointOptions options_{};
  PriorityRingBuffer inbound_;
  PriorityRingBuffer outbound_;
  FutexWord* in_signal_ = nullptr;   // I sleep here for messages
  FutexWord* out_signal_ = nullptr;  // the peer sleeps here
  FutexWord* in_space_ = nullptr;    // I bump it after freeing an inbound slot
  FutexWord* out_space_ = nullptr;   // I sleep here when outbound is full
  Futex in_signal_fx_{nullptr};
  Futex out_signal_fx_{nullptr};
  Futex in_space_fx_{nullptr};
  Futex out_space_fx_{nullptr};
  bool shut_down_ = false;
  // A client's client_pids entry (K-CLIENTS), where it also counts what it
  // publishes (T-COUNTERS); -1 for the daemon, or if the table was full.
  int client_entry_ = -1;
  TailRecovery tails_;
  std::vector<std::byte> read_buffer_;  // read()'s copy, before it knows the length
};

class Daemon final : public Endpoint {
 public:
  // Creates the segment at `path` (see MmapSegment) and formats it for
  // protocol `version`. InvalidArgument if the size cannot hold one slot per
  // priority and direction; AlreadyExists if a segment is already there.
  static Result<Daemon> create(const std::string& path, std::size_t size, std::uint16_t version,
                               DaemonOptions options = {});

  Daemon(Daemon&&) noexcept;
  ~Daemon() override;

  // Sets the advisory backpressure clients see, in thousandths (0..1000).
  Status set_backpressure(std::uint32_t permille);
  // Stamps the heartbeat (a thread does every heartbeat_interval; wait()
  // also does, on every sleep slice). Does nothing once fenced.
  void heartbeat() noexcept;
  // Tells clients the daemon is gone (flags SHUTDOWN, daemon_alive = 0),
  // wakes every sleeper, releases the daemon lock and, if configured,
  // removes the segment. Idempotent. A fenced daemon leaves the segment to
  // its successor and only stops.
  void shutdown();
  bool is_connected() const override;

  // True once another daemon has taken the segment over (SPEC K-FENCE):
  // every operation then fails with Disconnected.
  bool fenced() const noexcept;
  // The epoch this daemon serves in, and how it started.
  const DaemonStartInfo& start_info() const noexcept { return start_; }

 private:
  class HeartbeatThread;
  Daemon(MmapSegment segment, const Geometry& g, DaemonOptions options);
  static Result<Daemon> create_fresh(const std::string& path, const Geometry& g, std::uint16_t version,
                                     const DaemonOptions& options);
  static Result<Daemon> take_over(const std::string& path, std::uint16_t version,
                                  const DaemonOptions& options);
  Status usable() const override;
  void on_wait_slice() override { heartbeat(); }
  const Fence* fence() const noexcept override { return &fence_; }
  bool remove_on_shutdown_ = true;
  DaemonStartInfo start_{};
  Fence fence_{};
  std::unique_ptr<RecoveryManager> recovery_;
  std::unique_ptr<HeartbeatThread> heartbeat_thread_;
};

class Client final : public Endpoint {
 public:
  // Opens and validates the segment at `path` (magic, layout version, size
  // against the file, geometry, ring headers), then checks the protocol
  // version. CorruptSegment names the field; ProtocolMismatch both versions;
  // Disconnected if the daemon has shut down.
  static Result<Client> connect(const std::string& path, std::uint16_t version,
                                EndpointOptions options = {});

  Client(Client&&) noexcept = default;
  ~Client() override;

  // Leaves: drops this client from client_count and gives up the reader token.
  void shutdown();
  bool is_connected() const override;

 private:
  Client(MmapSegment segment, const Geometry& g, EndpointOptions options);
  Status usable() const override;
  Status before_read() override;
  Status peer_alive() const override;
  Status daemon_liveness() const;
  std::uint64_t daemon_timeout_ns() const noexcept;
  bool holds_reader_ = false;
  // The heartbeat value this client watched stay still and judged stale.
  mutable std::uint64_t condemned_heartbeat_ = ~0ULL;
};

}  // namespace memlink::shm
