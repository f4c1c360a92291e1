#include "segment_frame.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include "segment_fields.hpp"

namespace memlink::conformance {
namespace {

using shm::Direction;
using shm::Priority;

bool is(const FieldPlace& f, const char* name) { return f.field == name; }
bool c2d(Direction d) { return d == Direction::ClientToDaemon; }

const model::RingView& ring(const model::View& v, Direction d, Priority p) {
  return v.rings[static_cast<std::size_t>(d)][static_cast<std::size_t>(p)];
}

// Whether slot `index` of a ring of `capacity` slots holds one of the
// positions [from, to) (R-POSITIONS: position q lives in slot q mod capacity).
bool holds_a_position(std::size_t index, std::uint32_t capacity, std::uint64_t from, std::uint64_t to) {
  if (capacity == 0 || to <= from) return false;
  if (to - from >= capacity) return true;
  for (std::uint64_t q = from; q != to; ++q)
    if (q % capacity == index) return true;
  return false;
}

// The steps that consume: a read (or a peek, which drops what V-SLOT
// refuses) frees the slots its tail passes; a reader that stops also moves
// the word of the slot at its tail; a recovery (K-WRITING, K-READING,
// K-DONE) may free any pending slot.
bool consumes(StepKind k) {
  return k == StepKind::Read || k == StepKind::Peek || k == StepKind::StopReader || k == StepKind::Recover;
}
bool produces(StepKind k) { return k == StepKind::Write || k == StepKind::WriteBlocking || k == StepKind::StopWriter; }
bool changes_clients(StepKind k) {
  return k == StepKind::Connect || k == StepKind::Disconnect || k == StepKind::Reopen || k == StepKind::Recover;
}

// C-LAYOUT: the control fields this step's parties write.
bool control_may_move(const FrameStep& s, const FieldPlace& f) {
  if (is(f, "heartbeat_ns")) return true;  // the daemon's heartbeat, whatever the step
  const Direction d = s.direction;
  if (produces(s.kind)) {
    // The publisher counts its message (T-COUNTERS) and wakes the consumer's futex (F-WAKE).
    if (c2d(d) && (is(f, "client_head") || is(f, "client_published") || is(f, "daemon_futex.word"))) return true;
    if (!c2d(d) && is(f, "client_futex.word")) return true;
  }
  if (consumes(s.kind)) {
    // The consumer counts what it takes (T-COUNTERS), holds the d2c reader
    // token (R-ROLES) and wakes the writers waiting for room.
    if (c2d(d) && (is(f, "daemon_tail") || is(f, "c2d_space_futex.word"))) return true;
    if (!c2d(d) && (is(f, "d2c_consumer_pid") || is(f, "d2c_space_futex.word"))) return true;
  }
  if (changes_clients(s.kind) && (is(f, "client_count") || is(f, "client_pids") || is(f, "d2c_consumer_pid")))
    return true;
  if (s.kind == StepKind::SetBackpressure && is(f, "backpressure")) return true;
  if (s.kind == StepKind::Shutdown) {
    // T-SHUTDOWN: SHUTDOWN set, daemon_alive 0, every sleeper woken.
    if (is(f, "flags") || is(f, "daemon_alive")) return true;
    if (f.field.ends_with("_futex.word")) return true;
  }
  return false;
}

// R-LAYOUT: head moves by its ring's producers, tail and the consumer's
// counters by its consumer; the rest is the creator's.
bool ring_header_may_move(const FrameStep& s, const FieldPlace& f) {
  if (f.direction != s.direction) return false;
  if (produces(s.kind)) return f.priority == s.priority && is(f, "head");
  if (consumes(s.kind)) return is(f, "tail") || is(f, "corrupt_skipped") || is(f, "reclaimed");
  return false;
}

// S-LAYOUT: a producer fills the slots of the positions it claimed; a
// consumer moves the words of the slots it takes and frees; a hostile peer
// changes the oldest pending message of its ring.
bool slot_may_move(const FrameStep& s, const FieldPlace& f) {
  if (f.direction != s.direction) return false;
  const model::RingView& was = ring(*s.before, f.direction, f.priority);
  const model::RingView& now = ring(*s.after, f.direction, f.priority);
  const std::uint32_t capacity = was.capacity;
  if (produces(s.kind)) return f.priority == s.priority && holds_a_position(f.index, capacity, was.head, now.head);
  if (s.kind == StepKind::Corrupt)
    return f.priority == s.priority && holds_a_position(f.index, capacity, was.tail, was.head);
  if (!consumes(s.kind) || !is(f, "word")) return false;
  if (s.kind == StepKind::Recover) return holds_a_position(f.index, capacity, was.tail, was.head);
  std::uint64_t to = std::max(now.tail, was.tail);
  if (s.kind == StepKind::StopReader) to = std::max(to, std::min(was.head, was.tail + 1));  // the slot it holds
  return holds_a_position(f.index, capacity, was.tail, to);
}

bool may_move(const FrameStep& s, const FieldPlace& f) {
  switch (f.region) {
    case FieldPlace::Control: return control_may_move(s, f);
    case FieldPlace::RingHeader: return ring_header_may_move(s, f);
    case FieldPlace::Slot: return slot_may_move(s, f);
    case FieldPlace::Outside: return false;
  }
  return false;
}

// Who SPEC lets write the field, for the report.
std::string writers_of(const FieldPlace& f) {
  if (f.field == "reserved" || f.region == FieldPlace::Outside) return "nobody (reserved, 0)";
  switch (f.region) {
    case FieldPlace::Control: {
      static const std::set<std::string> daemon = {"daemon_alive", "daemon_pid",   "heartbeat_ns",
                                                   "epoch",        "backpressure", "heartbeat_interval_ns",
                                                   "daemon_tail"};
      if (daemon.contains(f.field)) return "the daemon";
      if (f.field == "flags") return "the daemon (SHUTDOWN) and any endpoint (POISONED)";
      if (f.field == "d2c_consumer_pid") return "the client that reads d2c";
      if (f.field == "client_count") return "connecting and disconnecting clients";
      if (f.field == "client_head") return "clients without a table entry, as they publish c2d";
      if (f.field == "client_pids") return "connecting clients and reapers";
      if (f.field == "client_published") return "the client holding the entry, as it publishes c2d";
      if (f.field.ends_with(".word")) return "a publisher or releaser that wakes";
      if (f.field.ends_with(".waiters")) return "sleepers, around their sleep";
      return "the creator, once";
    }
    case FieldPlace::RingHeader:
      if (f.field == "head") return "the ring's producers (R-CLAIM)";
      if (f.field == "tail" || f.field == "corrupt_skipped" || f.field == "reclaimed") return "the ring's consumer";
      return "the creator, once";
    case FieldPlace::Slot:
      if (f.field == "word") return "the producer of the position it holds and the ring's consumer (S-WORD)";
      return "the producer of the position it holds";
    case FieldPlace::Outside: break;
  }
  return "nobody";
}

Citation clause_of(const FieldPlace& f) {
  switch (f.region) {
    case FieldPlace::Control: return ClauseId::C_LAYOUT;
    case FieldPlace::RingHeader: return ClauseId::R_LAYOUT;
    case FieldPlace::Slot: return ClauseId::S_LAYOUT;
    case FieldPlace::Outside: break;
  }
  return ClauseId::G_PLACE;
}

// The field's value as a number where it is one (1 to 8 bytes).
std::string value_at(std::span<const std::byte> image, const FieldPlace& f) {
  if (f.size == 0 || f.size > 8 || f.offset + f.size > image.size()) return "";
  std::uint64_t v = 0;
  std::memcpy(&v, image.data() + f.offset, f.size);  // little-endian, as SPEC lays fields out
  return std::to_string(v);
}

std::string describe_move(const FrameStep& s, const FieldPlace& f, std::span<const std::byte> before,
                          std::span<const std::byte> after) {
  std::string text = s.what + ": " + f.name() + " changed";
  const std::string was = value_at(before, f), now = value_at(after, f);
  if (!was.empty()) text += " from " + was + " to " + now;
  return text + ", which the model does not predict for this step (SPEC lets " + writers_of(f) + " write it)";
}

}  // namespace

std::vector<Violation> unpredicted_writes(const FrameStep& step, std::span<const std::byte> before,
                                          std::span<const std::byte> after) {
  std::vector<Violation> out;
  if (before.empty() || after.empty() || step.before == nullptr || step.after == nullptr) return out;
  if (before.size() != after.size()) {
    out.push_back({ClauseId::C_LAYOUT, step.what + ": the segment's size changed from " +
                                           std::to_string(before.size()) + " to " + std::to_string(after.size()) +
                                           " bytes"});
    return out;
  }
  std::size_t i = 0;
  bool outside_reported = false;  // bytes past the rings: one report
  while (i < after.size()) {
    if (before[i] == after[i]) {
      ++i;
      continue;
    }
    const FieldPlace f = locate_field(after, i);
    if (!may_move(step, f) && !(f.region == FieldPlace::Outside && outside_reported))
      out.push_back({clause_of(f), describe_move(step, f, before, after)});
    outside_reported = outside_reported || f.region == FieldPlace::Outside;
    i = std::max(i + 1, f.offset + f.size);  // each field once
  }
  return out;
}

std::vector<Violation> quiescent_violations(std::span<const std::byte> image, const std::string& what) {
  static constexpr struct {
    std::size_t offset;
    const char* name;
  } kWaiters[] = {{324, "daemon_futex"}, {388, "client_futex"}, {452, "c2d_space_futex"}, {516, "d2c_space_futex"}};
  std::vector<Violation> out;
  for (const auto& w : kWaiters) {
    if (w.offset + 4 > image.size()) continue;
    std::uint32_t n = 0;
    std::memcpy(&n, image.data() + w.offset, 4);
    if (n != 0)
      out.push_back({ClauseId::F_WAKE, what + ": " + w.name + ".waiters is " + std::to_string(n) +
                                           " after the call returned, though nobody sleeps: a sleeper count leaked, "
                                           "and every later publish pays a wake system call for nobody"});
  }
  return out;
}

}  // namespace memlink::conformance
