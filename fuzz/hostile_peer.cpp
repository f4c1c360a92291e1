// Fuzz target: a hostile peer. A valid segment is created; the input drives
// daemon and client operations interleaved with arbitrary writes into the
// shared bytes (slot headers, lengths, states, priorities, ring head/tail,
// control fields), as a buggy or malicious process could do. The read paths
// must never touch memory outside the segment (ASan), never crash, never
// hang, and anything they deliver must be a consistent message: length
// within the slot, the ring's priority, and a payload whose CRC32C is the
// checksum stored with it. Corruption must come back as an error.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fuzz_input.hpp"
#include "memlink/shm/checksum.hpp"
#include "segment_builder.hpp"

using namespace memlink;
using memlink::fuzz::FuzzInput;

namespace {

[[noreturn]] void violation(const char* what, std::uint64_t a, std::uint64_t b) {
  std::fprintf(stderr, "hostile_peer: %s (%llu, %llu)\n", what, static_cast<unsigned long long>(a),
               static_cast<unsigned long long>(b));
  std::abort();
}

// A consumer that hands the reader a generous buffer, as a real one may: a
// reader that trusted a hostile length would deliver more than a slot.
constexpr std::size_t kOutBuffer = 2 * shm::MAX_SLOT_SIZE + 64;

void check_delivery(const shm::RingBuffer& ring, const shm::MessageInfo& m, const std::vector<std::byte>& out) {
  if (m.length > ring.slot_size()) violation("delivered more than a slot", m.length, ring.slot_size());
  if (m.priority != ring.priority()) violation("delivered from the wrong priority", std::uint64_t(m.priority), std::uint64_t(ring.priority()));
  const std::uint32_t stored = ring.slot_header(m.slot.index).checksum;
  const std::uint32_t got = shm::crc32c(out.data(), m.length);
  if (stored != got) violation("delivered a payload whose checksum does not match", stored, got);
}

void read_one(shm::PriorityRingBuffer& rings, std::vector<std::byte>& out) {
  for (shm::Priority p : shm::kAllPriorities) {
    auto r = rings.ring(p).read_slot(out);
    if (r) {
      check_delivery(rings.ring(p), *r, out);
      return;
    }
    if (r.code() != shm::ErrorCode::Empty) return;  // reported, not delivered
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzInput in(data, size);
  static const std::uint32_t kSlotSizes[] = {16, 64, 256, 4096};
  const std::uint32_t slot_size = kSlotSizes[in.take<std::uint8_t>() % 4];
  const std::uint32_t n = 1 + in.take<std::uint8_t>() % 8;
  const std::size_t seg_size = shm::layout_for(0, slot_size, n).used_bytes + in.take<std::uint8_t>() % 64;
  auto seg = fuzz::MemorySegment::create(seg_size, slot_size);
  if (!seg) return 0;
  std::vector<std::byte> out(kOutBuffer);
  std::uint64_t seq = 0;

  for (int step = 0; step < 256 && !in.empty(); ++step) {
    const auto op = in.take<std::uint8_t>();
    const auto dir = (op >> 4) & 1 ? shm::Direction::DaemonToClient : shm::Direction::ClientToDaemon;
    shm::PriorityRingBuffer& rings = dir == shm::Direction::ClientToDaemon ? seg->c2d : seg->d2c;
    switch (op % 9) {
      case 0: {  // an honest write
        const auto p = static_cast<shm::Priority>(in.take<std::uint8_t>() % 3);
        const std::size_t len = in.take<std::uint16_t>() % (slot_size + 8);
        std::vector<std::byte> payload(len, std::byte(seq & 0xFF));
        (void)rings.write(p, payload, seq++);
        break;
      }
      case 1:  // the consumer reads
        read_one(rings, out);
        break;
      case 2: {  // a hostile write anywhere in the segment
        const std::size_t off = in.take<std::uint32_t>() % seg->size();
        const auto bytes = in.bytes(1 + in.take<std::uint8_t>() % 16);
        const std::size_t len = std::min(bytes.size(), seg->size() - off);
        std::memcpy(seg->data() + off, bytes.data(), len);
        break;
      }
      case 3: {  // a hostile write aimed at a slot or ring field
        const auto p = static_cast<shm::Priority>(in.take<std::uint8_t>() % 3);
        shm::RingBuffer& ring = rings.ring(p);
        const std::uint32_t index = in.take<std::uint8_t>() % ring.capacity();
        const auto value = in.take<std::uint64_t>();
        auto* slot = reinterpret_cast<std::byte*>(&ring.slot_header(index));
        auto* header = reinterpret_cast<std::byte*>(&ring.slot_header(0)) - shm::RING_HEADER_SIZE;
        switch (in.take<std::uint8_t>() % 8) {
          case 0: std::memcpy(slot + 0, &value, 1); break;   // state
          case 1: std::memcpy(slot + 1, &value, 1); break;   // priority
          case 2: std::memcpy(slot + 4, &value, 4); break;   // length
          case 3: std::memcpy(slot + 20, &value, 4); break;  // checksum
          case 4: std::memcpy(slot + 32, &value, 8); break;  // position
          case 5: std::memcpy(header + 64, &value, 8); break;   // head
          case 6: std::memcpy(header + 128, &value, 8); break;  // tail
          default: std::memcpy(slot + shm::SLOT_HEADER_SIZE, &value, std::min<std::size_t>(8, slot_size)); break;  // payload
        }
        break;
      }
      case 4:
        (void)rings.peek();
        break;
      case 5: {  // a writer that stops after claiming
        shm::RingBuffer& ring = rings.ring(static_cast<shm::Priority>(in.take<std::uint8_t>() % 3));
        if (ring.check_writable(0)) (void)ring.claim();
        break;
      }
      case 6: {  // a reader that stops after take
        shm::RingBuffer& ring = rings.ring(static_cast<shm::Priority>(in.take<std::uint8_t>() % 3));
        if (auto r = ring.take(out)) check_delivery(ring, *r, out);
        break;
      }
      case 7:  // what a connecting client validates
        (void)shm::validate_control(seg->data(), seg->size());
        break;
      default:  // what the inspector and wait predicates look at
        for (shm::Priority p : shm::kAllPriorities) {
          (void)rings.ring(p).count_states();
          (void)rings.ring(p).has_message();
          (void)rings.ring(p).len();
        }
        break;
    }
  }
  return 0;
}
