// Byte-level checks through the adapter: the segment must be laid out
// exactly as SPEC.md's tables say (an implementation in another language
// must interoperate byte for byte), and connect must refuse a segment whose
// fields are wrong, naming the field.
#include "memlink/shm/layout.hpp"

#include <cstring>
#include <ostream>

#include "crc32c_by_definition.hpp"
#include "driver_adapter.hpp"
#include "memlink/conformance/adapter.hpp"
#include "memlink/shm/slot.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {
namespace {

using model::Model;

// Offsets of SPEC.md, written out here rather than taken from ref/.
constexpr std::size_t kControlSize = 4096, kRingHeader = 192, kSlotHeader = 64;
constexpr std::uint64_t kMagic = 0x314B4E494C4D454DULL;
constexpr std::uint32_t kRingMagic = 0x474E4952;

std::size_t stride_of(std::uint32_t slot_size) { return (kSlotHeader + slot_size + 63) / 64 * 64; }

struct Offsets {
  std::size_t ring[2][3];
  std::size_t stride;
};

Offsets offsets_of(const Model& m, std::uint32_t slot_size) {  // G-PLACE
  Offsets o{};
  o.stride = stride_of(slot_size);
  std::size_t off = kControlSize;
  for (int d = 0; d < 2; ++d)
    for (int p = 0; p < 3; ++p) {
      o.ring[d][p] = off;
      off += kRingHeader + m.capacity(static_cast<Priority>(p)) * o.stride;
    }
  return o;
}

template <class T>
T at(std::span<const std::byte> bytes, std::size_t offset, const char* what) {
  if (offset + sizeof(T) > bytes.size())
    fail_case(ClauseId::G_PLACE, std::string() + what + " at offset " + std::to_string(offset) +
                                     " lies past the segment's " + std::to_string(bytes.size()) + " bytes");
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

// Compares one field; records the clause only if `seen` (a counter or
// position at its initial zero shows nothing about where it lies).
void expect_field(const Params& params, ClauseId clause, const std::string& what, std::uint64_t want, std::uint64_t got,
                  bool seen = true) {
  if (seen) params.record(clause);
  if (want != got)
    fail_case(clause,
              what + ": the spec requires " + std::to_string(want) + ", the segment has " + std::to_string(got));
}

// A small segment, fitted to what the transport accepts (D-LIMITS).
model::Config gen_small_config(const driver::Limits& limits) {
  model::Config c;
  c.slot_size = limits.slot(*rc::gen::element<std::uint32_t>(1u, 16u, 64u, 200u, 4096u));
  const auto n = *rc::gen::inRange<std::uint32_t>(1, 12);
  c.segment_size =
      limits.segment(kControlSize + 2 * (3 * kRingHeader + model::distribution(n).total() * stride_of(c.slot_size)) +
                     *rc::gen::inRange<std::size_t>(0, 200));
  c.protocol_version = *rc::gen::arbitrary<std::uint16_t>();
  return c;
}

std::vector<std::byte> pattern(std::size_t n, std::uint64_t seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((seed * 131 + i * 7) & 0xFF);
  return v;
}

// Random traffic applied to both, so rings have messages in every state.
// False if the adapter refused a write the model accepted.
bool drive(Model& m, Adapter& a, std::uint32_t slot_size) {
  bool every_write_acknowledged = true;
  const int steps = *rc::gen::inRange(0, 40);
  for (int i = 0; i < steps; ++i) {
    const auto d = *rc::gen::inRange(0, 2) == 0 ? Direction::ClientToDaemon : Direction::DaemonToClient;
    const auto p = static_cast<Priority>(*rc::gen::inRange(0, 3));
    const auto data = pattern(*rc::gen::inRange<std::size_t>(0, slot_size + 1), i);
    switch (*rc::gen::inRange(0, 10)) {
      case 0:
        m.stop_writer(d, p, model::WriterStop::AfterFill, data);
        (void)a.stop_writer(d, p, model::WriterStop::AfterFill, data);
        break;
      case 1:
        m.stop_reader(d, model::ReaderStop::AfterTake);
        (void)a.stop_reader(d, model::ReaderStop::AfterTake);
        break;
      case 2:
      case 3:
      case 4:
        m.read(d);
        (void)a.read(d);
        break;
      default:
        if (m.write(d, p, data).ok() && !a.write(d, p, data).ok()) every_write_acknowledged = false;
        break;
    }
  }
  return every_write_acknowledged;
}

// Every write acknowledged, yet a ring's head is behind the spec's: writes
// were acknowledged that never reached the segment (S-PUBLISH), whatever
// field differs first.
void expect_published(const model::View& v, const Offsets& o, std::span<const std::byte> bytes) {
  for (int d = 0; d < 2; ++d)
    for (int p = 0; p < 3; ++p) {
      const auto head = at<std::uint64_t>(bytes, o.ring[d][p] + 64, "head");
      const auto tail = at<std::uint64_t>(bytes, o.ring[d][p] + 128, "tail");
      const std::uint64_t want = v.rings[d][p].head;
      if (head < want && head >= tail)
        fail_case(ClauseId::S_PUBLISH, "ring[" + std::string(d == 0 ? "c2d/" : "d2c/") +
                                           std::string(shm::to_string(static_cast<Priority>(p))) +
                                           "]: " + std::to_string(want - head) +
                                           " acknowledged write(s) never reached the segment (head " +
                                           std::to_string(head) + ", the spec requires " + std::to_string(want) +
                                           "): acknowledged writes that can never be delivered to the other process");
    }
}

// A fresh segment from a random small config, in the model and through the
// adapter, with one client connected to both.
struct Fixture {
  model::Config config;
  std::optional<Model> model;
  std::unique_ptr<Adapter> adapter;
};

Fixture connected_fixture(const Params& params) {
  Fixture f;
  f.config = *rc::gen::exec([&] { return gen_small_config(params.limits); });
  f.model = Model::create(f.config);
  RC_ASSERT(f.model.has_value());
  f.adapter = adapter_for(params);
  if (auto s = f.adapter->create(f.config); !s) fail_case(ClauseId::G_FIT, "create failed: " + s.error().message());
  f.model->connect(f.config.protocol_version);
  if (auto s = f.adapter->connect(f.config.protocol_version); !s)
    fail_case(ClauseId::V_CONNECT, "connect to a fresh segment failed: " + s.error().message());
  return f;
}

// The control region's fields against the model's view (L-CONST, C-INIT,
// C-LAYOUT, G-STRIDE, C-FLAGS, C-LINES, T-COUNTERS' fields).
void expect_control(const Params& params, const model::Config& config, const model::View& v, const Offsets& o,
                    std::span<const std::byte> bytes) {
  expect_field(params, ClauseId::L_CONST, "control.magic", kMagic, at<std::uint64_t>(bytes, 0, "magic"));
  params.record(ClauseId::C_INIT);
  expect_field(params, ClauseId::L_CONST, "control.layout_version", 2, at<std::uint32_t>(bytes, 8, "layout_version"));
  expect_field(params, ClauseId::C_LAYOUT, "control.protocol_version", config.protocol_version,
               at<std::uint16_t>(bytes, 12, "protocol_version"));
  expect_field(params, ClauseId::C_LAYOUT, "control.segment_size", config.segment_size,
               at<std::uint64_t>(bytes, 16, "segment_size"));
  expect_field(params, ClauseId::C_LAYOUT, "control.slot_size", config.slot_size,
               at<std::uint32_t>(bytes, 24, "slot_size"));
  expect_field(params, ClauseId::G_STRIDE, "control.slot_stride", o.stride,
               at<std::uint32_t>(bytes, 28, "slot_stride"));
  expect_field(params, ClauseId::C_LAYOUT, "control.slots_per_direction",
               *model::slots_per_direction(config.segment_size, config.slot_size),
               at<std::uint32_t>(bytes, 32, "slots_per_direction"));
  for (int d = 0; d < 2; ++d)
    for (int p = 0; p < 3; ++p)
      expect_field(params, ClauseId::C_LAYOUT, "control.slot_count", v.rings[d][p].capacity,
                   at<std::uint32_t>(bytes, 36 + 4 * (3 * d + p), "slot_count"));
  expect_field(params, ClauseId::C_FLAGS, "control.flags", v.shutdown ? 1 : 0, at<std::uint32_t>(bytes, 60, "flags"));
  expect_field(params, ClauseId::C_LAYOUT, "control.backpressure", v.backpressure,
               at<std::uint32_t>(bytes, 88, "backpressure"), v.backpressure > 0);
  expect_field(params, ClauseId::C_LAYOUT, "control.client_count", v.client_count,
               at<std::uint32_t>(bytes, 128, "client_count"), v.client_count > 0);
  // C-LINES: the offsets checked here put the daemon's fields (64..127),
  // client_count (128), the clients' counters (192..), the daemon's (256..)
  // and each futex word (320, 384, 448, 512) on lines of their own.
  params.record(ClauseId::C_LINES);
  // T-COUNTERS: c2d published = client_head (clients that left) + each
  // client table entry's own counter (client_published, 1088..2111).
  std::uint64_t published = at<std::uint64_t>(bytes, 192, "client_head");
  for (std::size_t k = 0; k < shm::CLIENT_TABLE_SIZE; ++k)
    published += at<std::uint64_t>(bytes, 1088 + 8 * k, "client_published");
  expect_field(params, ClauseId::C_LAYOUT, "control.client_head + client_published", v.client_head, published,
               v.client_head > 0);
  expect_field(params, ClauseId::C_LAYOUT, "control.daemon_tail", v.daemon_tail,
               at<std::uint64_t>(bytes, 256, "daemon_tail"), v.daemon_tail > 0);
}

// One ring as SPEC lays it out: which ring, its header's offset, its view.
struct RingAt {
  int d = 0, p = 0;
  std::size_t offset = 0;
  const model::RingView& rv;
  std::string name;  // "ring[c2d/high]"
  std::uint64_t tail = 0;
};

// Slot `i` of ring `ring`: its word (S-STATES, S-WORD, S-OWNER) and, while
// it holds a message, its header, payload and checksum (S-LAYOUT,
// S-CHECKSUM).
void expect_slot(const Params& params, const Model& m, Adapter& adapter, const Offsets& o,
                 std::span<const std::byte> bytes, const RingAt& ring, std::uint32_t i) {
  const int d = ring.d, p = ring.p;
  const model::RingView& rv = ring.rv;
  const std::string& name = ring.name;
  const std::uint64_t tail = ring.tail;
  const std::size_t r = ring.offset;
  const std::size_t s = r + kRingHeader + i * o.stride;
  const std::string slot = name + ".slot[" + std::to_string(i) + "]";
  // SPEC S-WORD: state, holder and lap in the word at offset 0.
  const auto word = at<std::uint64_t>(bytes, s, "word");
  expect_field(params, ClauseId::S_STATES, slot + ".word.state", static_cast<std::uint8_t>(rv.slots[i]),
               static_cast<std::uint8_t>(word & 0xFF));
  const auto st = rv.slots[i];
  // The slot serves the one position of [tail, tail + capacity) that
  // maps to it; its word carries that position's lap.
  const std::uint64_t served = tail + (i + rv.capacity - tail % rv.capacity) % rv.capacity;
  expect_field(params, ClauseId::S_WORD, slot + ".word.generation", shm::generation_of(served, rv.capacity),
               static_cast<std::uint32_t>(word >> 40));
  const auto owner = static_cast<std::uint32_t>(word >> 8);
  if (st == model::SlotState::Writing || st == model::SlotState::Reading) {
    expect_field(params, ClauseId::S_OWNER, slot + ".word.owner_pid",
                 adapter.owner_pid(static_cast<Direction>(d), st == model::SlotState::Writing), owner);
  } else if (st == model::SlotState::Empty || st == model::SlotState::Ready) {
    expect_field(params, ClauseId::S_WORD, slot + ".word.owner_pid", 0u, owner);
  }
  const auto msg = m.message_in_slot(static_cast<Direction>(d), static_cast<Priority>(p), i);
  if (!msg || st == model::SlotState::Empty) return;
  // Writing after fill, Ready, Reading, Done: the header describes the message.
  expect_field(params, ClauseId::S_LAYOUT, slot + ".priority", p, at<std::uint8_t>(bytes, s + 24, "priority"));
  expect_field(params, ClauseId::S_LAYOUT, slot + ".length", msg->payload.size(),
               at<std::uint32_t>(bytes, s + 16, "length"));
  expect_field(params, ClauseId::S_LAYOUT, slot + ".sequence", msg->sequence,
               at<std::uint64_t>(bytes, s + 8, "sequence"));
  const auto position = at<std::uint64_t>(bytes, s + 32, "position");
  expect_field(params, ClauseId::S_LAYOUT, slot + ".position % capacity", i, position % rv.capacity);
  if (s + kSlotHeader + msg->payload.size() > bytes.size())
    fail_case(ClauseId::G_PLACE, "" + slot + " payload past the end");
  const std::byte* payload = bytes.data() + s + kSlotHeader;
  params.record(ClauseId::S_LAYOUT);
  if (!msg->payload.empty() && std::memcmp(payload, msg->payload.data(), msg->payload.size()) != 0)
    fail_case(ClauseId::S_LAYOUT, "" + slot + ": payload bytes at offset 64 are not the message written");
  expect_field(params, ClauseId::S_CHECKSUM, slot + ".checksum", crc32c_by_definition({payload, msg->payload.size()}),
               at<std::uint32_t>(bytes, s + 20, "checksum"));
}

// Ring (d, p): its header (R-LAYOUT, R-POSITIONS) and every slot.
void expect_ring(const Params& params, const Model& m, Adapter& adapter, const model::Config& config,
                 const model::View& v, const Offsets& o, std::span<const std::byte> bytes, int d, int p) {
  const model::RingView& rv = v.rings[d][p];
  const std::size_t r = o.ring[d][p];
  const std::string name =
      std::string("ring[") + (d == 0 ? "c2d/" : "d2c/") + std::string(shm::to_string(static_cast<Priority>(p))) + "]";
  // R-LAYOUT is recorded where head or tail, at their offsets, was
  // seen moved (the static fields alone cannot show a ring in use).
  params.record(ClauseId::G_PLACE);
  expect_field(params, ClauseId::R_LAYOUT, name + ".ring_magic", kRingMagic, at<std::uint32_t>(bytes, r, "ring_magic"),
               false);
  expect_field(params, ClauseId::R_LAYOUT, name + ".capacity", rv.capacity, at<std::uint32_t>(bytes, r + 4, "capacity"),
               false);
  expect_field(params, ClauseId::R_LAYOUT, name + ".slot_size", config.slot_size,
               at<std::uint32_t>(bytes, r + 8, "slot_size"), false);
  expect_field(params, ClauseId::R_LAYOUT, name + ".slot_stride", o.stride,
               at<std::uint32_t>(bytes, r + 12, "slot_stride"), false);
  expect_field(params, ClauseId::R_LAYOUT, name + ".direction", d, at<std::uint8_t>(bytes, r + 16, "direction"), false);
  expect_field(params, ClauseId::R_LAYOUT, name + ".priority", p, at<std::uint8_t>(bytes, r + 17, "priority"), false);
  const auto head = at<std::uint64_t>(bytes, r + 64, "head");
  const auto tail = at<std::uint64_t>(bytes, r + 128, "tail");
  expect_field(params, ClauseId::R_LAYOUT, name + ".head", rv.head, head, rv.head > 0);
  expect_field(params, ClauseId::R_LAYOUT, name + ".tail", rv.tail, tail, rv.tail > 0);
  expect_field(params, ClauseId::R_LAYOUT, name + ".corrupt_skipped", rv.corrupt_skipped,
               at<std::uint64_t>(bytes, r + 136, "corrupt_skipped"), rv.corrupt_skipped > 0);
  expect_field(params, ClauseId::R_LAYOUT, name + ".reclaimed", rv.reclaimed,
               at<std::uint64_t>(bytes, r + 144, "reclaimed"), rv.reclaimed > 0);
  if (rv.head > 0) params.record(ClauseId::R_POSITIONS);
  if (!(tail <= head && head - tail <= rv.capacity))
    fail_case(ClauseId::R_POSITIONS, "" + name + " head/tail out of range");
  const RingAt at_ring{d, p, r, rv, name, tail};
  for (std::uint32_t i = 0; i < rv.capacity; ++i) expect_slot(params, m, adapter, o, bytes, at_ring, i);
}

}  // namespace

CheckResult run_layout(const Params& params) {
  return rc_check("layout", params, depth_budget(params, 30, 300, 3000), 100, [&] {
    Fixture f = connected_fixture(params);
    const model::Config& config = f.config;
    auto& m = f.model;
    Adapter* a = f.adapter.get();
    const bool acknowledged = drive(*m, *a, config.slot_size);
    const auto bytes = a->segment_bytes();
    const model::View v = m->view();
    const Offsets o = offsets_of(*m, config.slot_size);
    if (acknowledged) expect_published(v, o, bytes);

    expect_control(params, config, v, o, bytes);
    for (int d = 0; d < 2; ++d)
      for (int p = 0; p < 3; ++p) expect_ring(params, *m, *a, config, v, o, bytes, d, p);
  });
}

// One invalid field (or a truncation, or a wrong version): what to change and
// what connect must then say.
struct Mutation {
  std::string field;  // the word the error must contain
  ClauseId clause = ClauseId::V_CONNECT;
  shm::ErrorCode code = shm::ErrorCode::CorruptSegment;
  std::uint16_t version = 0;
  std::vector<std::pair<std::size_t, std::vector<std::byte>>> writes;
  std::optional<std::size_t> truncate_to;
  std::string text;  // for the counterexample
};

void showValue(const Mutation& m, std::ostream& os) { os << "mutation: " << m.text; }

template <class T>
std::vector<std::byte> raw(T v) {
  std::vector<std::byte> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

Mutation gen_mutation(const model::Config& config, const Model& m, const Offsets& o, std::span<const std::byte> bytes) {
  Mutation mu;
  mu.clause = ClauseId::V_CONNECT;
  mu.version = config.protocol_version;
  auto set = [&](const std::string& field, std::size_t off, auto value) {
    mu.field = field;
    mu.writes.push_back({off, raw(value)});
    mu.text = field + " at offset " + std::to_string(off) + " := " + std::to_string(value);
  };
  // Another value, as often just beside the right one (one less, one more,
  // zero: the off-by-one and the one-sided check) as anywhere.
  auto other32 = [](std::uint32_t not_this) {
    const std::uint32_t near =
        *rc::gen::element<std::uint32_t>(not_this - 1, not_this + 1, 0u, not_this / 2, not_this * 2);
    if (near != not_this && *rc::gen::arbitrary<bool>()) return near;
    return *rc::gen::suchThat(rc::gen::arbitrary<std::uint32_t>(), [=](std::uint32_t x) { return x != not_this; });
  };
  auto current32 = [&](std::size_t off) {
    std::uint32_t v;
    std::memcpy(&v, bytes.data() + off, 4);
    return v;
  };
  const int d = *rc::gen::inRange(0, 2), p = *rc::gen::inRange(0, 3);
  const std::size_t ring = o.ring[d][p];
  const std::string ring_name =
      std::string("ring[") + (d == 0 ? "c2d/" : "d2c/") + std::string(shm::to_string(static_cast<Priority>(p))) + "].";
  switch (*rc::gen::inRange(0, 17)) {
    case 0:
      set("magic", 0,
          *rc::gen::suchThat(rc::gen::arbitrary<std::uint64_t>(), [](std::uint64_t x) { return x != kMagic; }));
      break;
    case 1:  // another layout is another protocol, not corruption (SPEC L-CONST)
      set("layout_version", 8, other32(shm::LAYOUT_VERSION));
      mu.code = shm::ErrorCode::ProtocolMismatch;
      mu.clause = ClauseId::L_CONST;
      break;
    case 2:
      set("segment_size", 16, *rc::gen::suchThat(rc::gen::arbitrary<std::uint64_t>(), [&](std::uint64_t x) {
            return x != config.segment_size;
          }));
      break;
    case 3:
      mu.field = "segment_size";
      mu.truncate_to = *rc::gen::inRange<std::size_t>(shm::MIN_SEGMENT_SIZE, config.segment_size);
      mu.text = "file truncated to " + std::to_string(*mu.truncate_to) + " bytes";
      break;
    case 4:
      mu.field = "size";
      mu.clause = ClauseId::M_OPEN;
      mu.truncate_to = *rc::gen::inRange<std::size_t>(0, shm::MIN_SEGMENT_SIZE);
      mu.text = "file truncated to " + std::to_string(*mu.truncate_to) + " bytes (below MIN_SEGMENT_SIZE)";
      break;
    case 5: set("slot_size", 24, *rc::gen::element<std::uint32_t>(0u, 4097u, 65536u, UINT32_MAX)); break;
    case 6: set("slot_stride", 28, other32(static_cast<std::uint32_t>(o.stride))); break;
    case 7:
      set("slots_per_direction", 32,
          *rc::gen::element<std::uint32_t>(0u, UINT32_MAX,
                                           static_cast<std::uint32_t>(config.segment_size / o.stride + 1)));
      break;
    case 8: set("slot_count", 36 + 4 * (3 * d + p), other32(m.capacity(static_cast<Priority>(p)))); break;
    case 9:
      set("flags", 60, std::uint32_t{1} << *rc::gen::inRange(2, 32));
      mu.clause = ClauseId::C_FLAGS;
      break;
    case 10:
      set("backpressure", 88, *rc::gen::inRange<std::uint32_t>(1001, UINT32_MAX));
      mu.clause = ClauseId::C_BACKPRESSURE;
      break;
    case 11: {
      static const char* names[] = {"ring_magic", "capacity", "slot_size", "slot_stride"};
      const int f = *rc::gen::inRange(0, 4);
      set(names[f], ring + 4 * f, other32(current32(ring + 4 * f)));
      mu.text = ring_name + mu.text;
      break;
    }
    case 12: {
      const bool dir = *rc::gen::arbitrary<bool>();
      set(dir ? "direction" : "priority", ring + (dir ? 16 : 17), static_cast<std::uint8_t>(*rc::gen::inRange(3, 256)));
      mu.text = ring_name + mu.text;
      break;
    }
    case 13: {
      std::uint64_t tail;
      std::memcpy(&tail, bytes.data() + ring + 128, 8);
      set("head", ring + 64,
          tail + m.capacity(static_cast<Priority>(p)) + 1 + *rc::gen::inRange<std::uint64_t>(0, 1000));
      mu.clause = ClauseId::R_POSITIONS;
      mu.text = ring_name + mu.text + " (more than capacity past tail)";
      break;
    }
    case 14:
      mu.field = "protocol";
      mu.code = shm::ErrorCode::ProtocolMismatch;
      mu.version = static_cast<std::uint16_t>(config.protocol_version + 1 + *rc::gen::inRange(0, 100));
      mu.text = "client asks for protocol " + std::to_string(mu.version);
      break;
    case 15:
      set("poisoned", 60, shm::FLAG_POISONED);
      mu.clause = ClauseId::C_FLAGS;
      mu.text = "flags := POISONED";
      break;
    default:
      set("shut down", 60, std::uint32_t{1});
      mu.code = shm::ErrorCode::Disconnected;
      mu.clause = ClauseId::T_SHUTDOWN;
      mu.text = "flags := SHUTDOWN";
      break;
  }
  return mu;
}

// V-CONNECT: one field made invalid; connect must refuse, naming it.
CheckResult run_connect_validation(const Params& params) {
  return rc_check("connect-validation", params, depth_budget(params, 60, 600, 6000), 100, [&] {
    Fixture f = connected_fixture(params);
    const model::Config& config = f.config;
    auto& m = f.model;
    Adapter* a = f.adapter.get();
    (void)a->write(Direction::ClientToDaemon, Priority::High, pattern(1, 1));
    std::vector<std::byte> bytes(a->segment_bytes().begin(), a->segment_bytes().end());
    params.record(ClauseId::V_CONNECT);
    if (auto s = a->connect_to_copy(bytes, config.protocol_version); !s)
      fail_case(ClauseId::V_CONNECT, "an intact copy of a valid segment was refused: " + s.error().message());
    const Offsets o = offsets_of(*m, config.slot_size);
    // By value: RapidCheck runs this generator again while shrinking, after
    // this frame is gone.
    const Mutation mu =
        *rc::gen::exec([config = config, model = *m, o, bytes] { return gen_mutation(config, model, o, bytes); });
    for (const auto& [off, value] : mu.writes) std::memcpy(bytes.data() + off, value.data(), value.size());
    if (mu.truncate_to) bytes.resize(*mu.truncate_to);
    params.record(mu.clause);
    // V-BOUNDS: the sizes and counts every offset is derived from; a connect
    // that formed an address from one unchecked would crash or accept.
    for (const char* f : {"segment_size", "slot_size", "slot_stride", "slots_per_direction", "slot_count", "capacity"})
      if (mu.field == f) params.record(ClauseId::V_BOUNDS);
    const auto s = a->connect_to_copy(bytes, mu.version);
    if (s.ok()) fail_case(mu.clause, "connect accepted a segment after " + mu.text);
    if (s.code() != mu.code)
      fail_case(mu.clause, "after " + mu.text + " the spec requires " + std::string(shm::to_string(mu.code)) +
                               ", connect returned " + s.error().message());
    if (s.error().detail.find(mu.field) == std::string::npos)
      fail_case(mu.clause, "after " + mu.text + " the error does not name " + mu.field + ": " + s.error().message());
  });
}

}  // namespace memlink::conformance
