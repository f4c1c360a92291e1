#include "reference_ops.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

namespace memlink::conformance::reference_ops {

using model::Direction;
using shm::ErrorCode;
using shm::make_error;

shm::RingBuffer& ring_of(shm::Endpoint& ep, bool ep_is_daemon, Direction d, model::Priority p) {
  const bool inbound = (d == Direction::ClientToDaemon) == ep_is_daemon;
  return inbound ? ep.inbound().ring(p) : ep.outbound().ring(p);
}

namespace {
std::atomic<std::uint64_t> g_zero_copy{0};
}  // namespace

shm::Result<std::uint64_t> write_by_loan(shm::Endpoint& ep, model::Priority p, std::span<const std::byte> data,
                                         std::uint32_t slot_size) {
  auto loan = ep.loan(p, std::max<std::size_t>(data.size(), slot_size));
  if (!loan) return loan.error();
  if (!data.empty()) std::memcpy(loan->slot.bytes.data(), data.data(), data.size());
  auto r = ep.commit(*loan, data.size());
  if (!r) return r.error();
  g_zero_copy.fetch_add(1, std::memory_order_relaxed);
  return loan->sequence;
}

shm::Result<model::Message> read_by_view(shm::Endpoint& ep) {
  auto v = ep.take_view();
  if (!v) return v.error();
  model::Message m{v->info.priority, v->info.sequence, {v->bytes.begin(), v->bytes.begin() + v->info.length}};
  if (auto s = ep.release(*v); !s) return s.error();
  g_zero_copy.fetch_add(1, std::memory_order_relaxed);
  return m;
}

std::uint64_t zero_copy_count() { return g_zero_copy.load(std::memory_order_relaxed); }

shm::Result<std::uint64_t> stop_writer(shm::Endpoint& ep, model::Priority p, model::WriterStop where,
                                       std::span<const std::byte> data) {
  if (!ep.is_connected()) return make_error(ErrorCode::Disconnected, "endpoint is shut down");
  shm::RingBuffer& r = ep.outbound().ring(p);
  if (auto s = r.check_writable(data.size()); !s) return s.error();
  auto id = r.claim();
  if (!id) return id.error();
  if (where == model::WriterStop::AfterFill) r.fill(*id, data);
  return id->position;  // its sequence number (T-SEQ); ... and the writer is gone
}

shm::Result<model::Message> stop_reader(shm::Endpoint& ep, model::ReaderStop where, std::uint32_t slot_size) {
  std::vector<std::byte> buf(slot_size);
  for (model::Priority p : shm::kAllPriorities) {
    shm::RingBuffer& r = ep.inbound().ring(p);
    auto info = r.take(buf);
    if (!info && info.code() == ErrorCode::Empty) continue;
    if (!info) return info.error();
    if (where == model::ReaderStop::AfterComplete) r.complete(info->slot);
    return model::Message{
        info->priority, info->sequence, {buf.begin(), buf.begin() + info->length}};  // ... and the reader is gone
  }
  return make_error(ErrorCode::Empty, "no message ready in any priority");
}

// A pid above Linux's pid_max (2^22): no process has it.
constexpr std::uint32_t kDeadPid = 0x7FFFFFFE;

void kill_stopped(shm::PriorityRingBuffer& rings) {
  for (model::Priority p : shm::kAllPriorities) {
    shm::RingBuffer& r = rings.ring(p);
    for (std::uint32_t i = 0; i < r.capacity(); ++i) {
      shm::SlotHeader& slot = r.slot_header(i);
      const auto state = shm::slot_state_from_byte(shm::load_state(slot));
      if (state == shm::SlotState::Writing || state == shm::SlotState::Reading || state == shm::SlotState::Done) {
        shm::poke_owner(slot, kDeadPid);
      }
    }
  }
}

void corrupt_oldest(shm::RingBuffer& r, model::Corruption c) {
  using C = model::Corruption;
  shm::SlotHeader& slot = r.slot_header(static_cast<std::uint32_t>(r.tail() % r.capacity()));
  const std::uint32_t slot_size = r.slot_size();
  const auto padding_end = static_cast<std::uint32_t>(shm::slot_stride_for(slot_size) - shm::SLOT_HEADER_SIZE);
  switch (c) {
    case C::Payload:
      if (slot.length > 0) {
        reinterpret_cast<std::byte*>(&slot)[shm::SLOT_HEADER_SIZE + slot.length / 2] ^= std::byte{0xA5};
      } else {
        slot.checksum = slot.checksum ^ 1u;
      }
      break;
    case C::ChecksumLowBit: slot.checksum = slot.checksum ^ (1u << 3); break;
    case C::ChecksumHighBit: slot.checksum = slot.checksum ^ (1u << 27); break;
    case C::LengthPastSlot: slot.length = slot_size + 1; break;
    case C::LengthInPadding: slot.length = padding_end > slot_size ? padding_end : slot_size + 1; break;
    case C::LengthShorter: slot.length = slot.length - 1; break;
    case C::Priority: slot.priority = static_cast<std::uint8_t>((slot.priority + 1) % 3); break;
    case C::Position: slot.position = slot.position + 1; break;
    case C::State: shm::poke_state_byte(slot, 0xEE); break;
    case C::Sequence: slot.sequence = slot.sequence + 1000; break;
  }
}

model::View observe(shm::Endpoint& ep, bool ep_is_daemon) {
  model::View v;
  for (Direction d : {Direction::ClientToDaemon, Direction::DaemonToClient}) {
    for (model::Priority p : shm::kAllPriorities) {
      shm::RingBuffer& r = ring_of(ep, ep_is_daemon, d, p);
      model::RingView& rv = v.rings[std::size_t(d)][std::size_t(p)];
      rv.capacity = r.capacity();
      rv.head = r.head();
      rv.tail = r.tail();
      rv.corrupt_skipped = r.corrupt_skipped();
      rv.reclaimed = r.reclaimed();
      for (std::uint32_t i = 0; i < r.capacity(); ++i)
        rv.slots.push_back(static_cast<model::SlotState>(shm::load_state(r.slot_header(i))));
    }
  }
  const shm::ControlRegion& c = ep.control();
  v.backpressure = c.backpressure.load();
  v.client_count = c.client_count.load();
  v.client_head = shm::c2d_published(c);
  v.daemon_tail = c.daemon_tail.load();
  v.shutdown = (c.flags.load() & shm::FLAG_SHUTDOWN) != 0;
  return v;
}

void remove_segment_files(const std::string& path) {
  for (const char* suffix : {"", ".lock", ".pid", ".pid.tmp", ".takeover", ".copy"}) ::unlink((path + suffix).c_str());
}

}  // namespace memlink::conformance::reference_ops
