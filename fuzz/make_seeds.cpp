// Writes the seed corpora (fuzz/corpus/<target>/) and the regression inputs
// (fuzz/regressions/<target>/): valid segments of several geometries with
// messages in every slot state, op streams for each kind of hostile write,
// boundary values. Run by hand when the layout changes:
//   build/<preset>/fuzz_make_seeds fuzz
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "memlink/shm/checksum.hpp"
#include "memlink/shm/transport.hpp"
#include "memlink/shm/version.hpp"
#include "segment_builder.hpp"

using namespace memlink;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

template <class T>
void put(std::vector<std::uint8_t>& v, T x) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(&x);
  v.insert(v.end(), b, b + sizeof x);
}

// A live daemon's segment, with traffic leaving slots in every state.
std::vector<std::uint8_t> segment_snapshot(std::size_t size, std::uint32_t slot_size, int traffic) {
  const std::string path = "/dev/shm/memlink-seeds-" + std::to_string(::getpid());
  (void)shm::MmapSegment::remove(path);
  shm::DaemonOptions o;
  o.slot_size = slot_size;
  auto d = shm::Daemon::create(path, size, 1, o);
  if (!d) return {};
  auto c = shm::Client::connect(path, 1);
  std::vector<std::byte> payload(slot_size, std::byte{0x5A}), out(slot_size);
  for (int i = 0; i < traffic; ++i) {
    const auto p = static_cast<shm::Priority>(i % 3);
    (void)c->write(p, std::span(payload).first(static_cast<std::size_t>(i) % (slot_size + 1)));
    (void)d->write(p, std::span(payload).first(static_cast<std::size_t>(i * 7) % (slot_size + 1)));
    if (i % 3 == 0) (void)d->read(out);
  }
  if (traffic > 0) {
    (void)d->inbound().ring(shm::Priority::Low).claim();      // a Writing slot
    (void)d->outbound().ring(shm::Priority::High).take(out);  // a Reading slot (d2c)
  }
  const auto bytes = d->segment_bytes();
  std::vector<std::uint8_t> snap(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                 reinterpret_cast<const std::uint8_t*>(bytes.data()) + bytes.size());
  (void)shm::MmapSegment::remove(path);
  return snap;
}

// Where a seed goes (relative to FUZZ_DIR) and its bytes.
using Emit = std::function<void(const std::string&, const std::vector<std::uint8_t>&)>;

// hostile_peer's input header: slot size index, n, slack; then ops.
std::vector<std::uint8_t> hostile(std::uint8_t slot_index, std::uint8_t n) { return {slot_index, n, 0}; }

// bounds: edge values.
void bounds_seeds(const Emit& emit) {
  const std::uint64_t edges[] = {0, 1, 4095, 4096, UINT32_MAX, UINT64_MAX / 2, UINT64_MAX - 1, UINT64_MAX};
  for (int i = 0; i < 8; ++i) {
    std::vector<std::uint8_t> v;
    for (int k = 0; k < 5; ++k) put(v, edges[(i + k * 3) % 8]);
    emit("corpus/bounds/edges-" + std::to_string(i), v);
  }
}

// segment_open: valid segments of several geometries, quiet and busy.
void segment_open_seeds(const Emit& emit) {
  struct Geo {
    std::uint32_t slot;
    std::uint32_t n;
    int traffic;
  };
  for (const Geo g : {Geo{1, 1, 0}, Geo{16, 4, 9}, Geo{64, 6, 20}, Geo{256, 3, 7}, Geo{4096, 1, 4}}) {
    const std::size_t size = shm::layout_for(0, g.slot, g.n).used_bytes;
    emit("corpus/segment_open/slot" + std::to_string(g.slot) + "-n" + std::to_string(g.n) + "-traffic" +
             std::to_string(g.traffic),
         segment_snapshot(size, g.slot, g.traffic));
  }
}

