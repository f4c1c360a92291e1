#include "segment_fields.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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
constexpr std::size_t kClientPids = 576;        // client_pids[128], u32 each
constexpr std::size_t kClientPublished = 1088;  // client_published[128], u64 each
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

template <class T>
T load(std::span<const std::byte> s, std::size_t off) {
  T v{};
  if (off + sizeof v <= s.size()) std::memcpy(&v, s.data() + off, sizeof v);
  return v;
}

// The entry of `table` holding byte `off`, as a place's field and extent.
template <std::size_t N>
void find_in(const Field (&table)[N], std::size_t off, std::size_t base, FieldPlace& out) {
  for (const Field& f : table)
    if (off >= f.offset && off < f.offset + f.size) {
      out.field = f.name;
      out.offset = base + f.offset;
      out.size = f.size;
      return;
    }
  out.field = "reserved";
  out.offset = base + off;
  out.size = 1;
}

FieldPlace locate_control(std::size_t off) {
  FieldPlace out;
  out.region = FieldPlace::Control;
  if (off >= kClientPids && off < kClientPids + 4 * shm::CLIENT_TABLE_SIZE) {
    out.field = "client_pids";
    out.index = (off - kClientPids) / 4;
    out.offset = kClientPids + 4 * out.index;
    out.size = 4;
  } else if (off >= kClientPublished && off < kClientPublished + 8 * shm::CLIENT_TABLE_SIZE) {
    out.field = "client_published";
    out.index = (off - kClientPublished) / 8;
    out.offset = kClientPublished + 8 * out.index;
    out.size = 8;
  } else {
    find_in(kControl, off, 0, out);
  }
  return out;
}

const char* direction_name(shm::Direction d) { return d == shm::Direction::ClientToDaemon ? "c2d" : "d2c"; }

}  // namespace

FieldPlace locate_field(std::span<const std::byte> segment, std::size_t offset) {
  if (offset < shm::CONTROL_REGION_SIZE) return locate_control(offset);
  FieldPlace out;
  out.offset = offset;
  const auto g = shm::compute_geometry(load<std::uint64_t>(segment, 16), load<std::uint32_t>(segment, 24));
  if (!g) {
    out.field = "byte " + std::to_string(offset) + " (the control region's geometry is not valid)";
    return out;
  }
  for (shm::Direction d : {shm::Direction::ClientToDaemon, shm::Direction::DaemonToClient})
    for (shm::Priority p : shm::kAllPriorities) {
      const std::size_t start = g->offset(d, p);
      const std::size_t end = start + shm::RING_HEADER_SIZE + std::size_t{g->capacity(p)} * g->slot_stride;
      if (offset < start || offset >= end) continue;
      out.direction = d;
      out.priority = p;
      const std::size_t in = offset - start;
      if (in < shm::RING_HEADER_SIZE) {
        out.region = FieldPlace::RingHeader;
        find_in(kRingHeader, in, start, out);
        return out;
      }
      out.region = FieldPlace::Slot;
      out.index = (in - shm::RING_HEADER_SIZE) / g->slot_stride;
      const std::size_t slot_start = start + shm::RING_HEADER_SIZE + out.index * g->slot_stride;
      const std::size_t at = (in - shm::RING_HEADER_SIZE) % g->slot_stride;
      if (at >= 64) {
        out.field = "payload";
        out.offset = slot_start + 64;
        out.size = g->slot_stride - 64;
      } else {
        find_in(kSlot, at, slot_start, out);
      }
      return out;
    }
  out.field = "byte " + std::to_string(offset) + " (past the rings)";
  return out;
}

std::string FieldPlace::name() const {
  switch (region) {
    case Control:
      if (field == "client_pids" || field == "client_published")
        return "control." + field + "[" + std::to_string(index) + "]";
      return "control." + (field == "reserved" ? "reserved (byte " + std::to_string(offset) + ")" : field);
    case RingHeader:
    case Slot: {
      std::string ring =
          std::string("ring[") + direction_name(direction) + "/" + std::string(shm::to_string(priority)) + "]";
      if (region == RingHeader) return ring + "." + field;
      return ring + ".slot[" + std::to_string(index) + "]." + field;
    }
    case Outside: break;
  }
  return field;
}

std::string segment_field(std::span<const std::byte> segment, std::size_t offset) {
  return locate_field(segment, offset).name();
}

std::vector<std::byte> read_segment_file(const std::string& path) {
  // Not through a link, never blocking on a FIFO planted at the name.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return {};
  std::vector<std::byte> out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    out.resize(done);
  }
  ::close(fd);
  return out;
}

bool write_segment_copy(const std::string& path, std::span<const std::byte> bytes, std::string& error) {
  // A name in a shared directory: whatever another user put there is
  // removed (a link itself, never its target) and the copy is created
  // exclusively, so a link planted between the two fails the open.
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "cannot create " + path + ": " + std::strerror(errno);
    return false;
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (done == bytes.size()) return true;
  error = "cannot write " + path + ": " + std::strerror(errno);
  return false;
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
