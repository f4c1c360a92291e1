// Names for the bytes of a segment laid out as SPEC says (C-LAYOUT,
// R-LAYOUT, S-LAYOUT), so that a check that compares two images of one
// segment can say which field moved: "control.heartbeat_ns",
// "ring[c2d/high].tail", "ring[d2c/low].slot[2].word".
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace memlink::conformance {

// The field holding byte `offset` of `segment` (its geometry read from the
// segment's own control region).
std::string segment_field(std::span<const std::byte> segment, std::size_t offset);

// The bytes of the segment file at `path` as they are now (empty if it
// cannot be read): how the suite sees a spec_layout segment for itself.
std::vector<std::byte> read_segment_file(const std::string& path);

// Every field whose bytes differ between two images of one segment, each
// once, in offset order ("size" if the two differ in length).
std::vector<std::string> changed_fields(std::span<const std::byte> before, std::span<const std::byte> after);

}  // namespace memlink::conformance
