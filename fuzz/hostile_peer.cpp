// Fuzz target: a hostile peer. A valid segment is created; the input drives
// daemon and client operations interleaved with arbitrary writes into the
// shared bytes (slot headers, lengths, states, priorities, ring head/tail,
// control fields), as a buggy or malicious process could do. The read paths
// must never touch memory outside the segment (ASan), never crash, never
// hang, and anything they deliver must be a consistent message: length
// within the slot, the ring's priority, and a payload whose CRC32C is the
// checksum stored with it. Corruption must come back as an error.
//
// Racing mode (the top bit of the first byte): the hostile writes are handed
// to a second thread that replays them in a loop, with relaxed atomic byte
// stores, *while* the operations run, so a value can change between the
// reader's validation and its use (V-ONCE) and between its copy and its
// checksum (V-SLOT). There the stored checksum may have moved on after a
// read, so a delivery is checked against what honest writers write (every
// payload byte equal) unless its CRC32C is a value the racer itself wrote
// (a forgery with a valid checksum is out of scope, SPEC 9b).
// A racing run is not exactly reproducible; a crash it finds is still real.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>
#include <version>

// The peer writes the shared bytes through std::atomic_ref (as a process
// beside the reader would: no data race for the sanitizers to report).
// libc++ has it from version 19: an older build image (ClusterFuzzLite's
// base-builder is not pinned by digest) stops here, saying why, instead of
// failing deep in the template.
#if !defined(__cpp_lib_atomic_ref)
#error \
    "fuzz_hostile_peer needs std::atomic_ref (libc++ 19 or later, libstdc++ 10 or later); this C++ library lacks it: use a newer build image"
#endif

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

// The hostile writes of racing mode: appended by the fuzzing thread
// (publish with release), replayed over and over by the racer.
class Racer {
 public:
  static constexpr std::size_t kMaxWrites = 64;
  explicit Racer(std::byte* base) : base_(base), thread_([this] { run(); }) {}
  ~Racer() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
  }
  void add(std::size_t offset, const std::byte* bytes, std::size_t len) {
    const std::size_t n = count_.load(std::memory_order_relaxed);
    if (n == kMaxWrites) return;
    writes_[n].offset = offset;
    writes_[n].len = std::min<std::size_t>(len, sizeof writes_[n].bytes);
    std::memcpy(writes_[n].bytes, bytes, writes_[n].len);
    count_.store(n + 1, std::memory_order_release);
  }
  // True if the racer wrote `crc`'s four bytes anywhere (a forged checksum).
  bool wrote_value(std::uint32_t crc) const {
    const std::size_t n = count_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t k = 0; k + 4 <= writes_[i].len; ++k)
        if (std::memcmp(writes_[i].bytes + k, &crc, 4) == 0) return true;
    return false;
  }

 private:
  struct Write {
    std::size_t offset = 0, len = 0;
    std::byte bytes[16] = {};
  };
  void run() {
    while (!stop_.load(std::memory_order_relaxed)) {
      const std::size_t n = count_.load(std::memory_order_acquire);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < writes_[i].len; ++k)  // what another process's plain stores look like
          std::atomic_ref<std::byte>(base_[writes_[i].offset + k]).store(writes_[i].bytes[k], std::memory_order_relaxed);
      std::this_thread::yield();
    }
  }
  std::byte* base_;
  Write writes_[kMaxWrites];
  std::atomic<std::size_t> count_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the rest exists
};

// Racing mode's delivery check: bytes some writer wrote as one message.
void check_raced_delivery(const shm::RingBuffer& ring, const shm::MessageInfo& m, const std::vector<std::byte>& out,
                          const Racer& racer) {
  if (m.length > ring.slot_size()) violation("delivered more than a slot", m.length, ring.slot_size());
  if (m.priority != ring.priority()) violation("delivered from the wrong priority", std::uint64_t(m.priority), std::uint64_t(ring.priority()));
  for (std::size_t k = 1; k < m.length; ++k)
    if (out[k] != out[0]) {
      const std::uint32_t crc = shm::crc32c(out.data(), m.length);
      if (!racer.wrote_value(crc)) violation("delivered bytes no writer wrote as one message", k, crc);
      return;
    }
}

void deliver(const shm::RingBuffer& ring, const shm::MessageInfo& m, const std::vector<std::byte>& out, const Racer* racer) {
  racer != nullptr ? check_raced_delivery(ring, m, out, *racer) : check_delivery(ring, m, out);
}

void read_one(shm::PriorityRingBuffer& rings, std::vector<std::byte>& out, const Racer* racer) {
  for (shm::Priority p : shm::kAllPriorities) {
    auto r = rings.ring(p).read_slot(out);
    if (r) {
      deliver(rings.ring(p), *r, out, racer);
      return;
    }
    if (r.code() != shm::ErrorCode::Empty) return;  // reported, not delivered
  }
}

