#include "segment_fields.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "memlink/shm/layout.hpp"

namespace memlink::conformance {
namespace {

struct Field {
  std::size_t offset, size;
  const char* name;
};

// SPEC C-LAYOUT, line by line.
constexpr Field kControl[] = {
    {0, 8, "magic"},
    {8, 4, "layout_version"},
    {12, 2, "protocol_version"},
    {16, 8, "segment_size"},
    {24, 4, "slot_size"},
    {28, 4, "slot_stride"},
    {32, 4, "slots_per_direction"},
    {36, 24, "slot_count"},
    {60, 4, "flags"},
    {64, 4, "daemon_alive"},
    {68, 4, "daemon_pid"},
    {72, 8, "heartbeat_ns"},
    {80, 8, "epoch"},
    {88, 4, "backpressure"},
    {92, 4, "d2c_consumer_pid"},
    {96, 8, "heartbeat_interval_ns"},
    {128, 4, "client_count"},
    {192, 8, "client_head"},
    {256, 8, "daemon_tail"},
    {320, 4, "daemon_futex.word"},
    {324, 4, "daemon_futex.waiters"},
    {384, 4, "client_futex.word"},
    {388, 4, "client_futex.waiters"},
    {448, 4, "c2d_space_futex.word"},
    {452, 4, "c2d_space_futex.waiters"},
    {512, 4, "d2c_space_futex.word"},
    {516, 4, "d2c_space_futex.waiters"},
};
// SPEC R-LAYOUT.
constexpr Field kRingHeader[] = {
    {0, 4, "ring_magic"}, {4, 4, "capacity"}, {8, 4, "slot_size"}, {12, 4, "slot_stride"},      {16, 1, "direction"},
    {17, 1, "priority"},  {64, 8, "head"},    {128, 8, "tail"},    {136, 8, "corrupt_skipped"}, {144, 8, "reclaimed"},
};
// SPEC S-LAYOUT.
constexpr Field kSlot[] = {
    {0, 8, "word"},      {8, 8, "sequence"},  {16, 4, "length"},
    {20, 4, "checksum"}, {24, 1, "priority"}, {32, 8, "position"},
};

template <std::size_t N>
std::string name_in(const Field (&table)[N], std::size_t off, const char* otherwise) {
  for (const Field& f : table)
    if (off >= f.offset && off < f.offset + f.size) return f.name;
  return otherwise;
}

template <class T>
T load(std::span<const std::byte> s, std::size_t off) {
  T v{};
  if (off + sizeof v <= s.size()) std::memcpy(&v, s.data() + off, sizeof v);
  return v;
}

std::string control_field(std::size_t off) {
  if (off >= 576 && off < 576 + 4 * shm::CLIENT_TABLE_SIZE)
    return "client_pids[" + std::to_string((off - 576) / 4) + "]";
  if (off >= 1088 && off < 1088 + 8 * shm::CLIENT_TABLE_SIZE)
    return "client_published (byte " + std::to_string(off) + ")";
  return name_in(kControl, off, ("reserved (byte " + std::to_string(off) + ")").c_str());
}

}  // namespace

std::string segment_field(std::span<const std::byte> segment, std::size_t offset) {
  if (offset < shm::CONTROL_REGION_SIZE) return "control." + control_field(offset);
  const auto g = shm::compute_geometry(load<std::uint64_t>(segment, 16), load<std::uint32_t>(segment, 24));
  if (!g) return "byte " + std::to_string(offset) + " (the control region's geometry is not valid)";
  for (shm::Direction d : {shm::Direction::ClientToDaemon, shm::Direction::DaemonToClient})
    for (shm::Priority p : shm::kAllPriorities) {
      const std::size_t start = g->offset(d, p);
      const std::size_t end = start + shm::RING_HEADER_SIZE + std::size_t{g->capacity(p)} * g->slot_stride;
      if (offset < start || offset >= end) continue;
      const std::string ring = std::string("ring[") + (d == shm::Direction::ClientToDaemon ? "c2d/" : "d2c/") +
                               std::string(shm::to_string(p)) + "]";
      const std::size_t in = offset - start;
      if (in < shm::RING_HEADER_SIZE) return ring + "." + name_in(kRingHeader, in, "reserved");
      const std::size_t slot = (in - shm::RING_HEADER_SIZE) / g->slot_stride;
      const std::size_t at = (in - shm::RING_HEADER_SIZE) % g->slot_stride;
      return ring + ".slot[" + std::to_string(slot) + "]." + (at >= 64 ? "payload" : name_in(kSlot, at, "reserved"));
    }
  return "byte " + std::to_string(offset) + " (past the rings)";
}

std::vector<std::byte> read_segment_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(all.size());
  std::memcpy(out.data(), all.data(), all.size());
  return out;
}

std::vector<std::string> changed_fields(std::span<const std::byte> before, std::span<const std::byte> after) {
  std::vector<std::string> out;
  if (before.size() != after.size()) out.push_back("size");
  const std::size_t n = std::min(before.size(), after.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (before[i] == after[i]) continue;
    std::string f = segment_field(after, i);
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(std::move(f));
  }
  return out;
}

}  // namespace memlink::conformance
