#include "memlink/model/model.hpp"

#include <algorithm>
#include <ostream>

#include "memlink/model/rules.hpp"
#include "memlink/shm/checksum.hpp"

namespace memlink::model {
namespace {

Outcome ok(ClauseId clause) { return Outcome{std::nullopt, clause, {}, 0, 0}; }
Outcome fail(ErrorCode code, ClauseId clause) { return Outcome{code, clause, {}, 0, 0}; }

bool has_writer(Direction d) { return d == Direction::ClientToDaemon; }  // c2d is written by clients

}  // namespace

void showValue(const Config& c, std::ostream& os) {
  os << "segment of " << c.segment_size << " bytes, slot size " << c.slot_size << ", protocol "
     << c.protocol_version;
  if (c.capacity)
    os << ", the implementation's own ring capacities " << (*c.capacity)[0] << "/" << (*c.capacity)[1] << "/"
       << (*c.capacity)[2];
  if (c.age != shm::SegmentAge::Fresh) os << ", formatted " << shm::to_string(c.age);
}

// G-DIST: critical = max(1, ceil(0.2 n)), high = max(1, ceil(0.5 n)),
// low = max(1, n - critical - high).
shm::SlotDistribution distribution(std::uint32_t n) {
  const std::int64_t critical = std::max<std::int64_t>(1, (std::int64_t{n} + 4) / 5);
  const std::int64_t high = std::max<std::int64_t>(1, (std::int64_t{n} + 1) / 2);
  const std::int64_t low = std::max<std::int64_t>(1, std::int64_t{n} - critical - high);
  return {static_cast<std::uint32_t>(critical), static_cast<std::uint32_t>(high),
          static_cast<std::uint32_t>(low)};
}

// G-STRIDE, G-PLACE, G-FIT: the largest n whose six rings fit after the
// control region.
std::optional<std::uint32_t> slots_per_direction(std::size_t segment_size, std::uint32_t slot_size) {
  if (segment_size < shm::MIN_SEGMENT_SIZE || segment_size > shm::MAX_SEGMENT_SIZE) return std::nullopt;
  if (slot_size < 1 || slot_size > shm::MAX_SLOT_SIZE) return std::nullopt;
  const std::uint64_t stride = (64 + slot_size + 63) / 64 * 64;
  auto bytes_needed = [&](std::uint32_t n) {
    return 4096 + 2 * (3 * 192 + distribution(n).total() * stride);
  };
  if (bytes_needed(1) > segment_size) return std::nullopt;
  std::uint32_t n = 1;
  while (bytes_needed(n + 1) <= segment_size) ++n;
  return n;
}

std::optional<Model> Model::create(const Config& config) {
  const auto n = slots_per_direction(config.segment_size, config.slot_size);
  if (!n) return std::nullopt;
  return Model(config, *n);
}

Model::Model(const Config& config, std::uint32_t n) : config_(config) {
  const auto dist = distribution(n);
  for (auto& direction : rings_)
    for (Priority p : shm::kAllPriorities) {
      Ring& r = direction[std::size_t(p)];
      r.capacity = config.capacity ? (*config.capacity)[std::size_t(p)] : dist.of(p);
      r.head = r.tail = shm::first_position(config.age, r.capacity);  // C-AGE
    }
}

// T-SHUTDOWN, T-TOO-LARGE, R-CAPACITY: the reasons a write changes nothing.
std::optional<Outcome> Model::refuse_write(Direction d, Priority p, std::size_t size) const {
  if (shutdown_) return fail(ErrorCode::Disconnected, ClauseId::T_SHUTDOWN);
  if (size > config_.slot_size) return fail(ErrorCode::MessageTooLarge, ClauseId::T_TOO_LARGE);
  if (rules::full(ring(d, p).entries.size(), ring(d, p).capacity)) return fail(ErrorCode::Full, ClauseId::R_CAPACITY);
  if (ring(d, p).head == shm::kLastPosition) return fail(ErrorCode::Full, ClauseId::R_POSITIONS);
  return std::nullopt;
}

std::vector<ErrorCode> Model::write_refusals(Direction d, Priority p, std::size_t size) const {
  std::vector<ErrorCode> out;
  if (shutdown_) out.push_back(ErrorCode::Disconnected);
  if (size > config_.slot_size) out.push_back(ErrorCode::MessageTooLarge);
  if (rules::full(ring(d, p).entries.size(), ring(d, p).capacity) || ring(d, p).head == shm::kLastPosition)
    out.push_back(ErrorCode::Full);
  return out;
}

Outcome Model::write(Direction d, Priority p, std::span<const std::byte> payload) {
  if (auto refused = refuse_write(d, p, payload.size())) return *refused;
  Ring& r = ring(d, p);
  const std::uint64_t seq = r.head;  // T-SEQ: the position
  r.entries.push_back(Entry{r.head, SlotState::Ready, Message{p, seq, {payload.begin(), payload.end()}}, false, false, false, std::nullopt});
  ++r.head;                                 // R-CLAIM
  if (has_writer(d)) ++client_head_;        // T-COUNTERS
  Outcome o = ok(ClauseId::S_PUBLISH);      // acknowledged once Ready
  o.sequence = seq;
  return o;
}

Outcome Model::write_blocking(Direction d, Priority p, std::span<const std::byte> payload) {
  Outcome o = write(d, p, payload);
  if (o.error == ErrorCode::Full) return fail(ErrorCode::Timeout, ClauseId::T_BLOCKING);
  return o;
}

// R-ORDER: the highest priority whose oldest message is past Writing.
// R-VISIBLE: a ring whose oldest message is still Writing has nothing to
// read yet, so the read moves on to the next priority.
std::optional<Priority> Model::ring_to_read(Direction d) const {
  return rules::ring_to_read([&](Priority p) {
    const Ring& r = ring(d, p);
    return !r.entries.empty() && r.entries.front().state != SlotState::Writing;
  });
}

// K-STALE: a read that finds nothing (Empty, or a held tail) recovers the
// tails whose holders are dead and tries once more.
Outcome Model::read(Direction d) {
  Outcome o = read_once(d);
  if (o.ok() || (*o.error != ErrorCode::Empty && *o.error != ErrorCode::InvalidState)) return o;
  if (!recover_tails(d)) return o;
  return read_once(d);
}

// K-WRITING, K-READING, K-DONE, at each ring's tail, while its holder is dead.
bool Model::recover_tails(Direction d) {
  last_recovery_ = {};
  bool any = false;
  for (Priority p : shm::kAllPriorities) {
    Ring& r = ring(d, p);
    while (!r.entries.empty() && r.entries.front().holder_dead) {
      Entry& e = r.entries.front();
      any = true;
      if (e.state == SlotState::Reading) {  // K-READING: delivered again
        e.state = SlotState::Ready;
        e.holder_dead = false;
        ++last_recovery_.reading;
        break;
      }
      if (e.state == SlotState::Writing) {  // K-WRITING: never delivered
        ++r.reclaimed;
        ++last_recovery_.writing;
      } else {  // K-DONE
        ++last_recovery_.done;
      }
      r.entries.pop_front();
      ++r.tail;
    }
  }
  return any;
}

Outcome Model::recover(Direction d) {
  for (Priority p : shm::kAllPriorities)
    for (Entry& e : ring(d, p).entries)
      if (e.state != SlotState::Ready) e.holder_dead = true;
  recover_tails(d);
  return ok(ClauseId::K_STALE);
}

Outcome Model::read_once(Direction d) {
  const auto p = ring_to_read(d);
  if (!p) return fail(ErrorCode::Empty, ClauseId::R_VISIBLE);
  Ring& r = ring(d, *p);
  Entry& oldest = r.entries.front();
  if (oldest.state != SlotState::Ready) return fail(ErrorCode::InvalidState, ClauseId::R_HELD);
  if (oldest.corrupt) {  // V-SLOT: never delivered; dropped and counted
    r.entries.pop_front();
    ++r.tail;
    ++r.corrupt_skipped;
    return fail(ErrorCode::CorruptSegment, ClauseId::V_SLOT);
  }
  Outcome o = ok(ClauseId::R_ORDER);
  o.message = std::move(oldest.message);
  r.entries.pop_front();
  ++r.tail;  // R-RELEASE
  if (has_writer(d)) ++daemon_tail_;  // T-COUNTERS
  return o;
}

// R-PEEK: what read() would return next, unconsumed; no checksum check.
Outcome Model::peek(Direction d) const {
  const auto p = ring_to_read(d);
  if (!p) return fail(ErrorCode::Empty, ClauseId::R_PEEK);
  const Entry& oldest = ring(d, *p).entries.front();
  if (oldest.state != SlotState::Ready) return fail(ErrorCode::InvalidState, ClauseId::R_HELD);
  if (oldest.peek_fails) return fail(ErrorCode::CorruptSegment, ClauseId::V_SLOT);
  Outcome o = ok(ClauseId::R_PEEK);
  o.message = Message{oldest.message.priority, oldest.message.sequence, {}};
  o.length = static_cast<std::uint32_t>(oldest.message.payload.size());
  return o;
}

Outcome Model::set_backpressure(std::uint32_t permille) {
  if (shutdown_) return fail(ErrorCode::Disconnected, ClauseId::T_SHUTDOWN);
  if (permille > shm::BACKPRESSURE_MAX) return fail(ErrorCode::InvalidArgument, ClauseId::C_BACKPRESSURE);
  backpressure_ = permille;
  return ok(ClauseId::C_BACKPRESSURE);
}

// V-CONNECT (the checks after validation), T-ENDPOINTS.
Outcome Model::connect(std::uint16_t version) {
  if (version != config_.protocol_version) return fail(ErrorCode::ProtocolMismatch, ClauseId::V_CONNECT);
  if (shutdown_) return fail(ErrorCode::Disconnected, ClauseId::V_CONNECT);
  ++client_count_;
  return ok(ClauseId::T_ENDPOINTS);
}

Outcome Model::disconnect() {
  if (client_count_ > 0) --client_count_;
  return ok(ClauseId::T_ENDPOINTS);
}

// M-PERSIST: a client unmaps and maps again; nothing in the segment changes.
Outcome Model::reopen() { return ok(ClauseId::M_PERSIST); }

Outcome Model::shutdown() {
  shutdown_ = true;
  return ok(ClauseId::T_SHUTDOWN);
}

// S-TRANSITIONS: a writer that stops after claiming (or filling) leaves its
// slot Writing: it holds a position (its sequence number), and is not
// acknowledged (client_head does not count it).
Outcome Model::stop_writer(Direction d, Priority p, WriterStop, std::span<const std::byte> payload) {
  if (auto refused = refuse_write(d, p, payload.size())) return *refused;
  Ring& r = ring(d, p);
  const std::uint64_t seq = r.head;  // T-SEQ
  r.entries.push_back(Entry{r.head, SlotState::Writing, Message{p, seq, {payload.begin(), payload.end()}}, false, false, false, std::nullopt});
  ++r.head;
  Outcome o = ok(ClauseId::S_TRANSITIONS);
  o.sequence = seq;
  return o;
}

// S-TRANSITIONS: the consumer stops after taking (Reading) or completing
// (Done) the message it would read next; the slot keeps its position.
Outcome Model::stop_reader(Direction d, ReaderStop where) {
  const auto p = ring_to_read(d);
  if (!p) return fail(ErrorCode::Empty, ClauseId::R_VISIBLE);
  Entry& oldest = ring(d, *p).entries.front();
  if (oldest.state != SlotState::Ready) return fail(ErrorCode::InvalidState, ClauseId::R_HELD);
  if (oldest.corrupt) return read(d);  // the take drops it, as read() does
  oldest.state = where == ReaderStop::AfterTake ? SlotState::Reading : SlotState::Done;
  Outcome o = ok(ClauseId::S_TRANSITIONS);
  o.message = oldest.message;
  return o;
}

const char* to_string(Corruption c) {
  switch (c) {
    case Corruption::Payload: return "a payload byte";
    case Corruption::ChecksumLowBit: return "checksum bit 3";
    case Corruption::ChecksumHighBit: return "checksum bit 27";
    case Corruption::LengthPastSlot: return "length = slot_size + 1";
    case Corruption::LengthInPadding: return "length = the end of the slot's padding";
    case Corruption::LengthShorter: return "length - 1";
    case Corruption::Priority: return "the priority byte";
    case Corruption::Position: return "position + 1";
    case Corruption::State: return "the state byte (0xEE)";
    case Corruption::Sequence: return "sequence + 1000";
  }
  return "?";
}

bool Model::oldest_is_corruptible(Direction d, Priority p, Corruption c) const {
  if (!oldest_is_ready(d, p) || ring(d, p).entries.front().tampered) return false;
  return c != Corruption::LengthShorter || !ring(d, p).entries.front().message.payload.empty();
}

Outcome Model::corrupt_oldest(Direction d, Priority p, Corruption c) {
  if (!oldest_is_corruptible(d, p, c)) return fail(ErrorCode::InvalidState, ClauseId::V_SLOT);
  Entry& e = ring(d, p).entries.front();
  e.tampered = true;
  switch (c) {
    case Corruption::Payload:
    case Corruption::ChecksumLowBit:
    case Corruption::ChecksumHighBit:
      e.corrupt = true;
      break;
    case Corruption::LengthShorter: {
      // The consumer checks CRC32C over the shorter payload against the
      // stored checksum of the whole one: the model computes both.
      auto& pl = e.message.payload;
      const std::uint32_t stored = shm::crc32c(pl.data(), pl.size());
      pl.pop_back();
      e.corrupt = shm::crc32c(pl.data(), pl.size()) != stored;
      break;
    }
    case Corruption::State:
      e.raw_state = 0xEE;
      e.corrupt = e.peek_fails = true;
      break;
    default:  // lengths past the slot, priority, position, sequence
      e.corrupt = e.peek_fails = true;
  }
  return ok(ClauseId::V_SLOT);
}

bool Model::oldest_is_ready(Direction d, Priority p) const {
  const Ring& r = ring(d, p);
  return !r.entries.empty() && r.entries.front().state == SlotState::Ready;
}

std::optional<SlotState> Model::oldest_state(Direction d, Priority p) const {
  const Ring& r = ring(d, p);
  if (r.entries.empty()) return std::nullopt;
  return r.entries.front().state;
}

std::size_t Model::deliverable(Direction d) const {
  std::size_t n = 0;
  for (Priority p : shm::kAllPriorities)
    for (const Entry& e : ring(d, p).entries) n += e.state == SlotState::Ready && !e.corrupt;
  return n;
}

std::optional<Message> Model::message_in_slot(Direction d, Priority p, std::uint32_t index) const {
  const Ring& r = ring(d, p);
  for (const Entry& e : r.entries)
    if (e.position % r.capacity == index) return e.message;
  return std::nullopt;
}

View Model::view() const {
  View v;
  for (std::size_t d = 0; d < shm::kDirectionCount; ++d) {
    for (std::size_t p = 0; p < shm::kPriorityCount; ++p) {
      const Ring& r = rings_[d][p];
      RingView& rv = v.rings[d][p];
      rv.capacity = r.capacity;
      rv.head = r.head;
      rv.tail = r.tail;
      rv.first = shm::first_position(config_.age, r.capacity);
      rv.corrupt_skipped = r.corrupt_skipped;
      rv.reclaimed = r.reclaimed;
      rv.slots.assign(r.capacity, SlotState::Empty);
      for (const Entry& e : r.entries)
        rv.slots[e.position % r.capacity] = e.raw_state ? static_cast<SlotState>(*e.raw_state) : e.state;
    }
  }
  v.backpressure = backpressure_;
  v.client_count = client_count_;
  v.client_head = client_head_;
  v.daemon_tail = daemon_tail_;
  v.shutdown = shutdown_;
  return v;
}

}  // namespace memlink::model