// The zero-copy read (SPEC T-LOAN): a view is verified where it lies, so
// only the racer (which changes bytes after the check, as T-LOAN warns) can
// make what it shows differ from what was verified; there only the length
// and priority are judged.
void view_one(shm::PriorityRingBuffer& rings, std::vector<std::byte>& out, const Racer* racer) {
  for (shm::Priority p : shm::kAllPriorities) {
    shm::RingBuffer& ring = rings.ring(p);
    auto v = ring.take_view();
    if (v) {
      if (v->bytes.size() != v->info.length) violation("a view's size is not its length", v->bytes.size(), v->info.length);
      if (v->info.length > ring.slot_size()) violation("viewed more than a slot", v->info.length, ring.slot_size());
      if (v->info.priority != ring.priority())
        violation("viewed from the wrong priority", std::uint64_t(v->info.priority), std::uint64_t(ring.priority()));
      if (racer == nullptr) {
        std::memcpy(out.data(), v->bytes.data(), v->bytes.size());
        check_delivery(ring, v->info, out);
      }
      ring.complete(v->info.slot);
      ring.release(v->info.slot);
      return;
    }
    if (v.code() != shm::ErrorCode::Empty) return;  // reported, not delivered
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzInput in(data, size);
  static const std::uint32_t kSlotSizes[] = {16, 64, 256, 4096};
  const auto first = in.take<std::uint8_t>();
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer would report the racer's deliberate races (the replay
  // build under TSan runs the corpus); racing is for the ASan fuzzer.
  const bool racing = false;
#else
  const bool racing = (first & 0x80) != 0;
#endif
  const std::uint32_t slot_size = kSlotSizes[first % 4];
  const std::uint32_t n = 1 + in.take<std::uint8_t>() % 8;
  const std::size_t seg_size = shm::layout_for(0, slot_size, n).used_bytes + in.take<std::uint8_t>() % 64;
  // Bits 2-3: the counters' age (C-AGE), so that attacks meet wraps too.
  const auto age = shm::kAllSegmentAges[((first >> 2) & 3) % 3];
  auto seg = fuzz::MemorySegment::create(seg_size, slot_size, age);
  if (!seg) return 0;
  std::vector<std::byte> out(kOutBuffer);
  std::uint64_t seq = 0;
  std::optional<Racer> racer_storage;
  if (racing) racer_storage.emplace(seg->data());
  Racer* racer = racing ? &*racer_storage : nullptr;
  // A hostile write: now, between operations, or handed to the racer.
  auto hostile = [&](std::size_t off, const void* bytes, std::size_t len) {
    if (racer != nullptr) racer->add(off, static_cast<const std::byte*>(bytes), len);
    else std::memcpy(seg->data() + off, bytes, len);
  };

  for (int step = 0; step < 256 && !in.empty(); ++step) {
    const auto op = in.take<std::uint8_t>();
    const auto dir = (op >> 4) & 1 ? shm::Direction::DaemonToClient : shm::Direction::ClientToDaemon;
    shm::PriorityRingBuffer& rings = dir == shm::Direction::ClientToDaemon ? seg->c2d : seg->d2c;
    switch (op % 9) {
      case 0: {  // an honest write; bit 5: through a loan (T-LOAN)
        const auto p = static_cast<shm::Priority>(in.take<std::uint8_t>() % 3);
        const std::size_t len = in.take<std::uint16_t>() % (slot_size + 8);
        if ((op >> 5) & 1) {
          if (auto loan = rings.ring(p).loan(len)) {
            std::memset(loan->bytes.data(), static_cast<int>(seq & 0xFF), len);
            (void)rings.ring(p).commit(*loan, len);
          }
          break;
        }
        std::vector<std::byte> payload(len, std::byte(seq & 0xFF));
        (void)rings.write(p, payload);
        break;
      }
      case 1:  // the consumer reads; bit 5: through a view (T-LOAN)
        (op >> 5) & 1 ? view_one(rings, out, racer) : read_one(rings, out, racer);
        break;
      case 2: {  // a hostile write anywhere in the segment
        const std::size_t off = in.take<std::uint32_t>() % seg->size();
        const auto bytes = in.bytes(1 + in.take<std::uint8_t>() % 16);
        const std::size_t len = std::min(bytes.size(), seg->size() - off);
        hostile(off, bytes.data(), len);
        break;
      }
      case 3: {  // a hostile write aimed at a slot or ring field
        const auto p = static_cast<shm::Priority>(in.take<std::uint8_t>() % 3);
        shm::RingBuffer& ring = rings.ring(p);
        const std::uint32_t index = in.take<std::uint8_t>() % ring.capacity();
        const auto value = in.take<std::uint64_t>();
        const std::size_t slot = static_cast<std::size_t>(reinterpret_cast<std::byte*>(&ring.slot_header(index)) - seg->data());
        const std::size_t header = static_cast<std::size_t>(reinterpret_cast<std::byte*>(&ring.slot_header(0)) - seg->data()) -
                                   shm::RING_HEADER_SIZE;
        // SPEC S-LAYOUT, layout 2.
        switch (in.take<std::uint8_t>() % 10) {
          case 0: hostile(slot + 0, &value, 1); break;   // the word's state byte
          case 1: hostile(slot + 0, &value, 8); break;   // the whole word: state, owner pid, generation
          case 2: hostile(slot + 5, &value, 3); break;   // the word's generation
          case 3: hostile(slot + 24, &value, 1); break;  // priority
          case 4: hostile(slot + 16, &value, 4); break;  // length
          case 5: hostile(slot + 20, &value, 4); break;  // checksum
          case 6: hostile(slot + 32, &value, 8); break;  // position
          case 7: hostile(header + 64, &value, 8); break;   // head
          case 8: hostile(header + 128, &value, 8); break;  // tail
          default: hostile(slot + shm::SLOT_HEADER_SIZE, &value, std::min<std::size_t>(8, slot_size)); break;  // payload
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
        if (auto r = ring.take(out)) deliver(ring, *r, out, racer);
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
