// The workload's log (harness/workload.hpp's processes write it, the chaos
// runner's history checker, chaos/history.hpp, judges it).
//
// Each process appends fixed-size binary records to its own log file with
// write(2), so a record is either wholly in the file or not at all when the
// process is SIGKILLed (the kernel keeps what write returned from).
//
//   writer  Intent (before write) -> Ack (write returned Ok) | Fail (refused)
//   consumer Deliver (taken and verified; recorded before finish)
//            Corrupt (CorruptSegment, or a payload that fails its own check)
//   daemon  Serving (epoch, how it started), Fenced (it noticed and stopped)
//
// Two streams: c2d (writers are client processes, the consumer is the
// daemon of the moment) and d2c (the writers are daemons, answering; the
// consumer is the reading client of the moment).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace memlink::chaos {

enum class RecordType : std::uint8_t {
  Intent = 'I',
  Ack = 'A',
  Fail = 'F',
  Deliver = 'D',
  Corrupt = 'C',
  Serving = 'S',
  Fenced = 'X',
};

enum class Stream : std::uint8_t { C2D = 0, D2C = 1 };
const char* stream_name(Stream s);  // "c2d", "d2c"

// A message id: which stream, which writer process (a client instance, or
// a daemon's epoch for answers), which priority, the writer's n-th message
// of that priority.
struct MessageId {
  Stream stream = Stream::C2D;
  std::uint32_t writer = 0;
  std::uint8_t priority = 0;
  std::uint64_t n = 0;
  friend auto operator<=>(const MessageId&, const MessageId&) = default;
};
std::string to_string(const MessageId& id);

struct Record {
  RecordType type = RecordType::Intent;
  Stream stream = Stream::C2D;
  std::uint8_t priority = 0;
  std::uint8_t reserved = 0;
  std::uint32_t writer = 0;
  std::uint64_t n = 0;         // Serving: the epoch
  std::uint64_t t_ns = 0;      // Ack: after write returned; Deliver: before take; Serving: serving from
  std::uint64_t position = 0;  // Ack, Deliver: ring position; Serving: DaemonStart kind
  std::uint64_t epoch = 0;     // Deliver: the consumer's epoch (daemon) or 0 (reader client)
  std::uint64_t sequence = 0;  // Deliver: the message's sequence number (SPEC T-SEQ)
  MessageId id() const { return {stream, writer, priority, n}; }
  // The record of `type` about message `id` at `t_ns` (the inverse of id()).
  static Record of(RecordType type, const MessageId& id, std::uint64_t t_ns) {
    Record r;
    r.type = type;
    r.stream = id.stream;
    r.priority = id.priority;
    r.writer = id.writer;
    r.n = id.n;
    r.t_ns = t_ns;
    return r;
  }
};
static_assert(sizeof(Record) == 48);

// The payload a writer sends for `id`: the id, filler derived from it, and a
// checksum over both, so the consumer can check what it got by itself.
std::vector<std::byte> encode_payload(const MessageId& id, std::size_t length);
// The id if `payload` is intact; false if it fails its own check.
bool decode_payload(std::span<const std::byte> payload, MessageId& id);
inline constexpr std::size_t kMinPayload = 24;

enum class Role : std::uint8_t { Daemon, Writer, Reader };
std::string to_string(Role r);

// One process's log and how it ended.
struct ProcessLog {
  Role role = Role::Writer;
  std::uint32_t instance = 0;  // writer id for writers; start order for others
  bool killed = false;         // SIGKILLed (by the runner or a crash point): not a clean exit
  std::vector<Record> records;
};

// Reads a log file (a torn last record, impossible with write(2) of 40
// bytes, is ignored rather than trusted).
std::vector<Record> read_log(const std::string& path);

}  // namespace memlink::chaos
