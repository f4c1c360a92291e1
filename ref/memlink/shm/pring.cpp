#include "memlink/shm/pring.hpp"

namespace memlink::shm {
namespace {

// Short enough for the small-string buffer: an empty poll allocates nothing.
constexpr const char* kNothingReady = "nothing ready";

template <class Op>
Result<PriorityRingBuffer> build(std::byte* base, std::size_t size, const Geometry& g, Direction d,
                                 Op op) {
  std::array<RingBuffer, kPriorityCount> rings{};
  for (Priority p : kAllPriorities) {
    const std::size_t off = g.offset(d, p);
    const std::size_t bytes = RingBuffer::bytes_for(g.capacity(p), g.slot_size);
    if (off > size || bytes > size - off)
      return make_error(ErrorCode::CorruptSegment,
                        std::string("geometry: ring ") + to_string(d) + "/" +
                            std::string(to_string(p)) + " ends past the segment");
    auto r = op(base + off, bytes, g.capacity(p), g.slot_size, d, p);
    if (!r) return r.error();
    rings[static_cast<std::size_t>(p)] = std::move(r.value());
  }
  return PriorityRingBuffer(std::move(rings));
}

}  // namespace

Result<PriorityRingBuffer> PriorityRingBuffer::format(std::byte* base, std::size_t size, const Geometry& g, Direction d,
                                                      SegmentAge age) {
  return build(base, size, g, d,
               [age](std::byte* mem, std::size_t bytes, std::uint32_t capacity, std::uint32_t slot_size, Direction dir,
                     Priority p) {
                 return RingBuffer::format(mem, bytes, capacity, slot_size, dir, p, first_position(age, capacity));
               });
}

Result<PriorityRingBuffer> PriorityRingBuffer::attach(std::byte* base, std::size_t size,
                                                      const Geometry& g, Direction d) {
  return build(base, size, g, d, RingBuffer::attach);
}

Result<MessageInfo> PriorityRingBuffer::read(std::span<std::byte> out) {
  for (Priority p : kAllPriorities) {
    auto r = ring(p).read_slot(out);
    if (r.ok() || r.code() != ErrorCode::Empty) return r;
  }
  return fixed_error(ErrorCode::Empty, kNothingReady);
}

Result<MessageInfo> PriorityRingBuffer::take(std::span<std::byte> out, const Fence* fence) {
  for (Priority p : kAllPriorities) {
    auto r = ring(p).take(out, fence);
    if (r.ok() || r.code() != ErrorCode::Empty) return r;
  }
  return fixed_error(ErrorCode::Empty, kNothingReady);
}

Result<SlotView> PriorityRingBuffer::take_view(const Fence* fence) {
  for (Priority p : kAllPriorities) {
    auto r = ring(p).take_view(fence);
    if (r.ok() || r.code() != ErrorCode::Empty) return r;
  }
  return fixed_error(ErrorCode::Empty, kNothingReady);
}

Result<MessageInfo> PriorityRingBuffer::peek() const {
  for (Priority p : kAllPriorities) {
    auto r = ring(p).peek_slot();
    if (r.ok() || r.code() != ErrorCode::Empty) return r;
  }
  return fixed_error(ErrorCode::Empty, kNothingReady);
}

std::uint64_t PriorityRingBuffer::pending_total() const noexcept {
  std::uint64_t n = 0;
  for (Priority p : kAllPriorities) n += pending(p);
  return n;
}

}  // namespace memlink::shm
