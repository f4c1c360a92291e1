// PriorityRingBuffer: the three rings of one direction, read in priority
// order (SPEC R-ORDER): Critical before High before Low, FIFO within each.
// Same contract as RingBuffer: many producers, one consumer.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "memlink/shm/buffer.hpp"
#include "memlink/shm/segment_age.hpp"

namespace memlink::shm {

class PriorityRingBuffer {
 public:
  PriorityRingBuffer() = default;
  explicit PriorityRingBuffer(std::array<RingBuffer, kPriorityCount> rings) noexcept
      : rings_(std::move(rings)) {}

  // Formats / attaches the three rings of direction `d` per `g` (formats
  // them as old as `age` says: SPEC C-AGE).
  static Result<PriorityRingBuffer> format(std::byte* base, std::size_t size, const Geometry& g, Direction d,
                                           SegmentAge age = SegmentAge::Fresh);
  static Result<PriorityRingBuffer> attach(std::byte* base, std::size_t size, const Geometry& g,
                                           Direction d);

  Result<SlotId> write(Priority p, std::span<const std::byte> data) {
    return ring(p).write_slot(data);
  }

  // The oldest message of the highest priority that has a Ready one.
  // Empty only if no ring has a message ready; any other error of a ring
  // (corruption, another consumer) is returned as it is.
  Result<MessageInfo> read(std::span<std::byte> out);
  // The first step of read(): the message is copied and its slot left
  // Reading; finish() completes and releases it (see RingBuffer::take).
  Result<MessageInfo> take(std::span<std::byte> out, const Fence* fence = nullptr);
  // take() without the copy (SPEC T-LOAN); finish() ends the view.
  Result<SlotView> take_view(const Fence* fence = nullptr);
  void finish(const MessageInfo& m) {
    ring(m.priority).complete(m.slot);
    ring(m.priority).release(m.slot);
  }
  Result<MessageInfo> peek() const;

  // True if take() would make progress now. It mirrors take(): the first
  // ring (highest priority first) whose tail is not Nothing decides, so a
  // held Critical tail (InvalidState) hides a Ready Low message, as take()
  // does (SPEC R-HELD, T-WAIT).
  bool has_message() const noexcept {
    for (Priority p : kAllPriorities) {
      const TailReadiness r = ring(p).tail_readiness();
      if (r != TailReadiness::Nothing) return r == TailReadiness::Readable;
    }
    return false;
  }
  bool positions_consistent() const noexcept {
    for (Priority p : kAllPriorities)
      if (!ring(p).positions_consistent()) return false;
    return true;
  }
  // positions_consistent(), with the error naming the first broken ring.
  Status check_positions() const {
    for (Priority p : kAllPriorities)
      if (auto s = ring(p).check_positions(); !s) return s;
    return {};
  }

  std::uint64_t pending(Priority p) const noexcept { return ring(p).len(); }
  std::uint64_t pending_total() const noexcept;
  std::uint32_t slot_count(Priority p) const noexcept { return ring(p).capacity(); }

  RingBuffer& ring(Priority p) noexcept { return rings_[static_cast<std::size_t>(p)]; }
  const RingBuffer& ring(Priority p) const noexcept { return rings_[static_cast<std::size_t>(p)]; }

 private:
  std::array<RingBuffer, kPriorityCount> rings_{};
};

}  // namespace memlink::shm
