// The model's crash simulations and observations done on a reference
// endpoint (shm::Daemon or shm::Client): shared by the in-process reference
// adapter and the reference driver (memlink-shm-driver), which does the same
// in a process of its own.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "memlink/model/model.hpp"
#include "memlink/shm/transport.hpp"

namespace memlink::conformance::reference_ops {

// A writer of `ep`'s outbound direction claims a slot of priority p (and,
// AfterFill, fills it) and stops, as if it died there. Its sequence number.
shm::Result<std::uint64_t> stop_writer(shm::Endpoint& ep, model::Priority p, model::WriterStop where,
                                       std::span<const std::byte> data);
// The consumer of `ep`'s inbound direction takes the next message (and,
// AfterComplete, completes it) and stops.
shm::Result<model::Message> stop_reader(shm::Endpoint& ep, model::ReaderStop where, std::uint32_t slot_size);
// The stopped writers and readers of these rings are dead: their slots now
// name a process that does not exist (SPEC K-STALE).
void kill_stopped(shm::PriorityRingBuffer& rings);
// A hostile peer changes one field of the oldest (Ready) message of `r`.
void corrupt_oldest(shm::RingBuffer& r, model::Corruption c);
// Everything SPEC.md makes observable, read from `ep`'s mapping.
model::View observe(shm::Endpoint& ep, bool ep_is_daemon);

// SPEC T-LOAN's zero-copy paths, as users take them: a write through a loan
// of the whole slot, committed at the payload's length (an oversized payload
// asks for its own size, which the loan refuses); a read through a view,
// copied out and released. Each counts itself in zero_copy_count().
shm::Result<std::uint64_t> write_by_loan(shm::Endpoint& ep, model::Priority p, std::span<const std::byte> data,
                                         std::uint32_t slot_size);
shm::Result<model::Message> read_by_view(shm::Endpoint& ep);
// How many loans and views this process committed and released.
std::uint64_t zero_copy_count();

// The ring of direction d and priority p as `ep` maps it.
shm::RingBuffer& ring_of(shm::Endpoint& ep, bool ep_is_daemon, model::Direction d, model::Priority p);

// Removes the segment at `path` and the side files SPEC K-LOCK and
// K-PIDFILE name beside it (.lock, .pid, .takeover, .copy), so that checks
// leave nothing behind in /dev/shm.
void remove_segment_files(const std::string& path);

}  // namespace memlink::conformance::reference_ops
