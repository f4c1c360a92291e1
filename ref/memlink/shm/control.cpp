#include "memlink/shm/control.hpp"

#include <cstdio>
#include <new>
#include <string>

namespace memlink::shm {
namespace {

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

Error corrupt(const std::string& field, const std::string& what) {
  return make_error(ErrorCode::CorruptSegment, "control." + field + ": " + what);
}

}  // namespace

void format_control(std::byte* base, const Geometry& g, std::uint16_t protocol_version, std::uint32_t daemon_pid,
                    std::uint64_t now_ns, std::uint64_t epoch) noexcept {
  auto* c = new (base) ControlRegion{};
  c->magic.store(0, std::memory_order_relaxed);
  c->layout_version = LAYOUT_VERSION;
  c->protocol_version = protocol_version;
  c->segment_size = g.segment_size;
  c->slot_size = g.slot_size;
  c->slot_stride = g.slot_stride;
  c->slots_per_direction = g.slots_per_direction;
  for (std::size_t d = 0; d < kDirectionCount; ++d)
    for (Priority p : kAllPriorities)
      c->slot_count[d][static_cast<std::size_t>(p)] = g.distribution.of(p);
  c->flags.store(0, std::memory_order_relaxed);
  c->daemon_alive.store(1, std::memory_order_relaxed);
  c->daemon_pid.store(daemon_pid, std::memory_order_relaxed);
  c->heartbeat_ns.store(now_ns, std::memory_order_relaxed);
  c->epoch.store(epoch, std::memory_order_relaxed);
  c->backpressure.store(0, std::memory_order_relaxed);
  c->d2c_consumer_pid.store(0, std::memory_order_relaxed);
  c->client_count.store(0, std::memory_order_relaxed);
  c->client_head.store(0, std::memory_order_relaxed);
  c->daemon_tail.store(0, std::memory_order_relaxed);
}

void publish_control(std::byte* base) noexcept {
  control_of(base)->magic.store(SEGMENT_MAGIC, std::memory_order_release);
}

Result<Geometry> validate_control(const std::byte* base, std::size_t mapped_size) {
  if (base == nullptr) return make_error(ErrorCode::InvalidArgument, "segment is not mapped");
  if (mapped_size < CONTROL_REGION_SIZE)
    return corrupt("segment_size", "segment is " + std::to_string(mapped_size) +
                                       " bytes, smaller than the " +
                                       std::to_string(CONTROL_REGION_SIZE) + "-byte control region");
  const ControlRegion* c = control_of(base);
  const std::uint64_t magic = c->magic.load(std::memory_order_acquire);
  if (magic != SEGMENT_MAGIC)
    return corrupt("magic", "expected " + hex(SEGMENT_MAGIC) + ", found " + hex(magic) +
                                " (not a memlink segment, or not initialised yet)");
  // Another layout is not corruption: say which two versions met (SPEC L-CONST).
  if (c->layout_version != LAYOUT_VERSION)
    return make_error(ErrorCode::ProtocolMismatch,
                      "control.layout_version: segment has layout version " + std::to_string(c->layout_version) +
                          ", this build reads layout version " + std::to_string(LAYOUT_VERSION) +
                          " (recreate the segment with a daemon of one version)");
  const std::uint64_t seg = c->segment_size;
  if (seg != mapped_size)
    return corrupt("segment_size", "header says " + std::to_string(seg) + " bytes, the file is " +
                                       std::to_string(mapped_size) +
                                       (mapped_size < seg ? " (truncated)" : " (extended)"));
  const std::uint32_t slot_size = c->slot_size;
  if (slot_size < 1 || slot_size > MAX_SLOT_SIZE)
    return corrupt("slot_size", std::to_string(slot_size) + " is outside [1, " +
                                    std::to_string(MAX_SLOT_SIZE) + "]");
  if (c->slot_stride != slot_stride_for(slot_size))
    return corrupt("slot_stride", std::to_string(c->slot_stride) + ", expected " +
                                      std::to_string(slot_stride_for(slot_size)) + " for slot size " +
                                      std::to_string(slot_size));
  const std::uint32_t n = c->slots_per_direction;
  if (n < 1) return corrupt("slots_per_direction", "is 0");
  // Reject an n whose rings could not fit before doing arithmetic with it.
  if (n > seg / slot_stride_for(slot_size))
    return corrupt("slots_per_direction", std::to_string(n) + " slots cannot fit in " +
                                              std::to_string(seg) + " bytes");
  const Geometry g = layout_for(seg, slot_size, n);
  for (std::size_t d = 0; d < kDirectionCount; ++d) {
    for (Priority p : kAllPriorities) {
      const std::uint32_t stored = c->slot_count[d][static_cast<std::size_t>(p)];
      if (stored != g.distribution.of(p))
        return corrupt(std::string("slot_count[") + to_string(static_cast<Direction>(d)) + "][" +
                           std::string(to_string(p)) + "]",
                       std::to_string(stored) + ", the distribution of " + std::to_string(n) +
                           " gives " + std::to_string(g.distribution.of(p)));
    }
  }
  if (g.used_bytes > seg)
    return corrupt("slots_per_direction", "rings need " + std::to_string(g.used_bytes) +
                                              " bytes, segment has " + std::to_string(seg));
  const std::uint32_t flags = c->flags.load(std::memory_order_acquire);
  if ((flags & ~FLAGS_KNOWN) != 0) return corrupt("flags", "unknown bits in " + hex(flags));
  const std::uint32_t bp = c->backpressure.load(std::memory_order_relaxed);
  if (bp > BACKPRESSURE_MAX)
    return corrupt("backpressure", std::to_string(bp) + " is above " + std::to_string(BACKPRESSURE_MAX));
  return g;
}

std::uint64_t c2d_published(const ControlRegion& c) noexcept {
  std::uint64_t sum = c.client_head.load(std::memory_order_relaxed);
  for (const auto& n : c.client_published) sum += n.load(std::memory_order_relaxed);
  return sum;
}

}  // namespace memlink::shm
