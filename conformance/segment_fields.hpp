// Names for the bytes of a segment laid out as SPEC says (C-LAYOUT,
// R-LAYOUT, S-LAYOUT), so that a check that compares two images of one
// segment can say which field moved: "control.heartbeat_ns",
// "ring[c2d/high].tail", "ring[d2c/low].slot[2].word".
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "memlink/shm/layout.hpp"
#include "memlink/shm/priority.hpp"

namespace memlink::conformance {

// Where one byte of a SPEC-layout segment lies: which field, of which ring
// and slot.
struct FieldPlace {
  enum Region { Control, RingHeader, Slot, Outside };
  Region region = Outside;
  std::string field;  // SPEC's name: "epoch", "client_pids", "head", "word", "payload", "reserved"
  shm::Direction direction = shm::Direction::ClientToDaemon;  // RingHeader, Slot
  shm::Priority priority = shm::Priority::Low;                // RingHeader, Slot
  std::size_t index = 0;   // Slot: the slot; client_pids, client_published: the entry
  std::size_t offset = 0;  // the field's first byte in the segment
  std::size_t size = 0;    // its bytes
  // "control.client_pids[3]", "ring[c2d/high].tail", "ring[d2c/low].slot[2].word"
  std::string name() const;
};

// The field holding byte `offset` of `segment` (its geometry read from the
// segment's own control region).
FieldPlace locate_field(std::span<const std::byte> segment, std::size_t offset);

// The field holding byte `offset` of `segment` (its geometry read from the
// segment's own control region).
std::string segment_field(std::span<const std::byte> segment, std::size_t offset);

// The bytes of the segment file at `path` as they are now (empty if it
// cannot be read): how the suite sees a spec_layout segment for itself.
// (A link or a FIFO at the name reads as empty.)
std::vector<std::byte> read_segment_file(const std::string& path);

// Writes `bytes` as a new file at `path` (mode 0600), never through a link
// planted at the name; false and `error` if it cannot.
bool write_segment_copy(const std::string& path, std::span<const std::byte> bytes, std::string& error);

// Every field whose bytes differ between two images of one segment, each
// once, in offset order ("size" if the two differ in length).
std::vector<std::string> changed_fields(std::span<const std::byte> before, std::span<const std::byte> after);

}  // namespace memlink::conformance
