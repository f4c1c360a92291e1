// The chaos runner's history: what every process recorded, and the checker
// that judges it, Jepsen-style, once the run is over.
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
#include <map>
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

struct Verdict {
  std::uint64_t intended = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t refused = 0;              // Fail: the writer was told it was not sent
  std::uint64_t delivered = 0;            // distinct messages delivered
  std::uint64_t deliveries = 0;           // all Deliver records
  std::uint64_t lost = 0;                 // acknowledged, never delivered
  std::uint64_t lost_to_killed_consumers = 0;  // lost, excused by CheckOptions::consumer_kill_may_lose
  std::uint64_t duplicated = 0;           // extra deliveries
  std::uint64_t duplicates_unexplained = 0;  // an extra delivery not excused by a consumer's crash
  std::uint64_t corrupt = 0;              // Corrupt records
  std::uint64_t phantom = 0;              // delivered, never intended
  std::uint64_t indeterminate = 0;        // intended, writer died before the answer, not delivered
  std::uint64_t indeterminate_delivered = 0;  // same, but delivered (the write had published)
  std::uint64_t fifo_violations = 0;
  std::uint64_t priority_violations = 0;
  std::uint64_t priority_checked = 0;     // deliveries where the check could decide
  std::uint64_t fence_violations = 0;     // a later position taken in an older epoch
  std::uint64_t refused_delivered = 0;    // the writer was told "not sent" (Fail), yet it was delivered
  std::uint64_t sequence_violations = 0;  // T-SEQ: two messages of a stream with one number, or a writer's going back
  std::map<std::string, std::uint64_t> per_stream_delivered;
  std::vector<std::string> violations;    // the first few, readable
  bool ok() const {
    return lost == 0 && duplicates_unexplained == 0 && corrupt == 0 && phantom == 0 && fifo_violations == 0 &&
           priority_violations == 0 && fence_violations == 0 && refused_delivered == 0 && sequence_violations == 0;
  }
};

// What the transport under test promises (conformance/DRIVER.md D-CAPS):
// the reference promises all of it; a driver may not.
struct CheckOptions {
  bool sequences = true;   // T-SEQ numbers in Deliver records
  bool positions = true;   // ring positions in Ack and Deliver records (priority and fence checks use them)
  // A consumer without take/finish (no "two_step") may lose the message it
  // held when it is killed inside a read (SPEC K-TWO-STEP: "read is take +
  // finish in one call"). Then up to one lost message per killed consumer
  // of a stream is excused, and counted as such.
  bool consumer_kill_may_lose = false;
  // The epoch the segment was created with (SPEC C-AGE: an aged segment
  // starts at 2^64 - 1, and the first takeover wraps it to 1).
  std::uint64_t first_epoch = 1;
};

// Daemon epochs in the order they were served: K-TAKEOVER's epoch goes from
// 2^64 - 1 to 1, so epochs are ranked by their distance from the first.
constexpr std::uint64_t epoch_rank(std::uint64_t epoch, std::uint64_t first_epoch) noexcept {
  return epoch - first_epoch + 1;
}

// The history indexed once, in one pass over the logs, for the named checks
// below. It points into the logs it was built from, which must outlive it.
struct HistoryIndex {
  struct Written {  // what the writer recorded about one message
    bool intent = false, ack = false, fail = false;
    std::uint64_t t_ack = 0, position = 0;  // of the Ack
  };
  struct Delivery {
    // The global order: readers deliver one after another (epoch 0), daemons
    // in epoch order (epoch_rank); then the consumer's instance and the
    // record's index.
    std::uint64_t epoch = 0, instance = 0, index = 0;
    std::size_t log = 0;  // which process
    const Record* rec = nullptr;
  };
  struct Corruption {
    std::size_t log = 0;
    const Record* rec = nullptr;
  };
  std::span<const ProcessLog> logs;
  std::uint64_t intended = 0, acknowledged = 0, refused = 0;  // Intent, Ack and Fail records
  std::map<MessageId, Written> written;
  std::map<MessageId, std::vector<Delivery>> delivered;  // every delivery of a message, in global order
  std::vector<Delivery> order;                           // every delivery, in global order
  std::vector<Delivery> first_deliveries;                // each message's first delivery, in global order
  std::vector<std::size_t> last_deliver;                 // per log: index of its last Deliver record, or SIZE_MAX
  std::vector<Corruption> corrupt;                       // Corrupt records, in log order
};
HistoryIndex index_history(const std::vector<ProcessLog>& logs, std::uint64_t first_epoch = 1);
HistoryIndex index_history(std::vector<ProcessLog>&&,
                           std::uint64_t = 1) = delete;  // the index would point into a temporary

// The named checks, Jepsen-style. Each reads the index and adds to its own
// fields of the Verdict only (and to its readable violations), so a test can
// run one alone on a fresh Verdict; check_history runs them all, in the order
// of history_checks().
//   tally                       intended, acknowledged, refused, deliveries, delivered, per_stream_delivered
//   no-corruption               corrupt
//   acknowledged-delivered      lost, lost_to_killed_consumers (no loss)
//   indeterminate               indeterminate, indeterminate_delivered (counted, never a violation)
//   refused-not-delivered       refused_delivered
//   sequence-unique-per-ring    sequence_violations: a message keeps one number; one number per message of a ring
//   sequence-grows-per-writer   sequence_violations: a writer's numbers grow, per priority
//   no-phantom                  phantom
//   duplicates-explained        duplicated, duplicates_unexplained
//   fifo-per-writer-priority    fifo_violations
//   priority-order              priority_checked, priority_violations
//   fence                       fence_violations
void check_tally(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_no_corruption(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_acknowledged_delivered(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_indeterminate(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_refused_not_delivered(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_sequence_unique_per_ring(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_sequence_grows_per_writer(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_no_phantom(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_duplicates_explained(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_fifo_per_writer_priority(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_priority_order(const HistoryIndex& h, const CheckOptions& options, Verdict& v);
void check_fence(const HistoryIndex& h, const CheckOptions& options, Verdict& v);

struct HistoryCheck {
  const char* name;
  void (*run)(const HistoryIndex&, const CheckOptions&, Verdict&);
};
// Every named check, in the order check_history runs them (its readable
// violations come out grouped in this order).
std::span<const HistoryCheck> history_checks();

// Judges a finished run (all consumers drained what they could): indexes
// the history, then runs every named check.
Verdict check_history(const std::vector<ProcessLog>& logs, const CheckOptions& options = {});

}  // namespace memlink::chaos
