// The reference transport behind the driver protocol (conformance/DRIVER.md):
// one ReferenceDriver serves one endpoint, a shm::Daemon after "create", a
// shm::Client after "connect". The same object answers in two places:
//   - memlink-shm-driver (main.cpp), one process per endpoint, over stdin
//     and stdout, as any third party's driver does;
//   - the suite's in-process launcher (conformance/inprocess_driver.cpp), on
//     threads of the suite's own process, so that ThreadSanitizer sees every
//     access of every endpoint and a check's cases cost no process start.
// Built on the test library (memlink_shm_testing), so its crash and pause
// points are live (D-ARM).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace memlink::shm {
class Daemon;
class Client;
}  // namespace memlink::shm

namespace memlink::conformance::reference_driver {

// Deliberately broken variants, for the suite's own tests (each must be
// caught, naming the clause), chosen with MEMLINK_DRIVER_FAULT:
//   reorder-priorities  read/take serve low before high before critical (R-ORDER)
//   lose-on-kill        a write is acknowledged at once but written only at
//                       the next request; a kill in between loses it (S-PUBLISH)
//   no-wake             wait never sleeps on the futex: it looks again only
//                       when a sleep slice expires (F-WAKE, T-WAIT)
//   deliver-nothing     writes are acknowledged and dropped: nothing ever
//                       reaches the other process (S-PUBLISH)
//   min-segment:N       create refuses segments under N bytes (InvalidArgument),
//                       and says so in its hello's limits (D-LIMITS)
//   protocol-1          speaks driver protocol 1 only (no limits, no reset): how
//                       a driver written before protocol 2 meets the suite
//   hang-at:N           the N-th request is never answered (D-TIME)
//   garbage-at:N        the N-th request is answered with a line that is not JSON (D-FRAME)
//   string-id-at:N      the N-th answer carries its id as a string, "3" (D-FRAME)
//   numeric-error-at:N  the N-th request fails with "error": 5, a number (D-ERRORS)
//   invalid-utf8-at:N   the N-th answer holds bytes that are not UTF-8 (D-FRAME)
//   cut-utf8-at:N       the N-th answer is not JSON, with a two-byte character
//                       at bytes 299-300, where a report clips it (D-FRAME)
//   long-line-at:N      the N-th answer is a 48 MiB line (D-FRAME)
//   stderr-flood:N      writes N MiB to its stderr before it serves
//   exit-at:N           the process exits at the N-th request (D-PROC)
//   no-fault-guard      SIGBUS back to its default action once the segment is
//                       mapped, as in a transport without M-TRUNCATE's guard
struct Fault {
  bool reorder = false, lose_on_kill = false, no_wake = false, no_fault_guard = false, deliver_nothing = false,
       protocol1 = false;
  long hang_at = 0, garbage_at = 0, exit_at = 0;
  long string_id_at = 0, numeric_error_at = 0, invalid_utf8_at = 0, cut_utf8_at = 0, long_line_at = 0,
       stderr_flood_mib = 0;
  std::size_t min_segment = 0;
  bool any() const {
    return reorder || lose_on_kill || no_wake || no_fault_guard || deliver_nothing || protocol1 || hang_at ||
           garbage_at || exit_at || min_segment || string_id_at || numeric_error_at || invalid_utf8_at || cut_utf8_at ||
           long_line_at || stderr_flood_mib;
  }
};
// The fault MEMLINK_DRIVER_FAULT names (none if unset); false if it names
// none that exists (`error` says what it was).
bool fault_from_env(Fault& out, std::string& error);

// D-WORKLOAD: runs one of the chaos runner's roles on the endpoint and never
// returns (it answers the request through `write_line` first); or answers an
// error. memlink-shm-driver passes chaos's process bodies; a driver made
// without one does not claim `workload`.
struct WorkloadContext {
  shm::Daemon* daemon = nullptr;  // the endpoint: one of the two is set
  shm::Client* client = nullptr;
  std::string segment;
  std::uint32_t slot_size = 0;
};
using LineWriter = std::function<void(const std::string&)>;
using Workload =
    std::function<nlohmann::json(const WorkloadContext&, const nlohmann::json& request, const LineWriter&)>;

class ReferenceDriver {
 public:
  // `write_line` sends a line to the suite before an op's own answer is
  // returned (workload mode answers first, then runs until killed).
  ReferenceDriver(Fault fault, LineWriter write_line, Workload workload = {});
  ~ReferenceDriver();
  ReferenceDriver(const ReferenceDriver&) = delete;
  ReferenceDriver& operator=(const ReferenceDriver&) = delete;

  // One request, one answer (without its "id": the caller echoes it).
  nlohmann::json handle(const nlohmann::json& request);
  // lose-on-kill: performs the write acknowledged last, if one is pending
  // (the process calls it before a clean exit).
  void flush_deferred();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Serves requests read line by line from `in_fd`, answering on `out_fd`,
// until end of file (then 0). Applies the framing faults (hang-at,
// garbage-at, exit-at). memlink-shm-driver's main loop and the in-process
// launcher's forked processes run it.
int serve_lines(int in_fd, int out_fd, const Fault& fault, const Workload& workload = {});

}  // namespace memlink::conformance::reference_driver
