// What the cross-process checks through a driver share: a daemon process and
// client processes of the driver on one segment, requests that must succeed,
// and a failure that carries the steps that led to it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "driver_adapter.hpp"
#include "driver_json.hpp"
#include "driver_process.hpp"
#include "suite.hpp"

namespace memlink::conformance {

// A failed scenario: the clause it broke, what happened, and the steps.
struct ScenarioFailure {
  std::string clause, what;
};

// The processes of one scenario. Each call records a step line, so that a
// failure can show what led to it. Ends every process it started.
class Cluster {
 public:
  struct Options {
    std::size_t segment_size = 64 * 1024;
    std::uint32_t slot_size = 64;
    int heartbeat_ms = 20;
    int heartbeat_timeout_ms = 300;
    int sleep_slice_ms = 100;
    int daemon_timeout_ms = 300;
    int stale_after_ms = 10;
    int claim_timeout_ms = 200;
  };
  Cluster(const Params& params, const std::string& tag, Options o);
  Cluster(const Params& params, const std::string& tag) : Cluster(params, tag, Options{}) {}
  ~Cluster();

  const std::string& path() const { return path_; }
  const Options& options() const { return options_; }
  const Params& params() const { return params_; }

  // A new daemon process; its create reply (the caller checks ok()).
  driver::Reply start_daemon(std::unique_ptr<driver::DriverProcess>& out, const std::string& role = "daemon");
  // A new client process, connected; throws ScenarioFailure if connect fails.
  driver::DriverProcess& add_client(const std::string& role);
  nlohmann::json create_request() const;
  nlohmann::json connect_request() const;

  // `request` on `p`, which must succeed (else ScenarioFailure citing `clause`).
  driver::Reply must(driver::DriverProcess& p, nlohmann::json request, const std::string& clause,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

  void step(const std::string& line) { steps_.push_back(line); }
  const std::vector<std::string>& steps() const { return steps_; }

  std::unique_ptr<driver::DriverProcess> daemon;
  std::vector<std::unique_ptr<driver::DriverProcess>> clients;

 private:
  void remove_files();
  const Params& params_;
  std::string path_;
  Options options_;
  std::vector<std::string> steps_;
};

[[noreturn]] void scenario_fail(const std::string& clause, const std::string& what);

// The payload of message `id` (8 bytes of id, then filler derived from it).
std::vector<std::byte> message_payload(std::uint64_t id, std::size_t length);
// The id if `payload` is exactly what message_payload wrote for it.
std::optional<std::uint64_t> message_id(std::span<const std::byte> payload);

// A check's Failure from a scenario's: the steps as the counterexample.
Failure failure_of(const ScenarioFailure& f, const std::vector<std::string>& steps, const std::string& replay);
// "scripts/conformance --driver 'CMD' --only NAME --seed S"
std::string driver_replay(const Params& params, const std::string& check);

}  // namespace memlink::conformance
