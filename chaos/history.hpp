// The chaos runner's history checker: it judges, Jepsen-style, once the run
// is over, what every process recorded (the workload's log,
// harness/workload_log.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "workload_log.hpp"

namespace memlink::chaos {

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
