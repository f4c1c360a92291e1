// A valid segment in process memory (no file), formatted exactly as the
// daemon formats one, for the targets that attack a live segment.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "memlink/shm/control.hpp"
#include "memlink/shm/pring.hpp"
#include "memlink/shm/segment_age.hpp"

namespace memlink::fuzz {

struct MemorySegment {
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> memory;
  shm::Geometry geometry;
  shm::PriorityRingBuffer c2d, d2c;

  std::byte* data() const { return memory.get(); }
  std::size_t size() const { return geometry.segment_size; }

  // `age`: counters formatted just before their wraps (SPEC C-AGE).
  static std::optional<MemorySegment> create(std::size_t size, std::uint32_t slot_size,
                                             shm::SegmentAge age = shm::SegmentAge::Fresh) {
    auto g = shm::compute_geometry(size, slot_size);
    if (!g) return std::nullopt;
    MemorySegment s;
    s.geometry = *g;
    s.memory.reset(static_cast<std::byte*>(std::aligned_alloc(64, shm::align_up(size, 64))));
    std::memset(s.memory.get(), 0, shm::align_up(size, 64));
    shm::format_control(s.data(), *g, 1, 1, 1, shm::first_epoch(age));
    auto c2d = shm::PriorityRingBuffer::format(s.data(), size, *g, shm::Direction::ClientToDaemon, age);
    auto d2c = shm::PriorityRingBuffer::format(s.data(), size, *g, shm::Direction::DaemonToClient, age);
    if (!c2d || !d2c) return std::nullopt;
    shm::publish_control(s.data());
    s.c2d = std::move(c2d.value());
    s.d2c = std::move(d2c.value());
    return s;
  }
};

}  // namespace memlink::fuzz
