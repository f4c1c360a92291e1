// The throughput floor (issue 15): a bare single-producer, single-consumer
// ring in memory both processes map, with memlink's slot size and stride and
// nothing else — no checksum, no recovery, no priorities, no sequence
// numbers, no wake-ups. What copying a message in, publishing it and copying
// it out costs on this machine; memlink's throughput is quoted against it.
//
// Lamport's ring with each side caching the other's index (as Rigtorp's
// SPSCQueue does), so that the shared index lines move only when a side
// runs out of what it last saw. One release per message on each side, each
// paired with the other side's acquire.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <thread>

#include "memlink/shm/platform.hpp"

#include "memlink/shm/layout.hpp"

namespace memlink::bench {

struct BareRing {
  static constexpr std::uint64_t kSlots = 256;
  struct alignas(64) Slot {
    std::uint32_t length;
    std::byte header_pad[shm::SLOT_HEADER_SIZE - 4];  // memlink's stride: a header line, then the payload
    std::byte payload[shm::MAX_SLOT_SIZE];
  };

  alignas(64) std::atomic<std::uint64_t> head{0};  // next position to write; producer's line
  alignas(64) std::atomic<std::uint64_t> tail{0};  // next position to read; consumer's line
  alignas(64) Slot slots[kSlots];

  // Producer. False when full. `cached_tail` is the producer's private copy.
  bool write(std::uint64_t& cached_tail, std::span<const std::byte> msg) noexcept {
    const std::uint64_t h = head.load(std::memory_order_relaxed);
    if (h - cached_tail == kSlots) {
      cached_tail = tail.load(std::memory_order_acquire);  // pairs with read()'s release: the slot is free
      if (h - cached_tail == kSlots) return false;
    }
    Slot& s = slots[h % kSlots];
    s.length = static_cast<std::uint32_t>(msg.size());
    std::memcpy(s.payload, msg.data(), msg.size());
    head.store(h + 1, std::memory_order_release);  // publishes length and payload
    return true;
  }

  // What a side does while the ring is full (producer) or empty (consumer):
  // spin a little, then give the CPU away, so that on a machine with fewer
  // free cores than spinners the other side gets to run. `idle` counts the
  // polls since the last progress; the caller zeroes it on progress.
  static void wait_a_little(unsigned& idle) noexcept {
    if (++idle < 4096) shm::platform::cpu_relax();
    else std::this_thread::yield();
  }

  // Consumer. The message's length, or -1 when empty.
  long read(std::uint64_t& cached_head, std::span<std::byte> out) noexcept {
    const std::uint64_t t = tail.load(std::memory_order_relaxed);
    if (t == cached_head) {
      cached_head = head.load(std::memory_order_acquire);  // pairs with write()'s release
      if (t == cached_head) return -1;
    }
    const Slot& s = slots[t % kSlots];
    const std::size_t n = s.length < out.size() ? s.length : out.size();
    std::memcpy(out.data(), s.payload, n);
    tail.store(t + 1, std::memory_order_release);  // the slot may be written again
    return static_cast<long>(n);
  }
};

}  // namespace memlink::bench
