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

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "memlink/shm/control.hpp"
#include "memlink/shm/futex.hpp"
#include "memlink/shm/mmap.hpp"
#include "memlink/shm/pring.hpp"

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
};

struct DaemonOptions {
  EndpointOptions endpoint{};
  std::uint32_t slot_size = MAX_SLOT_SIZE;
  bool remove_on_shutdown = true;  // unlink the segment when shut down cleanly
};

struct Message {
  Priority priority = Priority::Low;
  std::uint64_t sequence = 0;
  std::vector<std::byte> payload;
};

inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

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

  // Ok, or why this endpoint may not use the segment now.
  virtual Status usable() const = 0;
  // Before reading: lets the client take the one-reader token.
  virtual Status before_read() { return {}; }
  // Called while waiting in slices, for the daemon's heartbeat.
  virtual void on_wait_slice() {}
  // Ok while the peer can still answer; checked before each sleep slice.
  virtual Status peer_alive() const { return {}; }

  template <class Pred>
  Status wait_until(Pred ready, FutexWord& fw, const Futex& fx,
                    std::optional<std::chrono::nanoseconds> timeout);
  void notify(FutexWord& fw, const Futex& fx) const;
  void note_corruption(const PriorityRingBuffer& rings, const Error& e);

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
  std::atomic<std::uint64_t>* out_seq_ = nullptr;
  bool shut_down_ = false;
};

class Daemon final : public Endpoint {
 public:
  // Creates the segment at `path` (see MmapSegment) and formats it for
  // protocol `version`. InvalidArgument if the size cannot hold one slot per
  // priority and direction; AlreadyExists if a segment is already there.
  static Result<Daemon> create(const std::string& path, std::size_t size, std::uint16_t version,
                               DaemonOptions options = {});

  Daemon(Daemon&&) noexcept = default;
  ~Daemon() override;

  // Sets the advisory backpressure clients see, in thousandths (0..1000).
  Status set_backpressure(std::uint32_t permille);
  // Stamps the heartbeat (wait() also does, on every sleep slice).
  void heartbeat() noexcept;
  // Tells clients the daemon is gone (flags SHUTDOWN, daemon_alive = 0),
  // wakes every sleeper and, if configured, removes the segment. Idempotent.
  void shutdown();
  bool is_connected() const override;

 private:
  Daemon(MmapSegment segment, const Geometry& g, DaemonOptions options);
  Status usable() const override;
  void on_wait_slice() override { heartbeat(); }
  bool remove_on_shutdown_ = true;
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
  bool holds_reader_ = false;
};

}  // namespace memlink::shm
