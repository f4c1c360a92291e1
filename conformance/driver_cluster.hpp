// What the cross-process checks share: a daemon process and client processes
// of the driver on one segment, requests that must succeed, and a failure
// that carries the steps that led to it. The processes come from the check's
// launcher (launcher.hpp): a third party's driver, or the reference in
// process; a scenario that kills or stops one asks for a process of its own.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "driver_adapter.hpp"
#include "driver_json.hpp"
#include "driver_process.hpp"
#include "launcher.hpp"
#include "memlink/conformance/suite.hpp"
#include "memlink/shm/segment_age.hpp"

namespace memlink::conformance {

// A failed scenario: the clause it broke and what happened (the steps are
// the cluster's).
struct ScenarioFailure {
  Violation violation;
};

// A scenario that cannot run here (a process of its own under
// ThreadSanitizer): it is left out, and says why; nothing is recorded for it.
struct ScenarioUnavailable {
  std::string why;
};

using driver::Placement;

// The processes of one scenario. Each call records a step line, so that a
// failure can show what led to it. Hands every process it started back to
// the launcher (reset for the next scenario, where the driver can).
class Cluster {
 public:
  struct Options {
    std::size_t segment_size = 64 * 1024;  // fitted to the driver's limits (D-LIMITS)
    std::uint32_t slot_size = 64;          // likewise
    int heartbeat_ms = 20;
    int heartbeat_timeout_ms = 300;
    int sleep_slice_ms = 100;
    int daemon_timeout_ms = 300;
    int stale_after_ms = 10;
    int claim_timeout_ms = 200;
    // False where the suite itself plays a hostile peer (D-TUNING): a
    // transport with a zero-copy path then copies (SPEC 9b).
    bool trusts_peers = true;
    // C-AGE: how old the segment looks when created (asked only of a
    // driver that claims `aged`).
    shm::SegmentAge age = shm::SegmentAge::Fresh;
  };
  Cluster(const Params& params, const std::string& tag, Options o);
  Cluster(const Params& params, const std::string& tag) : Cluster(params, tag, Options{}) {}
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const std::string& path() const { return path_; }
  const Options& options() const { return options_; }
  const Params& params() const { return params_; }
  driver::Launcher& launcher() { return *launcher_; }

  // A process in `role` that has said hello and nothing else; the cluster
  // ends it with the others. Throws ScenarioUnavailable if `placement`
  // cannot be had here.
  driver::DriverProcess& start(const std::string& role, Placement placement = Placement::Any);
  // The same, owned by the caller (hand it back with give_back()).
  std::unique_ptr<driver::DriverProcess> start_owned(const std::string& role, Placement placement = Placement::Any);
  void give_back(std::unique_ptr<driver::DriverProcess> p);
  // A new daemon process; its create reply (the caller checks ok()).
  driver::Reply start_daemon(std::unique_ptr<driver::DriverProcess>& out, const std::string& role = "daemon",
                             Placement placement = Placement::Any);
  // A new client process, connected; throws ScenarioFailure if connect fails.
  driver::DriverProcess& add_client(const std::string& role, Placement placement = Placement::Any);
  nlohmann::json create_request() const;
  nlohmann::json connect_request() const;

  // `request` on `p`, which must succeed (else ScenarioFailure citing `clause`).
  driver::Reply must(driver::DriverProcess& p, nlohmann::json request, ClauseId clause,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

  void step(const std::string& line) { steps_.push_back(line); }
  // Records a clause the scenario saw exercised (the check's counter).
  void record(ClauseId c) const { params_.record(c); }
  const std::vector<std::string>& steps() const { return steps_; }

  std::unique_ptr<driver::DriverProcess> daemon;
  std::vector<std::unique_ptr<driver::DriverProcess>> clients;

 private:
  void remove_files();
  const Params& params_;
  std::shared_ptr<driver::Launcher> launcher_;
  std::string path_;
  Options options_;
  std::vector<std::string> steps_;
  std::vector<std::unique_ptr<driver::DriverProcess>> others_;  // start()ed, not daemon or client
};

[[noreturn]] void scenario_fail(Citation clause, std::string what);

// The first exception any of several threads driving processes threw (a
// DriverFailure, a ScenarioFailure), kept to be rethrown on the thread that
// joins them; `failed()` tells the others to stop.
class FirstException {
 public:
  template <class Body>
  void run(Body&& body) noexcept {
    try {
      body();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!first_) first_ = std::current_exception();
      failed_.store(true);
    }
  }
  bool failed() const { return failed_.load(); }
  void rethrow() {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::mutex mu_;
  std::exception_ptr first_;
  std::atomic<bool> failed_{false};
};

// S-PUBLISH before anything else: `n` messages written through `writer` must
// reach `reader`, nothing else going on. A transport that acknowledges writes
// and delivers nothing fails here, by that name, and not later at whatever
// the check is about (a wake-up, a takeover, a truncation).
void expect_delivery(Cluster& c, driver::DriverProcess& writer, driver::DriverProcess& reader, int n = 3);

// The payload of message `id` (8 bytes of id, then filler derived from it).
std::vector<std::byte> message_payload(std::uint64_t id, std::size_t length);
// The id if `payload` is exactly what message_payload wrote for it.
std::optional<std::uint64_t> message_id(std::span<const std::byte> payload);

// A check's Failure from a scenario's: the steps as the counterexample.
Failure failure_of(const ScenarioFailure& f, const std::vector<std::string>& steps, const std::string& replay);
// "scripts/conformance --driver 'CMD' --only NAME --seed S" (or --adapter NAME).
std::string driver_replay(const Params& params, const std::string& check);

}  // namespace memlink::conformance