// hostile_peer: honest traffic, each field overwritten with edge values, racing rewrites, each state.
void hostile_peer_seeds(const Emit& emit) {
  {
    auto v = hostile(1, 3);
    for (int i = 0; i < 12; ++i) {
      v.insert(v.end(), {0x00, static_cast<std::uint8_t>(i % 3), static_cast<std::uint8_t>(i * 5), 0});  // write
      v.push_back(0x01);                                                                                 // read
    }
    emit("corpus/hostile_peer/write-read", v);
  }
  for (std::uint8_t field = 0; field < 10; ++field) {  // hostile_peer.cpp's fields (layout 2)
    for (std::uint64_t value :
         {std::uint64_t{0}, std::uint64_t{2}, std::uint64_t{5}, std::uint64_t{1} << 40, UINT64_MAX}) {
      auto v = hostile(1, 2);
      v.insert(v.end(), {0x00, 0, 10, 0});  // an honest write to c2d critical
      v.insert(v.end(), {0x03, 0, 0});      // hostile write to that slot...
      put(v, value);
      v.push_back(field);  // ...at this field
      v.insert(v.end(), {0x01, 0x04, 0x08, 0x01});
      emit("corpus/hostile_peer/field" + std::to_string(field) + "-" + std::to_string(value), v);
    }
  }
  // Racing mode (top bit of the first byte): a racer rewrites the payload and
  // length of slots that honest writes keep filling and the reader keeps
  // reading, so values change between validation, copy and checksum.
  for (std::uint8_t field : {std::uint8_t{4}, std::uint8_t{9}, std::uint8_t{0}}) {  // length, payload, state
    auto v = hostile(0x80 | 1, 2);
    for (std::uint8_t index = 0; index < 2; ++index) {
      v.insert(v.end(), {0x03, 0, index});
      put(v, std::uint64_t{0x0102030405060708ULL});
      v.push_back(field);
    }
    for (int i = 0; i < 40; ++i) v.insert(v.end(), {0x00, 0, 30, 0, 0x01});  // write, read
    emit("corpus/hostile_peer/racing-field" + std::to_string(field), v);
  }
  for (std::uint8_t state = 0; state < 6; ++state) {
    auto v = hostile(0, 1);
    v.insert(v.end(), {0x00, 2, 3, 0, 0x03, 2, 0});
    put(v, std::uint64_t{state});
    v.push_back(0);  // the state byte
    v.insert(v.end(), {0x01, 0x06, 2, 0x05, 2, 0x01});
    emit("corpus/hostile_peer/state-" + std::to_string(state), v);
  }
}

void unchecked_length_regression(const Emit& emit) {
  // The proof that hostile_peer catches a reader that trusts the length: a
  // length of 100 in a 64-byte slot, with a checksum that matches those 100
  // bytes, so only the length check stands between the reader and delivering
  // more than a slot. The correct build drops the slot; a build without the
  // check (the mutant catalog's slot-length-trusted) delivers it, and the target aborts.
  auto seg = fuzz::MemorySegment::create(shm::layout_for(0, 64, 1).used_bytes, 64);
  std::vector<std::byte> ten(10, std::byte{0});
  (void)seg->c2d.write(shm::Priority::Critical, ten);
  const auto* payload = reinterpret_cast<const std::byte*>(&seg->c2d.ring(shm::Priority::Critical).slot_header(0)) +
                        shm::SLOT_HEADER_SIZE;
  const std::uint32_t crc = shm::crc32c(payload, 100);
  auto v = hostile(1, 1);
  v.insert(v.end(), {0x00, 0, 10, 0});
  v.insert(v.end(), {0x03, 0, 0});
  put(v, std::uint64_t{100});
  v.push_back(4);  // length := 100
  v.insert(v.end(), {0x03, 0, 0});
  put(v, std::uint64_t{crc});
  v.push_back(5);     // checksum := CRC32C of those 100 bytes
  v.push_back(0x01);  // read
  emit("regressions/hostile_peer/unchecked-length", v);
}

// ops_differential: mixed traffic in each geometry.
void ops_differential_seeds(const Emit& emit) {
  for (std::uint8_t slot_index = 0; slot_index < 4; ++slot_index) {
    std::vector<std::uint8_t> v{slot_index, 3, 0};
    for (int i = 0; i < 40; ++i) {
      const std::uint8_t op = static_cast<std::uint8_t>((i * 37) & 0xFF);
      v.push_back(op);
      v.insert(v.end(), {static_cast<std::uint8_t>(i * 3), 0});
    }
    emit("corpus/ops_differential/mixed-" + std::to_string(slot_index), v);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string arg = argc == 2 ? argv[1] : "";
  if (arg == "--help" || arg == "-h" || arg == "--version") {
    if (arg == "--version")
      std::printf("fuzz_make_seeds %s (layout version %u)\n", MEMLINK_SHM_VERSION, unsigned{shm::LAYOUT_VERSION});
    else
      std::printf("usage: %s FUZZ_DIR\nWrites FUZZ_DIR/corpus/* and FUZZ_DIR/regressions/*.\n", argv[0]);
    return 0;
  }
  // A flag is never a directory: `make_seeds --hlep` must not fill ./--hlep.
  if (argc != 2 || arg.empty() || arg[0] == '-') {
    std::fprintf(stderr, "usage: %s FUZZ_DIR\nWrites FUZZ_DIR/corpus/* and FUZZ_DIR/regressions/*.\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  int files = 0;
  auto emit = [&](const std::string& rel, const std::vector<std::uint8_t>& bytes) {
    write_file(root / rel, bytes);
    ++files;
  };

  bounds_seeds(emit);
  segment_open_seeds(emit);
  hostile_peer_seeds(emit);
  unchecked_length_regression(emit);
  ops_differential_seeds(emit);
  std::printf("wrote %d seed files under %s\n", files, root.c_str());
  return 0;
}
