// What the exploration check runs under the scheduler: small, complete
// workloads of the real reference code, each a handful of threads on one
// ring or one segment, and what each run recorded.
//
//   ring      producers write_slot() into one ring of capacity 1-3 while a
//             consumer read_slot()s and recovers its tail (TailRecovery);
//             producers may die anywhere (K-WRITING, K-CLAIMED)
//   transport client producers write()/write_blocking() c2d with random
//             priorities while the daemon wait()s and read()s: the wake
//             protocol (F-WAKE, T-BLOCKING), T-SEQ, R-ORDER, recovery on
//             every sleep slice; a pausing daemon makes blocking writes time out
//   takeover  daemon A serves two-step (take, finish) while daemon B starts
//             on the same segment and takes it over: K-FENCE, K-TAKEOVER
//   hostile   a peer flips lengths, checksums, priorities, positions and
//             payload bytes of the slot at the tail while a consumer reads
//             it (V-SLOT, V-ONCE): nothing delivered may differ from what
//             was written
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "memlink/conformance/verdict.hpp"
#include "memlink/shm/priority.hpp"
#include "memlink/shm/result.hpp"
#include "memlink/shm/segment_age.hpp"
#include "scheduler.hpp"
#include "timeline.hpp"

namespace memlink::conformance::explore {

struct Config {
  std::string scenario = "ring";  // ring | transport | takeover | hostile
  int size = 1;       // ring/hostile: capacity; transport/takeover: slots per direction (G-DIST)
  int producers = 2;
  int messages = 2;   // per producer
  int slot = 40;      // slot size (40 is not a multiple of 64: padding after the payload)
  // transport: 0 write, 1 write_blocking, 2 both and a pausing daemon;
  // takeover: bit 0 the old daemon sleeps between messages, bit 1 the new
  // one is slow to start serving, bit 2 the new one watches the old one's
  // heartbeat until the run ends (else it gives up after three tries),
  // bit 3 every message goes to one ring (Low), so that the successor reads
  // on the ring where the fenced daemon's hand-off is unfinished;
  // hostile: which field the peer toggles
  int mode = 0;
  // Loads may read older stores where the C++ memory model lets them
  // (memory_model.hpp); "/w1" in the text.
  bool weak = false;
  // How old the ring or segment is formatted (SPEC C-AGE): "/a1" lap-wrap,
  // "/a2" position-end in the text; its counters pass their wraps in the run.
  shm::SegmentAge age = shm::SegmentAge::Fresh;
  std::string text() const;  // "ring/c2/p2/m2/s40/x0", "ring/c2/p2/m2/s40/x0/w1/a1"
  static std::optional<Config> parse(const std::string& s);
};

// One write as the producer saw it. Times are scheduler steps (a total
// order of events) and virtual ns.
struct WriteRecord {
  enum class Result : std::uint8_t { Pending, Ok, Full, NotSent, Timeout, Error };
  int thread = 0;
  std::uint64_t id = 0;
  shm::Priority priority = shm::Priority::Low;
  std::uint32_t length = 0;
  Result result = Result::Pending;  // Pending at the end: its thread died during the call
  std::string error;
  std::optional<shm::ErrorCode> error_code;  // Error, NotSent: the code
  bool blocking = false;
  std::uint64_t invoke = 0, response = 0;         // steps
  std::uint64_t invoke_ns = 0, response_ns = 0;   // virtual time
  std::uint64_t claim_ns = 0;                     // NotSent: when its position was claimed
};

struct ReadRecord {
  int thread = 0;  // which consumer
  bool ok = false;
  std::uint64_t id = 0;
  shm::Priority priority = shm::Priority::Low;
  std::uint64_t sequence = 0;
  std::uint32_t length = 0;
  bool intact = true;      // payload bytes are exactly what was written for `id`
  std::string error;       // a failed read's error, if not Empty
  std::string corrupt_field;  // CorruptSegment: the field its detail names (SPEC E-CODES)
  std::uint64_t invoke = 0, response = 0;
  std::uint64_t take_ns = 0;  // when the take CAS happened (read.after-take-cas)
};

struct RunRecord {
  std::vector<WriteRecord> writes;
  std::vector<ReadRecord> reads;
  std::vector<Violation> violations;  // seen by a thread as it happened
  std::array<std::uint32_t, shm::kPriorityCount> capacity{};
  std::array<std::uint64_t, shm::kPriorityCount> first_position{};  // where each ring started (C-AGE)
  std::uint64_t claim_timeout_ns = 0;
  std::uint64_t blocking_timeout_ns = 0;
  std::uint64_t sleep_slice_ns = 0;
  bool transport = false;        // sequence numbers are the transport's (T-SEQ)
  bool corruption = false;       // a hostile peer ran: losses and CorruptSegment are allowed
  int takeover_thread = -1;      // the daemon that took over, if one did
  std::uint64_t takeover_ns = 0; // when it incremented the epoch
  std::uint64_t takeover_step = 0;  // the scheduler step its takeover returned at
  int fenced_thread = -1;        // the daemon it replaced
  std::string final_state;       // Scenario::snapshot() as the run ended
  std::optional<std::uint64_t> client_head, daemon_tail;  // T-COUNTERS, as the run ended
  // {head, tail} of each c2d ring as the run ended (R-POSITIONS).
  std::optional<std::array<std::array<std::uint64_t, 2>, shm::kPriorityCount>> c2d_positions;
  // F-WAKE's sleeper counts as the run ended (daemon, client, c2d space,
  // d2c space): 0 when nobody sleeps, or every later publish pays a wake
  // system call for nobody.
  std::optional<std::array<std::uint32_t, 4>> waiters;
};

class Scenario {
 public:
  virtual ~Scenario() = default;
  virtual std::vector<ThreadSpec> threads() = 0;
  // The state of the rings as the run ended, for a counterexample.
  virtual std::string snapshot() const = 0;
  // As the run ended, before its teardown: what the record needs from the segment.
  virtual void at_end() {}
  // After the run (and its teardown): release the segment, remove its files.
  virtual void cleanup() = 0;
  RunRecord record;
};

// Sets up memory (or a segment) for one run of `c`; an error if it cannot.
shm::Result<std::unique_ptr<Scenario>> make_scenario(const Config& c);

// Every violation of the run: the scheduler's, the threads', and the
// history's (run_checks.hpp: the named checks it composes).
std::vector<Violation> check_run(const Config& c, const RunRecord& r, const Execution& e);

// A write's result as a report names it.
const char* result_name(WriteRecord::Result r);

// The run as text, for a counterexample: operations in step order.
std::vector<std::string> describe_run(const Config& c, const RunRecord& r);

// The clauses a run of this scenario exercises.
std::vector<ClauseId> clauses_of(const Config& c);

// A failing run as a picture (timeline.hpp): one lane per thread (a process
// of its own), writes and reads as bars over scheduler steps, deaths and
// stalls marked, the operations on the messages the first violation names
// highlighted.
Timeline run_timeline(const Config& c, const RunRecord& r, const Execution& e, const std::vector<std::string>& names,
                      const Violation& violation, const std::string& replay);

}  // namespace memlink::conformance::explore
