// Every shared write predicted: the frame check passes what the reference
// writes for each step and fails a store anywhere else — another ring's
// head, a slot nobody claimed, the epoch, a reserved byte, a counter of the
// other direction — naming the field and its values; a leaked sleeper count
// fails F-WAKE.
#include "segment_frame.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "memlink/conformance/reference_adapter.hpp"

namespace memlink::conformance {
namespace {

using model::Model;
using P = shm::Priority;
using D = model::Direction;

std::vector<std::byte> bytes_of(std::span<const std::byte> s) { return {s.begin(), s.end()}; }

// A reference segment and its model, side by side, one client connected.
struct Pair {
  model::Config config{4096 + 2 * (3 * 192 + 4 * 128), 64, 1};
  ReferenceAdapter ref;
  Model m = *Model::create(config);
  Pair() {
    EXPECT_TRUE(ref.create(config).ok());
    EXPECT_TRUE(ref.connect(1).ok());
    m.connect(1);
  }
  std::vector<std::byte> image() { return bytes_of(ref.segment_bytes()); }
};

std::vector<std::byte> payload(std::size_t n) { return std::vector<std::byte>(n, std::byte{0x5A}); }

template <class T>
void store(std::vector<std::byte>& image, std::size_t offset, T value) {
  std::memcpy(image.data() + offset, &value, sizeof value);
}

// Runs one write of c2d high through both, and returns the violations of
// `after` (the reference's image, changed by `tamper`) against the model.
template <class Tamper>
std::vector<Violation> after_write(Pair& p, Tamper tamper) {
  const auto before = p.image();
  const model::View was = p.m.view();
  Model next = p.m;
  next.write(D::ClientToDaemon, P::High, payload(10));
  EXPECT_TRUE(p.ref.write(D::ClientToDaemon, P::High, payload(10)).ok());
  auto after = p.image();
  tamper(after);
  const model::View now = next.view();
  p.m = next;
  const FrameStep step{StepKind::Write, D::ClientToDaemon, P::High, &was, &now, "write c2d high"};
  return unpredicted_writes(step, before, after);
}

std::size_t ring_offset(Pair& p, D d, P prio) {
  return shm::compute_geometry(p.config.segment_size, p.config.slot_size)->offset(d, prio);
}

TEST(SegmentFrame, TheReferencesOwnWritesArePredicted) {
  Pair p;
  EXPECT_TRUE(after_write(p, [](auto&) {}).empty());
  // And a read that frees the slot.
  const auto before = p.image();
  const Model was_m = p.m;
  Model next = was_m;
  next.read(D::ClientToDaemon);
  ASSERT_TRUE(p.ref.read(D::ClientToDaemon).ok());
  const model::View was = was_m.view(), now = next.view();
  // `before` was taken after the write above: the read's own writes only.
  const FrameStep read{StepKind::Read, D::ClientToDaemon, P::Low, &was, &now, "read c2d"};
  EXPECT_TRUE(unpredicted_writes(read, before, p.image()).empty());
  EXPECT_TRUE(quiescent_violations(p.image(), "read c2d").empty());
}

TEST(SegmentFrame, AnotherRingsHeadIsAStrayWrite) {
  Pair p;
  const std::size_t low_head = ring_offset(p, D::ClientToDaemon, P::Low) + 64;
  const auto v = after_write(p, [&](auto& img) { store<std::uint64_t>(img, low_head, 7); });
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].clause, Citation(ClauseId::R_LAYOUT));
  EXPECT_NE(v[0].text.find("ring[c2d/low].head changed from 0 to 7"), std::string::npos) << v[0].text;
  EXPECT_NE(v[0].text.find("the ring's producers"), std::string::npos) << v[0].text;
}

TEST(SegmentFrame, ASlotNobodyClaimedIsAStrayWrite) {
  Pair p;
  // c2d high has 2 slots: the write claims position 0, slot 0; slot 1 is nobody's.
  const auto g = *shm::compute_geometry(p.config.segment_size, p.config.slot_size);
  const std::size_t slot1 = g.offset(D::ClientToDaemon, P::High) + shm::RING_HEADER_SIZE + g.slot_stride;
  const auto v = after_write(p, [&](auto& img) { store<std::uint64_t>(img, slot1 + 8, 1); });
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].clause, Citation(ClauseId::S_LAYOUT));
  EXPECT_NE(v[0].text.find("ring[c2d/high].slot[1].sequence"), std::string::npos) << v[0].text;
  // The claimed slot's payload is the writer's to fill.
  EXPECT_TRUE(after_write(p, [&](auto& img) { img[slot1 + 64] ^= std::byte{1}; }).empty());
}

TEST(SegmentFrame, ControlFieldsOutsideTheStepAreStrayWrites) {
  for (const auto& [offset, name] : std::vector<std::pair<std::size_t, std::string>>{
           {80, "control.epoch"},
           {256, "control.daemon_tail"},
           {88, "control.backpressure"},
           {92, "control.d2c_consumer_pid"},
           {384, "control.client_futex.word"},
           {2200, "control.reserved (byte 2200)"},
       }) {
    Pair p;
    const std::size_t at = offset;  // (a structured binding cannot be captured before C++20's clang 16)
    const auto v = after_write(p, [&](auto& img) { img[at] ^= std::byte{1}; });
    ASSERT_EQ(v.size(), 1u) << name;
    EXPECT_EQ(v[0].clause, Citation(ClauseId::C_LAYOUT)) << name;
    EXPECT_NE(v[0].text.find(name + " changed"), std::string::npos) << v[0].text;
  }
  // What a c2d write may touch besides its ring: the heartbeat (the daemon
  // stamps it whenever), the counters and the daemon's futex.
  for (std::size_t offset : {72u, 192u, 320u}) {
    Pair p;
    EXPECT_TRUE(after_write(p, [&](auto& img) { img[offset] ^= std::byte{1}; }).empty()) << offset;
  }
}

TEST(SegmentFrame, ALeakedSleeperCountFailsFWake) {
  Pair p;
  auto img = p.image();
  EXPECT_TRUE(quiescent_violations(img, "write").empty());
  store<std::uint32_t>(img, 452, 1);  // c2d_space_futex.waiters
  const auto v = quiescent_violations(img, "write");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].clause, Citation(ClauseId::F_WAKE));
  EXPECT_NE(v[0].text.find("c2d_space_futex.waiters is 1"), std::string::npos) << v[0].text;
}

TEST(SegmentFrame, ASegmentThatChangedSizeOrVanishedIsJudgedOnce) {
  Pair p;
  const auto before = p.image();
  const model::View v = p.m.view();
  const FrameStep step{StepKind::Shutdown, D::ClientToDaemon, P::Low, &v, &v, "shutdown"};
  EXPECT_TRUE(unpredicted_writes(step, before, {}).empty());  // the name is gone (T-SHUTDOWN allows it)
  auto grown = before;
  grown.resize(before.size() + 4096);
  const auto out = unpredicted_writes(step, before, grown);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].text.find("size changed"), std::string::npos);
}

}  // namespace
}  // namespace memlink::conformance
